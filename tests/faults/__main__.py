"""Runs every fault scenario against the whole system and prints the table; exits 1 on any violation.

    python -m tests.faults [--short] [--only NAME]

Starts its own PostgreSQL and Kafka (deploy/local/infra.sh in .run/faults, free ports), the five
services and both simulators, runs each scenario of tests/faults/scenarios.py in turn on that one
system, and stops everything at the end, even on failure. Service logs stay in .run/faults/stack/logs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from tests.e2e.conftest import Driver
from tests.faults.harness import FULL, SHORT, Harness, Profile, Result
from tests.faults.infra import OwnInfra
from tests.faults.scenarios import SCENARIOS, Scenario
from tests.system.bench import TENANT
from tests.system.journey import JourneyReader
from tests.system.stack import READER, REPO, WINE_SHIPPING, Stack

RUN_DIR = REPO / ".run" / "faults"
# The benchmark's winery and orders (all valid, all to be sent), with the short provider timeout
# the slow-create scenario plays against.
FAULT_TENANT = TENANT.with_account(WINE_SHIPPING, timeout_s=3.0)
SERVICE_ENV = {
    # Orders leased by a dispatch that was killed are taken up again after 10 s rather than the
    # default 30 s; still more than three provider timeouts, so a live send is never taken over.
    "ORDERSYNC_DISPATCH_LEASE_S": "10",
}


async def run(profile: Profile, scenarios: list[Scenario]) -> list[Result]:
    shutil.rmtree(RUN_DIR / "stack", ignore_errors=True)
    started = time.monotonic()
    results: list[Result] = []
    async with OwnInfra(RUN_DIR) as infra:
        stack = Stack(
            [FAULT_TENANT],
            run_dir=RUN_DIR / "stack",
            pg_dsn=infra.pg_dsn,
            kafka_bootstrap=infra.kafka_bootstrap,
            service_env=SERVICE_ENV,
        )
        async with stack:
            addresses = {name: stack.grpc_address(name) for name in stack.services}
            async with JourneyReader(addresses, stack.token(READER)) as reader:
                driver = Driver(stack, reader, FAULT_TENANT.tenant_id)
                harness = Harness(infra, stack, driver, profile)
                say(f"system up in {time.monotonic() - started:.0f} s; {profile.name} run: {describe(profile)}")
                try:
                    for round_number in range(1, profile.rounds + 1):
                        for name, scenario in scenarios:
                            label = name if profile.rounds == 1 else f"{name} #{round_number}"
                            results.append(await run_one(harness, label, scenario))
                finally:
                    await driver.close()
    say(f"done in {time.monotonic() - started:.0f} s")
    return results


async def run_one(harness: Harness, label: str, scenario: Callable[[Harness], Awaitable[Result]]) -> Result:
    story = getattr(scenario, "func", scenario).__doc__  # a partial tells its function's story
    say(f"{label}: {story}")
    try:
        result = await scenario(harness)
    except Exception as exc:  # a scenario that cannot finish is a failed one; the next still runs
        result = Result(label, violations=[f"the scenario did not finish: {exc.__class__.__name__}: {exc}"])
        await harness.restore()
    result.scenario = label
    outcomes = ", ".join(f"{n} {title}" for title, n in sorted(result.outcomes.items())) or "none terminal"
    recovery = "never" if result.recovery_s is None else f"{result.recovery_s:.1f} s"
    say(
        f"{label}: {result.accepted} accepted; {outcomes}; drained {recovery} after the fault; "
        f"{result.submissions} submissions reached the provider"
    )
    for violation in result.violations[:20]:
        say(f"{label}: VIOLATION {violation}")
    if len(result.violations) > 20:
        say(f"{label}: ... and {len(result.violations) - 20} more violations")
    return result


def describe(profile: Profile) -> str:
    return (
        f"bursts of {profile.orders} orders at {profile.rate:.0f}/s, {profile.rounds} round(s), "
        f"backlog drained within {profile.drain_timeout_s:.0f} s"
    )


def table(results: list[Result]) -> str:
    header = ("scenario", "accepted", "terminal", "stuck", "lost", "duplicates", "recovery s", "result")
    rows = [
        (
            r.scenario,
            str(r.accepted),
            str(r.terminal),
            str(r.stuck),
            str(r.lost),
            str(r.duplicates),
            "never" if r.recovery_s is None else f"{r.recovery_s:.1f}",
            "pass" if r.passed else "FAIL",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def say(message: str) -> None:
    print(f"faults: {message}", flush=True)


async def main(profile: Profile, only: str | None) -> int:
    scenarios = [s for s in SCENARIOS if only is None or only in s[0]]
    if not scenarios:
        say(f"no scenario matches {only!r}; there are: {', '.join(name for name, _ in SCENARIOS)}")
        return 2
    # SIGTERM (a CI job stopped) unwinds like Ctrl-C, so the infrastructure is still stopped.
    task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    results = await run(profile, scenarios)
    print(table(results), flush=True)
    failed = sum(not r.passed for r in results)
    # The closing line CI reads: one per scenario run.
    print(f"faults: {len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help=f"the CI version: {describe(SHORT)}")
    parser.add_argument("--only", metavar="NAME", help="run only the scenarios whose name contains NAME")
    arguments = parser.parse_args()
    try:
        sys.exit(asyncio.run(main(SHORT if arguments.short else FULL, arguments.only)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("stopped before the end; the infrastructure it started is stopped")
        sys.exit(130)
