"""`ordersync reconcile`: compare a tenant's connections with ordersync's records and heal the gaps.

Runs order intake's reconciliation (orders the channels have that intake never received) and
fulfillment dispatch's (orders sent but missing at the provider, shipments never recorded), each
over ReconciliationService, shows a spinner meanwhile, and prints every finding with what was done.
Exit 0 when nothing was found or all was healed, 4 when something is reported and not healed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

import grpc
import typer
from google.protobuf import duration_pb2, json_format
from ordersync.ops.v1 import reconciliation_pb2 as pb
from ordersync.ops.v1 import reconciliation_pb2_grpc as pb_grpc
from rich.progress import Progress, SpinnerColumn, TextColumn

from libs.cli.app import app, run_async
from libs.cli.connect import Connections
from libs.cli.output import ExitCode, console, print_json, print_table

SERVICES = ("order-intake", "fulfillment-dispatch")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "s": 1}
_OUTCOME = {
    pb.FINDING_OUTCOME_HEALED: "healed",
    pb.FINDING_OUTCOME_REPORTED: "reported",
    pb.FINDING_OUTCOME_WOULD_HEAL: "would heal",
}


def parse_window(text: str) -> timedelta:
    """`48h`, `90m`, `2d` or `3600s` as a duration; raises typer.BadParameter otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if match is None:
        raise typer.BadParameter("give a number and a unit: 90m, 48h, 2d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@app.command("reconcile")
def reconcile_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="the tenant to reconcile")],
    account: Annotated[str | None, typer.Option(help="one account (channel or provider); default all")] = None,
    window: Annotated[str, typer.Option(help="how far back to compare, e.g. 48h, 90m, 2d")] = "48h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="find without healing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the runs as JSON")] = False,
) -> None:
    """Find orders the channel has that ordersync never received, orders missing at the provider
    and shipments never written back; heal what can be re-driven, report the rest."""
    span = parse_window(window)
    request = pb.ReconcileRequest(
        tenant_id=tenant, account=account or "", window=duration_pb2.Duration(seconds=int(span.total_seconds()))
    )
    request.dry_run = dry_run
    runs = run_async(ctx, lambda connections: _run_all(connections, request, spinner=not as_json))
    findings = [(run, f) for run in runs for f in run.findings]
    if as_json:
        print_json([json_format.MessageToDict(run, preserving_proto_field_name=True) for run in runs])
    else:
        _print(runs, findings)
    if any(f.outcome == pb.FINDING_OUTCOME_REPORTED for _, f in findings):
        raise typer.Exit(ExitCode.PROBLEMS_FOUND)


async def _run_all(connections: Connections, request: pb.ReconcileRequest, *, spinner: bool) -> list[Any]:
    """Each service's runs. With --account, a service that does not reconcile it answers
    NOT_FOUND; that is an error only when neither service knows the account."""
    runs: list[Any] = []
    not_found: list[grpc.RpcError] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console(), disable=not spinner) as bar:
        for service in SERVICES:
            task = bar.add_task(f"reconciling {request.tenant_id} at {service}", total=None)
            stub = pb_grpc.ReconciliationServiceStub(connections.channel(service))
            try:
                response = await stub.Reconcile(request, metadata=connections.metadata)
            except grpc.aio.AioRpcError as exc:
                if request.account and exc.code() == grpc.StatusCode.NOT_FOUND:
                    not_found.append(exc)
                    continue
                raise
            finally:
                bar.remove_task(task)
            runs.extend(response.runs)
    if request.account and len(not_found) == len(SERVICES):
        raise not_found[0]
    return runs


def _print(runs: list[Any], findings: list[tuple[Any, Any]]) -> None:
    compared = sum(run.compared for run in runs)
    mode = " (dry run)" if runs and runs[0].dry_run else ""
    if not findings:
        console().print(f"{len(runs)} account(s), {compared} order(s) compared{mode}: nothing found")
        return
    print_table(
        f"reconciliation{mode}",
        ("service", "account", "kind", "order", "channel id", "outcome", "reason"),
        (
            (
                run.service,
                run.account,
                f.kind,
                f.order_number or f.order_id,
                f.channel_order_id,
                _OUTCOME.get(f.outcome, "?"),
                f.reason,
            )
            for run, f in findings
        ),
    )
    reported = sum(1 for _, f in findings if f.outcome == pb.FINDING_OUTCOME_REPORTED)
    console().print(
        f"{len(runs)} account(s), {compared} order(s) compared{mode}: {len(findings)} found, {reported} not healed"
    )
