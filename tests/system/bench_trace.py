"""`ordersync trace` on an order with a long history, beside one with a short history, in one run.

    python -m tests.system.bench_trace [--revisions 1000] [--runs 15]

One stack (the five services as processes, Commerce7 and Vinoshipper simulators, real Kafka and
PostgreSQL). Two orders are placed and taken to delivered at Vinoshipper; then the channel
sends `--revisions` Order Update webhooks of the long one (a back-office user editing its gift message),
each received and recorded by intake, so its journey has that many more steps. Each order is
traced `--runs` times two ways: the whole command as an operator runs it (`python -m libs.cli
trace`, a new process each time: start-up, the four services' answers, the table), and the
services' part alone (libs.cli.trace.fetch in this process: intake, then the three others at
once). The last line is what `make bench-trace` reports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from libs.cli import trace
from libs.cli.connect import Connections
from tests.e2e.conftest import Driver, tenant, web_order
from tests.system.journey import JourneyReader, ordersync_trace
from tests.system.stack import READER, Stack


@dataclass(frozen=True)
class Timing:
    """One order's figures: its steps, and milliseconds per trace, the command's and the services'."""

    steps: int
    command_ms: list[float]
    services_ms: list[float]

    def line(self) -> str:
        return f"{self.steps} steps: command {_summary(self.command_ms)}; services {_summary(self.services_ms)}"


def _summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


async def _delivered(driver: Driver) -> dict:
    placed = (await driver.place(web_order()))["order"]
    shown = await driver.wait_for_status(placed["orderNumber"], "Sent to Vinoshipper", timeout_s=90)
    for step in ("fulfil", "ship", "deliver"):
        await driver.provider(shown.sync.provider_order_number, step)
    await driver.wait_for(placed["id"], lambda j: j.written_back == "delivered", timeout_s=90)
    return placed


async def _revise(driver: Driver, placed: dict, revisions: int) -> None:
    """`revisions` Order Update webhooks of the order, each waited for (intake records each one)."""
    for i in range(revisions):
        response = await driver.stack.http.patch(
            f"{driver.c7}/_sim/orders/{placed['id']}", json={"order": {"giftMessage": f"edit {i}"}, "wait": True}
        )
        response.raise_for_status()


async def _timed(work: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await work()  # warm: connections, the services' caches, the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await work()
        times.append((time.perf_counter() - start) * 1000)
    return times


async def _measure(stack: Stack, tenant_id: str, order: str, runs: int) -> Timing:
    env = {**stack.operator_env(tenant_id), "NO_COLOR": "1"}
    connections = Connections(environ=env)
    try:
        journey = await trace.fetch(connections, tenant_id, order)
        services_ms = await _timed(lambda: trace.fetch(connections, tenant_id, order), runs)
    finally:
        await connections.close()

    async def command() -> None:
        code, out, err = await ordersync_trace(env, tenant_id, order)
        assert code == 0, out + err

    return Timing(len(journey.steps), await _timed(command, runs), services_ms)


async def run(revisions: int, runs: int) -> str:
    spec = tenant()
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as run_dir:
        async with Stack([spec], run_dir=Path(run_dir)) as stack:
            addresses = {name: stack.grpc_address(name) for name in stack.services}
            async with JourneyReader(addresses, stack.token(READER)) as reader:
                driver = Driver(stack, reader, spec.tenant_id)
                short, long = await _delivered(driver), await _delivered(driver)
                started = time.perf_counter()
                await _revise(driver, long, revisions)
                print(f"bench-trace: {revisions} revisions sent in {time.perf_counter() - started:.1f} s", flush=True)
                short_timing = await _measure(stack, spec.tenant_id, str(short["orderNumber"]), runs)
                long_timing = await _measure(stack, spec.tenant_id, str(long["orderNumber"]), runs)
                await driver.close()
    ratio = statistics.median(long_timing.command_ms) / statistics.median(short_timing.command_ms)
    print(f"bench-trace: short order, {short_timing.line()}")
    print(f"bench-trace: long order, {long_timing.line()}")
    return (
        f"bench-trace: {long_timing.steps} steps in p50 {statistics.median(long_timing.command_ms):.0f} ms"
        f" (services {statistics.median(long_timing.services_ms):.0f} ms); {short_timing.steps} steps in p50"
        f" {statistics.median(short_timing.command_ms):.0f} ms; ratio {ratio:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revisions", type=int, default=int(os.environ.get("BENCH_REVISIONS", 1000)))
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(asyncio.run(run(args.revisions, args.runs)))
    sys.exit(0)


if __name__ == "__main__":
    main()
