"""`ordersync trace <tenant> <order>`: an order's whole journey across the services, in one view.

Asks order intake first over OrderHistoryService (it resolves the order: ordersync's id, or the
channel's order id or number, and refuses an unknown one), then compliance routing, fulfillment
dispatch and tracking writeback at once with the resolved id; merges their steps in time order
and marks the failing step: the last failed step that no later step of the same service
followed with success, printed with what to do. `--follow` asks again every `--interval`
seconds and prints only the new steps, until the journey is complete (delivered and written
back) or Ctrl-C. Exit 0 healthy, 4 a failing step is marked, 1 refused (unknown order, caller
not granted), 3 a service could not be reached (the others' steps are still printed).
docs/trace.md is the operator's guide.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import grpc
import typer
from ordersync.ops.v1 import order_history_pb2 as pb
from ordersync.ops.v1 import order_history_pb2_grpc as pb_grpc
from rich.text import Text

from libs.cli.app import app, run_async
from libs.cli.connect import Connections
from libs.cli.output import ExitCode, console, error_console, print_json
from libs.platform.order_history import Step

INTAKE = "order-intake"
PEERS = ("compliance-routing", "fulfillment-dispatch", "tracking-writeback")
SERVICES = (INTAKE, *PEERS)
CALL_TIMEOUT_S = 10.0
COLUMNS = ("", "time", "service", "step", "status", "reason code", "trace id", "message")
# The narrowest each column is, so the rows of one order line up from one print to the next
# (--follow prints a few at a time); a longer value widens its column for that print.
MIN_WIDTHS = (7, 23, 20, 16, 13, 11, 12, 0)
FAILING_MARK = "FAILING"
_ROW_STYLES = {FAILING_MARK: "bold red", "failed": "yellow"}


@dataclass
class Journey:
    """The merged view: the order, its steps in time order, and what could not be asked."""

    tenant_id: str
    order_id: str
    order_number: str = ""
    steps: list[Step] = field(default_factory=list)
    complete: bool = False
    missing: dict[str, str] = field(default_factory=dict)  # service -> why it did not answer

    @property
    def failing(self) -> int | None:
        return failing_step(self.steps)

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "order_id": self.order_id,
            "order_number": self.order_number,
            "complete": self.complete,
            "failing_step": self.failing,
            "missing": self.missing,
            "steps": [s.as_json() for s in self.steps],
        }


def merge(answers: Iterable[Sequence[Step]]) -> list[Step]:
    """Every service's steps in one list, by time; at the same instant in journey order
    (intake, routing, dispatch, writeback), each service's own order kept (the sort is stable)."""
    rank = {name: index for index, name in enumerate(SERVICES)}
    steps = [step for answer in answers for step in answer]
    return sorted(steps, key=lambda s: (s.time, rank.get(s.service, len(rank))))


def failing_step(steps: Sequence[Step]) -> int | None:
    """The index of the failing step: the last failed step not followed by a success (a step
    not failed) of the same service; None when there is none."""
    recovered: set[str] = set()
    for index in range(len(steps) - 1, -1, -1):
        step = steps[index]
        if not step.failed:
            recovered.add(step.service)
        elif step.service not in recovered:
            return index
    return None


def exit_code(journey: Journey) -> ExitCode:
    """3 when a service did not answer (the view is incomplete), 4 with a failing step, else 0."""
    if journey.missing:
        return ExitCode.UNAVAILABLE
    if journey.failing is not None:
        return ExitCode.PROBLEMS_FOUND
    return ExitCode.DONE


async def fetch(connections: Connections, tenant_id: str, order: str) -> Journey:
    """Intake first (refusals, an unknown order among them, raise: nothing else to ask), then
    the other services at once; one that fails to answer is named in `missing`."""
    intake = await _ask(connections, INTAKE, tenant_id, order)
    answers = await asyncio.gather(
        *(_ask(connections, service, tenant_id, intake.order_id) for service in PEERS), return_exceptions=True
    )
    journey = Journey(tenant_id, intake.order_id, intake.order_number)
    steps: list[list[Step]] = [[Step.of(s) for s in intake.steps]]
    for service, answer in zip(PEERS, answers, strict=True):
        if isinstance(answer, grpc.aio.AioRpcError):
            journey.missing[service] = f"{answer.code().name}: {answer.details()}"
        elif isinstance(answer, BaseException):
            raise answer
        else:
            steps.append([Step.of(s) for s in answer.steps])
            journey.complete = journey.complete or answer.complete
    journey.steps = merge(steps)
    return journey


async def _ask(connections: Connections, service: str, tenant_id: str, order: str) -> pb.GetOrderHistoryResponse:
    stub = pb_grpc.OrderHistoryServiceStub(connections.channel(service))
    return await stub.GetOrderHistory(
        pb.GetOrderHistoryRequest(tenant_id=tenant_id, order=order),
        metadata=connections.metadata,
        timeout=CALL_TIMEOUT_S,
    )


def rows(steps: Sequence[Step], failing: int | None, *, offset: int = 0) -> list[tuple[str, ...]]:
    """Table rows of `steps` (the journey's steps from index `offset` on)."""
    return [
        (
            FAILING_MARK if offset + index == failing else ("failed" if step.failed else ""),
            step.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            step.service,
            step.kind,
            step.status,
            step.reason_code,
            step.trace_id[:12],
            step.message,
        )
        for index, step in enumerate(steps)
    ]


def print_journey(journey: Journey, *, offset: int = 0, header: bool = True) -> None:
    """The steps from `offset` on as a table, then the failing step's action and what is missing."""
    shown = journey.steps[offset:]
    failing = journey.failing
    title = f"order {journey.order_id}" + (f" ({journey.order_number})" if journey.order_number else "")
    if shown:
        print_table(f"{title} of tenant {journey.tenant_id}" if header else None, rows(shown, failing, offset=offset))
    elif header:
        console().print(f"{title} of tenant {journey.tenant_id}: no steps recorded")
    print_footer(journey)


def print_footer(journey: Journey) -> None:
    failing = journey.failing
    if failing is not None:
        step = journey.steps[failing]
        console().print(f"failing step: {step.service} {step.kind} {step.status} {step.reason_code}".rstrip())
        if step.action:
            console().print(f"what to do: {step.action}")
    elif journey.complete:
        console().print("journey complete: delivered and written back to the channel")
    for service, why in journey.missing.items():
        error_console().print(f"{service} did not answer ({why}): its steps are missing")


def print_table(title: str | None, table_rows: Sequence[Sequence[str]]) -> None:
    """The steps as aligned columns, one step a line, the message last (not folded: grep and logs
    keep a step whole); on a terminal the failing step in red and other failures in yellow.

    Not a rich Table: laying one out costs about 0.6 ms a row, most of a second for an order with
    a thousand steps; these lines cost nothing."""
    widths = [
        max(minimum, len(header), *(len(row[i]) for row in table_rows))
        for i, (header, minimum) in enumerate(zip(COLUMNS, MIN_WIDTHS, strict=True))
    ]
    lines = [_aligned(row, widths) for row in table_rows]
    header = _aligned(COLUMNS, widths)
    if not sys.stdout.isatty():
        sys.stdout.write("".join(f"{line}\n" for line in ([title] if title else []) + [header, *lines]))
        return
    text = Text(f"{title}\n" if title else "", style="bold")
    text.append(f"{header}\n", style="bold")
    for row, line in zip(table_rows, lines, strict=True):
        text.append(f"{line}\n", style=_ROW_STYLES.get(row[0], ""))
    console().print(text, end="", soft_wrap=True)


def _aligned(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()


@dataclass
class _Follow:
    """What --follow has printed so far, and the latest view (for the exit code on Ctrl-C)."""

    seen: set[Step] = field(default_factory=set)
    journey: Journey | None = None


async def follow(
    connections: Connections, tenant_id: str, order: str, interval_s: float, state: _Follow, *, as_json: bool
) -> None:
    """Print new steps each `interval_s` until the journey is complete."""
    while True:
        journey = await fetch(connections, tenant_id, order)
        first = state.journey is None
        new = [(i, s) for i, s in enumerate(journey.steps) if s not in state.seen]
        before = state.journey.missing if state.journey else {}
        if not as_json and journey.missing and journey.missing != before:
            for service, why in journey.missing.items():
                error_console().print(f"{service} did not answer ({why}): its steps are missing")
        state.journey = journey
        state.seen.update(s for _, s in new)
        if as_json:
            for _, step in new:
                print_json(step.as_json())
        elif new or first:
            failing = journey.failing
            title = f"order {journey.order_id} of tenant {tenant_id}" if first else None
            print_table(title, [rows([s], failing, offset=i)[0] for i, s in new])
            if failing is not None and any(i == failing for i, _ in new):
                print_footer(journey)
        if journey.complete:
            if not as_json:
                console().print("journey complete: delivered and written back to the channel")
            return
        await asyncio.sleep(interval_s)


@app.command("trace")
def trace_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="the tenant the order belongs to")],
    order: Annotated[str, typer.Argument(help="ordersync's order id (ord_...), or the channel's order id or number")],
    as_json: Annotated[bool, typer.Option("--json", help="print the journey as JSON")] = False,
    follow_: Annotated[
        bool, typer.Option("--follow", help="keep watching: print new steps until the journey is complete")
    ] = False,
    interval: Annotated[float, typer.Option(help="seconds between looks with --follow", min=0.2)] = 2.0,
) -> None:
    """Show an order's whole journey: received, routed, sent, shipped, written back, with the
    failing step marked and what to do about it."""
    if follow_:
        state = _Follow()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the watch; the exit code says what it saw
            run_async(ctx, lambda connections: follow(connections, tenant, order, interval, state, as_json=as_json))
        raise typer.Exit(exit_code(state.journey) if state.journey else ExitCode.DONE)
    journey = run_async(ctx, lambda connections: fetch(connections, tenant, order))
    if as_json:
        print_json(journey.as_json())
    else:
        print_journey(journey)
    raise typer.Exit(exit_code(journey))
