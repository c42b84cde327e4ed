"""WebhookReceiptService: read the bodies intake kept but refused, and resubmit them.

A resubmission takes the kept body (or an operator's replacement, recorded as an edit) through
`WebhookIngest.ingest`, the function a webhook's body takes after authentication, as the
receipt's account is configured now; the new receipt has source `resubmit` and names the receipt
it came from, the caller and the reason. The original receipt's row is locked for the
resubmission, so two at once record one; once a resubmission was taken (any outcome but a
refusal), resubmitting again records nothing and answers that resubmission. Reading needs a
reader of the tenant, a resubmission the operator role (a dry run: a reader).
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC
from typing import NoReturn

import asyncpg
import grpc
from google.protobuf import timestamp_pb2
from ordersync.intake.v1 import webhook_receipts_pb2 as pb
from ordersync.intake.v1 import webhook_receipts_pb2_grpc as pb_grpc

from libs.connectors.registry import Registry, UnknownConnector
from libs.platform.auth import OPERATOR, READ, GrpcAccess
from order_intake.api.webhooks import REFUSED_OUTCOMES, UNAVAILABLE, Sender, WebhookIngest
from order_intake.storage import receipts as storage
from order_intake.storage.orders import Resubmission

log = logging.getLogger(__name__)

OUTCOMES = frozenset(
    {
        "accepted",
        "unchanged",
        "duplicate",
        "stale",
        "invalid",
        "not_imported",
        "kept_accepted",
        "locked_after_sync",
        "ignored",
        "malformed",
        "too_large",
    }
)
_REFUSED = sorted(REFUSED_OUTCOMES)
# Only webhooks' bodies are what parse_push reads; a pulled or reconciled record is taken again
# by its account's next poll or reconciliation.
_RESUBMITTABLE_SOURCES = ("push", "resubmit")
MAX_REASON_CHARS = 500
DEFAULT_PAGE, MAX_PAGE = 50, 500


class WebhookReceiptServicer(pb_grpc.WebhookReceiptServiceServicer):
    """Kept receipts of a tenant the caller is granted; resubmission through `ingest`."""

    def __init__(self, pool: asyncpg.Pool, access: GrpcAccess, registry: Registry, ingest: WebhookIngest):
        self._pool = pool
        self._access = access
        self._registry = registry
        self._ingest = ingest

    async def ListWebhookReceipts(
        self, request: pb.ListWebhookReceiptsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWebhookReceiptsResponse:
        await self._access.require(context, request.tenant_id)
        if not 0 <= request.page_size <= MAX_PAGE:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"page_size must be between 0 and {MAX_PAGE}")
        unknown = sorted(set(request.outcomes) - OUTCOMES)
        if unknown:
            await _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown outcome {unknown[0][:40]!r}; intake records {', '.join(sorted(OUTCOMES))}",
            )
        try:
            before_id = _decode_token(request.page_token) if request.page_token else None
        except ValueError:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this API issued")
        limit = request.page_size or DEFAULT_PAGE
        rows = await storage.list_receipts(
            self._pool,
            request.tenant_id,
            sorted(set(request.outcomes)) or _REFUSED,
            limit,
            since=request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None,
            before_id=before_id,
        )
        token = _encode_token(rows[-1]["id"]) if len(rows) == limit else ""
        return pb.ListWebhookReceiptsResponse(receipts=[_receipt(r) for r in rows], next_page_token=token)

    async def GetWebhookReceipt(
        self, request: pb.GetWebhookReceiptRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWebhookReceiptResponse:
        await self._access.require(context, request.tenant_id)
        row = await storage.get_receipt(self._pool, request.tenant_id, request.receipt_id)
        if row is None:
            await _not_found(context, request.tenant_id, request.receipt_id)
        return pb.GetWebhookReceiptResponse(receipt=_receipt(row), body=bytes(row["body"]))

    async def ResubmitWebhookReceipt(
        self, request: pb.ResubmitWebhookReceiptRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResubmitWebhookReceiptResponse:
        tenant_id, receipt_id, dry_run = request.tenant_id, request.receipt_id, request.dry_run
        caller = await self._access.require(context, tenant_id, READ if dry_run else OPERATOR)
        reason = request.reason.strip()
        if not reason:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "reason is required: say what was fixed")
        if len(reason) > MAX_REASON_CHARS:
            await _abort(
                context, grpc.StatusCode.INVALID_ARGUMENT, f"reason is longer than {MAX_REASON_CHARS} characters"
            )
        edited = request.HasField("replacement_body")
        limit = self._ingest.limits.max_body_bytes
        if edited and len(request.replacement_body) > limit:
            await _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"replacement_body is {len(request.replacement_body)} bytes; a webhook body may be at most {limit}",
            )
        async with self._pool.acquire() as conn, conn.transaction():
            original = await storage.lock_for_resubmission(conn, tenant_id, receipt_id)
            if original is None:
                await _not_found(context, tenant_id, receipt_id)
            if original["outcome"] not in REFUSED_OUTCOMES:
                await _abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"receipt {receipt_id} was recorded as {original['outcome']}, not refused: nothing to resubmit",
                )
            if original["source"] not in _RESUBMITTABLE_SOURCES:
                await _abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"receipt {receipt_id} is a record from a {original['source']}, not a webhook: the account's"
                    f" next {original['source']} takes the order again",
                )
            taken = await storage.taken_resubmission(conn, tenant_id, receipt_id, _REFUSED)
            if taken is not None:
                return pb.ResubmitWebhookReceiptResponse(
                    outcome=taken["outcome"],
                    receipt_id=taken["id"],
                    order_id=taken["order_id"] or "",
                    detail=taken["detail"] if taken["outcome"] == "invalid" else "",
                    already_resubmitted=True,
                    dry_run=dry_run,
                )
            sender = self._sender(tenant_id, original["channel"], original["account"])
            if sender is None:
                await _abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"tenant {tenant_id!r} has no {original['channel']} account {original['account']!r} any more:"
                    " restore it in the tenants file to resubmit its webhooks",
                )
            body = request.replacement_body if edited else bytes(original["body"])
            if len(body) > limit:
                await _abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the kept body is {len(body)} bytes, above today's limit of {limit}: give a replacement_body",
                )
            resubmission = Resubmission(receipt_id, caller.name, reason, edited)
            ingested = await self._ingest.ingest(sender, body, resubmission=resubmission, dry_run=dry_run)
        if ingested.outcome == UNAVAILABLE:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, "could not store the resubmission; try again")
        if not dry_run:
            log.info(
                "webhook receipt resubmitted",
                extra={
                    "fields": {
                        "tenant_id": tenant_id,
                        "receipt_id": receipt_id,
                        "new_receipt_id": ingested.receipt_id,
                        "outcome": ingested.outcome,
                        "caller": caller.name,
                        "edited": edited,
                    }
                },
            )
        return pb.ResubmitWebhookReceiptResponse(
            outcome=ingested.outcome,
            receipt_id=ingested.receipt_id,
            order_id=ingested.order_id or "",
            detail=ingested.message,
            dry_run=dry_run,
        )

    def _sender(self, tenant_id: str, channel: str, account: str) -> Sender | None:
        """The receipt's account as configured now; None when it (or its connector) is gone."""
        try:
            connector = self._registry.channel(channel)
        except UnknownConnector:
            return None
        return self._ingest.configured_sender(tenant_id, connector, account)


def _receipt(row: asyncpg.Record) -> pb.WebhookReceipt:
    received = timestamp_pb2.Timestamp()
    received.FromDatetime(row["received_at"])
    return pb.WebhookReceipt(
        receipt_id=row["id"],
        received_at=received,
        channel=row["channel"],
        account=row["account"],
        source=row["source"],
        outcome=row["outcome"],
        detail=row["detail"],
        order_id=row["order_id"] or "",
        body_size=row["body_size"],
        trace_id=row["trace_id"],
        resubmitted_from=row["resubmitted_from"] or 0,
        resubmitted_by=row["resubmitted_by"] or "",
        resubmit_reason=row["resubmit_reason"] or "",
        body_edited=row["resubmit_edited"],
        resubmissions=list(row["resubmissions"]),
    )


def _encode_token(receipt_id: int) -> str:
    return base64.urlsafe_b64encode(f"r{receipt_id}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("r"):
            raise ValueError(text)
        return int(text[1:])
    except Exception as exc:
        raise ValueError("bad page token") from exc


async def _not_found(context: grpc.aio.ServicerContext, tenant_id: str, receipt_id: int) -> NoReturn:
    await _abort(context, grpc.StatusCode.NOT_FOUND, f"tenant {tenant_id!r} has no webhook receipt {receipt_id}")


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("context.abort returned")  # it raises; this tells type checkers so
