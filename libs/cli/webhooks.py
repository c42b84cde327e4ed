"""`ordersync webhooks`: the webhook bodies order intake kept but refused, read and resubmitted.

    ordersync webhooks list acme                          refused receipts (malformed, invalid, too_large)
    ordersync webhooks show acme 4711                     one receipt, its body pretty-printed
    ordersync webhooks resubmit acme 4711 --reason R      through the webhook's ingest path again

Asks order intake's WebhookReceiptService. A resubmission takes the kept body, or the file given
with --body-file (an edit, recorded on the new receipt), through the path a webhook's body takes,
once: resubmitting a receipt whose resubmission was taken answers that one again. Exit 0 done
(taken, or taken before), 4 when the body was refused again (or, with --dry-run, would be),
1 refused by intake (unknown receipt, not refused, not an operator), 2 bad usage, 3 intake could
not be reached. docs/webhook-receipts.md is the operator's guide.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format, timestamp_pb2
from ordersync.intake.v1 import webhook_receipts_pb2 as pb
from ordersync.intake.v1 import webhook_receipts_pb2_grpc as pb_grpc

from libs.cli.app import app, run_async
from libs.cli.connect import Connections
from libs.cli.output import ExitCode, console, error_console, print_json, print_table, timestamp_text
from libs.cli.reconcile import parse_window

INTAKE = "order-intake"
REFUSED = ("malformed", "invalid", "too_large")
MAX_PAGE = 500
DETAIL_CHARS = 120  # a table cell; `show` prints the whole detail

webhooks = typer.Typer(
    name="webhooks",
    help="Webhook bodies intake kept but refused: list, show and resubmit them (docs/webhook-receipts.md).",
    no_args_is_help=True,
)
app.add_typer(webhooks, name="webhooks")


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """`48h`, `90m`, `2d` (that long ago) or an ISO date or time (UTC unless it says); raises
    typer.BadParameter otherwise."""
    try:
        return (now or datetime.now(UTC)) - parse_window(text)
    except typer.BadParameter:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter("give a span (48h, 2d) or an ISO date or time (2026-12-01T08:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stub(connections: Connections) -> pb_grpc.WebhookReceiptServiceStub:
    return pb_grpc.WebhookReceiptServiceStub(connections.channel(INTAKE))


@webhooks.command("list")
def list_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="the tenant whose receipts to list")],
    outcome: Annotated[
        list[str] | None, typer.Option(help="only this outcome (repeatable); default the refused ones")
    ] = None,
    since: Annotated[str | None, typer.Option(help="only those received since: 48h, 2d or an ISO date")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print the receipts as JSON")] = False,
) -> None:
    """List a tenant's kept receipts, newest first: by default those intake refused."""
    request = pb.ListWebhookReceiptsRequest(tenant_id=tenant, outcomes=outcome or [])
    if since is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(parse_since(since))
        request.since.CopyFrom(stamp)
    receipts = run_async(ctx, lambda connections: _list(connections, request, limit))
    if as_json:
        print_json([json_format.MessageToDict(r, preserving_proto_field_name=True) for r in receipts])
        return
    if not receipts:
        console().print(f"no receipts of {tenant} with outcome {', '.join(outcome or REFUSED)}")
        return
    print_table(
        f"webhook receipts of {tenant}",
        ("id", "received", "account", "source", "outcome", "order", "bytes", "resubmissions", "detail"),
        (
            (
                r.receipt_id,
                timestamp_text(r.received_at),
                r.account,
                r.source + (f" of {r.resubmitted_from}" if r.resubmitted_from else ""),
                r.outcome,
                r.order_id,
                r.body_size,
                ", ".join(str(i) for i in r.resubmissions),
                _short(r.detail),
            )
            for r in receipts
        ),
    )
    console().print(f"{len(receipts)} receipt(s); `ordersync webhooks show {tenant} ID` prints one with its body")


async def _list(connections: Connections, request: pb.ListWebhookReceiptsRequest, limit: int) -> list[Any]:
    """Pages until `limit` receipts or the last page."""
    stub = _stub(connections)
    receipts: list[Any] = []
    while True:
        request.page_size = min(MAX_PAGE, limit - len(receipts))
        page = await stub.ListWebhookReceipts(request, metadata=connections.metadata)
        receipts.extend(page.receipts)
        if not page.next_page_token or len(receipts) >= limit:
            return receipts[:limit]
        request.page_token = page.next_page_token


@webhooks.command("show")
def show_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="the tenant the receipt belongs to")],
    receipt_id: Annotated[int, typer.Argument(help="the receipt's id (from `list`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the receipt and its body as JSON")] = False,
) -> None:
    """Show one receipt: what intake made of it, its resubmissions, and the body it kept."""
    request = pb.GetWebhookReceiptRequest(tenant_id=tenant, receipt_id=receipt_id)

    async def get(connections: Connections) -> pb.GetWebhookReceiptResponse:
        return await _stub(connections).GetWebhookReceipt(request, metadata=connections.metadata)

    response = run_async(ctx, get)
    text = response.body.decode("utf-8", errors="replace")
    is_json, parsed = _parse_json(response.body)
    if as_json:
        receipt = json_format.MessageToDict(response.receipt, preserving_proto_field_name=True)
        print_json({"receipt": receipt, "body": text, "body_is_json": is_json, "body_json": parsed})
        return
    r, out = response.receipt, console()
    lines = [
        ("receipt", f"{r.receipt_id} ({r.source} from {r.channel}, account {r.account or '-'})"),
        ("received", timestamp_text(r.received_at)),
        ("outcome", r.outcome + (f": {r.detail}" if r.detail else "")),
        ("order", r.order_id or "-"),
        ("trace id", r.trace_id or "-"),
    ]
    if r.resubmitted_from:
        edited = ", body edited" if r.body_edited else ""
        lines.append(("resubmits", f"{r.resubmitted_from} by {r.resubmitted_by}{edited}: {r.resubmit_reason}"))
    if r.resubmissions:
        lines.append(("resubmitted as", ", ".join(str(i) for i in r.resubmissions)))
    for label, value in lines:
        out.print(f"{label + ':':<16}{value}", markup=False, emoji=False)
    out.print(f"body ({r.body_size} bytes{'' if is_json else ', not JSON'}):", markup=False, emoji=False)
    out.print(json.dumps(parsed, indent=2, ensure_ascii=False) if is_json else text, markup=False, emoji=False)


@webhooks.command("resubmit")
def resubmit_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="the tenant the receipt belongs to")],
    receipt_id: Annotated[int, typer.Argument(help="the refused receipt's id (from `list`)")],
    reason: Annotated[str, typer.Option(help="why it is resubmitted, what was fixed (kept on the new receipt)")],
    body_file: Annotated[
        Path | None, typer.Option(help="take this file's bytes instead of the kept body (an edit, recorded)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what it would record; record nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Take a refused receipt's body (or --body-file) through the webhook's ingest path again."""
    request = pb.ResubmitWebhookReceiptRequest(tenant_id=tenant, receipt_id=receipt_id, reason=reason)
    request.dry_run = dry_run
    if body_file is not None:
        try:
            request.replacement_body = body_file.read_bytes()
        except OSError as exc:
            error_console().print(f"error: cannot read {body_file}: {exc.strerror}")
            raise typer.Exit(ExitCode.USAGE) from None

    async def resubmit(connections: Connections) -> pb.ResubmitWebhookReceiptResponse:
        return await _stub(connections).ResubmitWebhookReceipt(request, metadata=connections.metadata)

    answer = run_async(ctx, resubmit)
    if as_json:
        print_json(
            json_format.MessageToDict(
                answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
        )
    else:
        console().print(_sentence(receipt_id, answer), markup=False, emoji=False)
    if answer.outcome in REFUSED:
        raise typer.Exit(ExitCode.PROBLEMS_FOUND)


def _sentence(receipt_id: int, answer: pb.ResubmitWebhookReceiptResponse) -> str:
    order = f", order {answer.order_id}" if answer.order_id else ""
    detail = f": {answer.detail}" if answer.detail else ""
    if answer.already_resubmitted:
        return (
            f"receipt {receipt_id} was resubmitted before as receipt {answer.receipt_id}"
            f" ({answer.outcome}{order}); nothing recorded now"
        )
    if answer.dry_run:
        return f"dry run: receipt {receipt_id} would be recorded as {answer.outcome}{order}{detail}; nothing recorded"
    return f"receipt {receipt_id} resubmitted as receipt {answer.receipt_id}: {answer.outcome}{order}{detail}"


def _parse_json(body: bytes) -> tuple[bool, Any]:
    """(True, the value) when the body is JSON, else (False, None)."""
    try:
        return True, json.loads(body)
    except ValueError:
        return False, None


def _short(text: str) -> str:
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"
