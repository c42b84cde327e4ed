"""`ordersync dead-letters`: list, show and replay the messages services set aside.

Each pipeline service keeps its own dead letters and serves them over DeadLetterService
(libs/platform/dead_letters.py); `list` asks every one (or those named with --service) and shows
them newest first, `show` prints one with its message as JSON and its replays, `replay` replays
chosen ones by id or by filter, with a progress bar, `--dry-run` and `--edit FILE` (the message
replaced by the envelope JSON in FILE, audited). Exit 0 when done, 4 when `list` found dead
letters to act on or a replay could not replay one; other codes as every subcommand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format, timestamp_pb2
from ordersync.common.v1 import event_pb2
from ordersync.ops.v1 import dead_letters_pb2 as pb
from ordersync.ops.v1 import dead_letters_pb2_grpc as pb_grpc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

import libs.platform.dead_letters  # noqa: F401  (registers every event payload type, for --edit)
from libs.cli.app import app, run_async
from libs.cli.connect import Connections
from libs.cli.output import ExitCode, console, print_json, print_table, timestamp_text
from libs.cli.reconcile import parse_window
from libs.platform.dead_letters import MAX_PAGE, outcome_name

SERVICES = ("order-intake", "compliance-routing", "fulfillment-dispatch", "tracking-writeback")

dead_letters_app = typer.Typer(help="Read and replay the messages services set aside.", no_args_is_help=True)
app.add_typer(dead_letters_app, name="dead-letters")

Service = Annotated[str, typer.Argument(help=f"the service keeping it: {', '.join(SERVICES)}")]
Tenant = Annotated[str, typer.Argument(help='the tenant ("*" for every tenant: needs a caller granted all)')]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
Topic = Annotated[str, typer.Option(help="only those of this topic (full name)")]
ErrorText = Annotated[str, typer.Option("--error", help="only those whose error contains this text")]
Order = Annotated[str, typer.Option(help="only those of this order (ordersync's order id)")]
Since = Annotated[str | None, typer.Option(help="only those kept in this last span, e.g. 2h, 90m, 7d")]


@dead_letters_app.command("list")
def list_command(
    ctx: typer.Context,
    tenant: Tenant,
    service: Annotated[list[str] | None, typer.Option(help="ask only this service (repeatable)")] = None,
    topic: Topic = "",
    error: ErrorText = "",
    order: Order = "",
    since: Since = None,
    include_replayed: Annotated[bool, typer.Option("--include-replayed", help="show replayed ones too")] = False,
    limit: Annotated[int, typer.Option(min=1, help="at most this many per service")] = 100,
    as_json: AsJson = False,
) -> None:
    """List dead letters, newest first, from every pipeline service (or those named)."""
    services = _services(service or list(SERVICES))
    chosen = _filter(topic, error, order, since, include_replayed=include_replayed)
    found = run_async(ctx, lambda connections: _list_all(connections, services, tenant, chosen, limit))
    found.sort(key=lambda d: d.received_at.ToDatetime(), reverse=True)
    if as_json:
        print_json([_as_dict(d) for d in found])
    elif not found:
        console().print(f"no dead letters of {tenant} at {', '.join(services)}")
    else:
        print_table(
            "dead letters",
            ("service", "id", "kept at", "tenant", "topic", "order", "error", "replayed"),
            (
                (
                    d.service,
                    d.id,
                    timestamp_text(d.received_at),
                    d.tenant_id or "(unreadable)",
                    d.topic,
                    d.order_id,
                    d.error,
                    f"by {d.replayed_by} at {timestamp_text(d.replayed_at)}" if d.replayed else "",
                )
                for d in found
            ),
        )
    if any(not d.replayed for d in found):
        raise typer.Exit(ExitCode.PROBLEMS_FOUND)


@dead_letters_app.command("show")
def show_command(
    ctx: typer.Context,
    tenant: Tenant,
    service: Service,
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="the dead letter's id at that service")],
    as_json: AsJson = False,
) -> None:
    """Show one dead letter: where it came from, why it was set aside, its message and its replays."""
    target, request = _services([service])[0], pb.GetDeadLetterRequest(tenant_id=tenant, id=dead_letter_id)
    shown = run_async(
        ctx, lambda connections: _stub(connections, target).GetDeadLetter(request, metadata=connections.metadata)
    )
    if as_json:
        print_json(json_format.MessageToDict(shown, preserving_proto_field_name=True))
        return
    d = shown.dead_letter
    where = f"partition {d.partition} offset {d.offset} for {d.consumer_group}" if d.source == "consumer" else "outbox"
    lines = [
        f"dead letter {d.id} of {d.service}, tenant {d.tenant_id or '(unreadable)'}",
        f"  {d.source} message on {d.topic} ({where}), order {d.order_id}, {d.value_bytes} bytes",
        f"  kept at {timestamp_text(d.received_at)}: {d.error}",
        *(
            f"  replayed{' (edited)' if r.edited else ''} at {timestamp_text(r.replayed_at)} by {r.operator}: {r.reason}"
            for r in shown.replays
        ),
        shown.value_json or "  the message is not an event envelope; replay it with --edit FILE",
    ]
    for line in lines:  # errors and reasons may quote a message: never read as rich markup
        console().print(line, markup=False, emoji=False, highlight=False)


@dead_letters_app.command("replay")
def replay_command(
    ctx: typer.Context,
    tenant: Tenant,
    service: Service,
    ids: Annotated[list[int] | None, typer.Argument(metavar="[ID]...", help="the dead letters to replay")] = None,
    all_matching: Annotated[
        bool, typer.Option("--all-matching", help="replay every unreplayed one matching the filters")
    ] = False,
    topic: Topic = "",
    error: ErrorText = "",
    order: Order = "",
    since: Since = None,
    reason: Annotated[str, typer.Option(help="why they are replayed (kept with each replay)")] = "",
    edit: Annotated[
        Path | None, typer.Option(help="replace the one ID's message by the envelope JSON in this file")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be done, do nothing")] = False,
    as_json: AsJson = False,
) -> None:
    """Replay dead letters through the service's outbox; a replayed one is never replayed again."""
    target = _services([service])[0]
    if bool(ids) == all_matching:
        raise typer.BadParameter("give dead letter ids, or --all-matching with filters")
    requests = _replay_requests(tenant, list(ids or []), all_matching, topic, error, order, since, edit)
    for request in requests:
        request.dry_run, request.reason = dry_run, reason
    total = len(ids or []) or None
    results = run_async(ctx, lambda connections: _replay_all(connections, target, requests, total, bar=not as_json))
    if as_json:
        print_json([{**_as_dict(r), "outcome": outcome_name(r.outcome)} for r in results])
    else:
        _print_results(results, dry_run)
    if any(r.outcome == pb.REPLAY_OUTCOME_NOT_REPLAYABLE for r in results):
        raise typer.Exit(ExitCode.PROBLEMS_FOUND)


def _replay_requests(
    tenant: str,
    ids: list[int],
    all_matching: bool,
    topic: str,
    error: str,
    order: str,
    since: str | None,
    edit: Path | None,
) -> list[pb.ReplayDeadLettersRequest]:
    """One request per MAX_PAGE ids, or one by filter (the service takes MAX_PAGE of them)."""
    if all_matching:
        if edit is not None:
            raise typer.BadParameter("--edit replaces one dead letter's message: give its id")
        chosen = _filter(topic, error, order, since, include_replayed=False)
        return [pb.ReplayDeadLettersRequest(tenant_id=tenant, filter=chosen)]
    requests = [
        pb.ReplayDeadLettersRequest(tenant_id=tenant, ids=ids[i : i + MAX_PAGE]) for i in range(0, len(ids), MAX_PAGE)
    ]
    if edit is not None:
        if len(ids) != 1:
            raise typer.BadParameter("--edit replaces one dead letter's message: give exactly one id")
        requests[0].edited_value = _edited_value(edit)
    return requests


def _edited_value(path: Path) -> bytes:
    """The envelope JSON in `path` (as `show --json` prints value_json) as envelope bytes."""
    try:
        envelope = json_format.Parse(path.read_text(), event_pb2.EventEnvelope())
    except (OSError, json_format.ParseError) as exc:
        raise typer.BadParameter(f"--edit {path}: {exc}") from None
    return envelope.SerializeToString()


async def _replay_all(
    connections: Connections,
    service: str,
    requests: Sequence[pb.ReplayDeadLettersRequest],
    total: int | None,
    *,
    bar: bool,
) -> list[Any]:
    results: list[Any] = []
    stub = _stub(connections, service)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console(), disable=not bar) as progress:
        task = progress.add_task(f"replaying at {service}", total=total)
        for request in requests:
            response = await stub.ReplayDeadLetters(request, metadata=connections.metadata, timeout=120)
            results.extend(response.results)
            progress.advance(task, len(response.results))
    return results


async def _list_all(
    connections: Connections, services: Sequence[str], tenant: str, chosen: pb.DeadLetterFilter, limit: int
) -> list[Any]:
    found: list[Any] = []
    for service in services:
        token, taken = "", 0
        while taken < limit:
            request = pb.ListDeadLettersRequest(
                tenant_id=tenant, filter=chosen, page_size=min(limit - taken, MAX_PAGE), page_token=token
            )
            page = await _stub(connections, service).ListDeadLetters(request, metadata=connections.metadata)
            found.extend(page.dead_letters)
            taken += len(page.dead_letters)
            token = page.next_page_token
            if not token:
                break
    return found


def _print_results(results: Sequence[Any], dry_run: bool) -> None:
    if not results:
        console().print("no dead letter matched")
        return
    print_table(
        "replay (dry run)" if dry_run else "replay",
        ("id", "outcome", "reason", "event id"),
        ((r.id, outcome_name(r.outcome).replace("_", " "), r.reason, r.event_id) for r in results),
    )


def _filter(topic: str, error: str, order: str, since: str | None, *, include_replayed: bool) -> pb.DeadLetterFilter:
    chosen = pb.DeadLetterFilter(topic=topic, error_contains=error, order_id=order, include_replayed=include_replayed)
    if since:
        start = timestamp_pb2.Timestamp()
        start.FromDatetime(datetime.now(UTC) - parse_window(since))
        chosen.since.CopyFrom(start)
    return chosen


def _services(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise typer.BadParameter(f"unknown service {', '.join(unknown)}; one of {', '.join(SERVICES)}")
    return list(names)


def _stub(connections: Connections, service: str) -> pb_grpc.DeadLetterServiceStub:
    return pb_grpc.DeadLetterServiceStub(connections.channel(service))


def _as_dict(message: Any) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
