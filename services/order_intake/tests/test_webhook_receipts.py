"""WebhookReceiptService over real gRPC on real Postgres, beside the real webhook endpoint whose
refused bodies it reads and resubmits through the endpoint's own ingest path: every answer code,
the happy path, tenant isolation, and a resubmission taken once however often it is asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from google.protobuf import timestamp_pb2
from ordersync.intake.v1 import webhook_receipts_pb2 as pb
from ordersync.intake.v1 import webhook_receipts_pb2_grpc as pb_grpc

from libs.platform.grpc_server import bind
from libs.platform.testing import ACME_OPERATOR, ACME_READER, GLOBEX_OPERATOR, access_for_tests, authorized, serving
from order_intake.api.webhook_receipts import WebhookReceiptServicer
from order_intake.domain.intake import InputLimits
from services.order_intake.tests.endpoint import TENANT, Endpoint, encode, serve, webhook
from tests.databases import fresh_database

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.integration, pytest.mark.timeout(60)]

BODY_LIMIT = 64 * 1024
FIXED_ORDER = "0b1d6a55-0000-4000-8000-0000000000f1"


class Service:
    """The endpoint (to receive webhooks) and WebhookReceiptService over gRPC, on one database."""

    def __init__(self, endpoint: Endpoint, channel: grpc.aio.Channel):
        self.endpoint = endpoint
        self.pool = endpoint.pool
        self.stub = pb_grpc.WebhookReceiptServiceStub(channel)

    def as_(self, token: str):
        return authorized(self.stub, token)

    async def refused_webhook(self) -> tuple[int, bytes, bytes]:
        """Post a webhook cut short in transit: (its receipt id, the body kept, the whole body)."""
        whole = encode(webhook(id=FIXED_ORDER))
        cut = whole[: len(whole) // 2]
        response = await self.endpoint.post(cut)
        assert response.status_code == 400, response.text
        return response.json()["receipt_id"], cut, whole

    async def count(self, sql: str, *args) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {sql}", *args)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(infra) -> AsyncIterator[Service]:
    async with fresh_database(infra.pg_dsn) as dsn, serve(dsn, InputLimits(max_body_bytes=BODY_LIMIT)) as endpoint:
        servicer = WebhookReceiptServicer(endpoint.pool, access_for_tests(), endpoint.registry, endpoint.handler.ingest)
        async with serving(bind(pb, pb_grpc, "WebhookReceiptService", servicer)) as channel:
            yield Service(endpoint, channel)


@pytest_asyncio.fixture(loop_scope="module")
async def service(shared) -> Service:
    """The module's service, emptied: every test starts with no receipts, orders or events."""
    await shared.pool.execute("TRUNCATE webhook_receipts, order_revisions, orders, outbox CASCADE")
    return shared


def _resubmit(receipt_id: int, reason: str = "the proxy cut the body; resent whole", **fields):
    return pb.ResubmitWebhookReceiptRequest(tenant_id=TENANT, receipt_id=receipt_id, reason=reason, **fields)


async def _code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code()


async def test_a_refused_webhook_is_listed_read_and_resubmitted_fixed_once(service):
    accepted = (await service.endpoint.post(encode(webhook()))).json()
    receipt_id, cut, whole = await service.refused_webhook()
    reader, operator = service.as_(ACME_READER), service.as_(ACME_OPERATOR)

    listed = (await reader.ListWebhookReceipts(pb.ListWebhookReceiptsRequest(tenant_id=TENANT))).receipts
    assert [(r.receipt_id, r.outcome, r.source, r.channel, r.account) for r in listed] == [
        (receipt_id, "malformed", "push", "commerce7", "store")
    ]
    assert listed[0].body_size == len(cut) and listed[0].detail and not listed[0].resubmissions
    only_accepted = await reader.ListWebhookReceipts(
        pb.ListWebhookReceiptsRequest(tenant_id=TENANT, outcomes=["accepted"])
    )
    assert [r.receipt_id for r in only_accepted.receipts] == [accepted["receipt_id"]]
    shown = await reader.GetWebhookReceipt(pb.GetWebhookReceiptRequest(tenant_id=TENANT, receipt_id=receipt_id))
    assert shown.body == cut and shown.receipt.outcome == "malformed"

    # A reader may see what a resubmission would do, and nothing is recorded.
    dry = await reader.ResubmitWebhookReceipt(_resubmit(receipt_id, replacement_body=whole, dry_run=True))
    assert (dry.outcome, dry.receipt_id, dry.dry_run, dry.already_resubmitted) == ("accepted", 0, True, False)
    assert dry.order_id.startswith("ord_")
    assert await service.count("webhook_receipts") == 2 and await service.count("outbox") == 1

    taken = await operator.ResubmitWebhookReceipt(_resubmit(receipt_id, replacement_body=whole))
    assert (taken.outcome, taken.already_resubmitted, taken.dry_run, taken.order_id) == (
        "accepted",
        False,
        False,
        dry.order_id,
    )
    row = await service.pool.fetchrow("SELECT * FROM webhook_receipts WHERE id = $1", taken.receipt_id)
    assert (row["source"], row["resubmitted_from"], row["resubmitted_by"], row["resubmit_edited"]) == (
        "resubmit",
        receipt_id,
        "jane@acme.example",
        True,
    )
    assert row["resubmit_reason"] == "the proxy cut the body; resent whole" and bytes(row["body"]) == whole
    assert await service.count("orders WHERE order_id = $1 AND status = 'accepted'", taken.order_id) == 1
    assert await service.count("outbox") == 2  # the resubmitted order is announced, as a webhook's is

    again = await operator.ResubmitWebhookReceipt(_resubmit(receipt_id, replacement_body=whole))
    assert (again.already_resubmitted, again.receipt_id, again.outcome, again.order_id) == (
        True,
        taken.receipt_id,
        "accepted",
        taken.order_id,
    )
    assert await service.count("webhook_receipts") == 3 and await service.count("outbox") == 2

    shown = await reader.GetWebhookReceipt(pb.GetWebhookReceiptRequest(tenant_id=TENANT, receipt_id=receipt_id))
    assert list(shown.receipt.resubmissions) == [taken.receipt_id]
    new = await reader.GetWebhookReceipt(pb.GetWebhookReceiptRequest(tenant_id=TENANT, receipt_id=taken.receipt_id))
    assert (new.receipt.resubmitted_from, new.receipt.resubmitted_by, new.receipt.body_edited) == (
        receipt_id,
        "jane@acme.example",
        True,
    )


async def test_a_resubmission_refused_again_is_kept_and_may_be_retried_once_fixed(service):
    receipt_id, cut, whole = await service.refused_webhook()
    operator = service.as_(ACME_OPERATOR)

    unchanged = await operator.ResubmitWebhookReceipt(_resubmit(receipt_id, reason="retry as it was"))
    assert (unchanged.outcome, unchanged.already_resubmitted, unchanged.order_id) == ("malformed", False, "")
    assert unchanged.detail and unchanged.receipt_id > receipt_id
    row = await service.pool.fetchrow("SELECT * FROM webhook_receipts WHERE id = $1", unchanged.receipt_id)
    assert (row["source"], row["resubmitted_from"], row["resubmit_edited"], bytes(row["body"])) == (
        "resubmit",
        receipt_id,
        False,
        cut,
    )

    fixed = await operator.ResubmitWebhookReceipt(_resubmit(receipt_id, replacement_body=whole))
    assert (fixed.outcome, fixed.already_resubmitted) == ("accepted", False)
    assert await service.count("orders") == 1


async def test_two_resubmissions_at_once_record_one(service):
    receipt_id, _, whole = await service.refused_webhook()
    operator = service.as_(ACME_OPERATOR)
    answers = await asyncio.gather(
        *(operator.ResubmitWebhookReceipt(_resubmit(receipt_id, replacement_body=whole)) for _ in range(3))
    )
    assert sorted(a.already_resubmitted for a in answers) == [False, True, True]
    assert len({a.receipt_id for a in answers}) == 1
    assert await service.count("webhook_receipts WHERE resubmitted_from = $1", receipt_id) == 1
    assert await service.count("orders") == 1 and await service.count("outbox") == 1


async def test_another_tenants_receipt_or_an_unknown_one_is_not_found(service):
    endpoint = service.endpoint
    builder = endpoint.handler.ingest._builder
    globex = await endpoint.handler.ingest._writer.record(
        builder.receipt("globex", "commerce7", "store", b"{", "malformed", "cut short")
    )
    operator = service.as_(ACME_OPERATOR)
    for receipt_id in (globex.receipt_id, 999_999):
        get = pb.GetWebhookReceiptRequest(tenant_id=TENANT, receipt_id=receipt_id)
        assert await _code_of(operator.GetWebhookReceipt(get)) == grpc.StatusCode.NOT_FOUND
        resubmit = _resubmit(receipt_id, replacement_body=b"{}")
        assert await _code_of(operator.ResubmitWebhookReceipt(resubmit)) == grpc.StatusCode.NOT_FOUND
    listed = await operator.ListWebhookReceipts(pb.ListWebhookReceiptsRequest(tenant_id=TENANT))
    assert list(listed.receipts) == []
    # ... and globex's own operator sees it.
    theirs = await service.as_(GLOBEX_OPERATOR).ListWebhookReceipts(pb.ListWebhookReceiptsRequest(tenant_id="globex"))
    assert [r.receipt_id for r in theirs.receipts] == [globex.receipt_id]


async def test_callers_need_a_token_the_tenant_and_for_a_resubmission_the_operator_role(service):
    receipt_id, _, whole = await service.refused_webhook()
    listing = pb.ListWebhookReceiptsRequest(tenant_id=TENANT)
    assert await _code_of(service.stub.ListWebhookReceipts(listing, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
    globex = service.as_(GLOBEX_OPERATOR)
    assert await _code_of(globex.ListWebhookReceipts(listing)) == grpc.StatusCode.PERMISSION_DENIED
    get = pb.GetWebhookReceiptRequest(tenant_id=TENANT, receipt_id=receipt_id)
    assert await _code_of(globex.GetWebhookReceipt(get)) == grpc.StatusCode.PERMISSION_DENIED
    reader = service.as_(ACME_READER)
    resubmit = _resubmit(receipt_id, replacement_body=whole)
    assert await _code_of(reader.ResubmitWebhookReceipt(resubmit)) == grpc.StatusCode.PERMISSION_DENIED
    assert await service.count("webhook_receipts") == 1 and await service.count("orders") == 0


async def test_only_a_refused_webhook_of_an_account_still_configured_may_be_resubmitted(service):
    endpoint, operator = service.endpoint, service.as_(ACME_OPERATOR)
    accepted = (await endpoint.post(encode(webhook()))).json()["receipt_id"]
    duplicate = (await endpoint.post(encode(webhook()))).json()
    assert duplicate["status"] == "duplicate"
    builder, writer = endpoint.handler.ingest._builder, endpoint.handler.ingest._writer
    pulled = await writer.record(builder.receipt(TENANT, "commerce7", "store", b"{", "malformed", "x", source="pull"))
    removed = await writer.record(builder.receipt(TENANT, "commerce7", "old-store", b"{", "malformed", "x"))
    for receipt_id in (accepted, duplicate["receipt_id"], pulled.receipt_id, removed.receipt_id):
        resubmit = _resubmit(receipt_id, replacement_body=encode(webhook()))
        code = await _code_of(operator.ResubmitWebhookReceipt(resubmit))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, receipt_id
    assert await service.count("webhook_receipts WHERE source = 'resubmit'") == 0


async def test_a_reason_is_required_and_a_replacement_may_not_exceed_the_webhook_limit(service):
    receipt_id, _, _ = await service.refused_webhook()
    operator = service.as_(ACME_OPERATOR)
    for request in (
        _resubmit(receipt_id, reason="  "),
        _resubmit(receipt_id, reason="x" * 501),
        _resubmit(receipt_id, replacement_body=b"{" + b" " * BODY_LIMIT),
    ):
        assert await _code_of(operator.ResubmitWebhookReceipt(request)) == grpc.StatusCode.INVALID_ARGUMENT
    for listing in (
        pb.ListWebhookReceiptsRequest(tenant_id=TENANT, outcomes=["refused"]),
        pb.ListWebhookReceiptsRequest(tenant_id=TENANT, page_size=501),
        pb.ListWebhookReceiptsRequest(tenant_id=TENANT, page_token="bm9wZQ=="),
    ):
        assert await _code_of(operator.ListWebhookReceipts(listing)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await service.count("webhook_receipts") == 1


async def test_receipts_page_newest_first_and_since_keeps_the_recent_ones(service):
    first, _, _ = await service.refused_webhook()
    second, _, _ = await service.refused_webhook()
    third, _, _ = await service.refused_webhook()
    await service.pool.execute(
        "UPDATE webhook_receipts SET received_at = now() - interval '3 days' WHERE id = $1", first
    )
    reader = service.as_(ACME_READER)
    page = await reader.ListWebhookReceipts(pb.ListWebhookReceiptsRequest(tenant_id=TENANT, page_size=2))
    assert [r.receipt_id for r in page.receipts] == [third, second] and page.next_page_token
    rest = await reader.ListWebhookReceipts(
        pb.ListWebhookReceiptsRequest(tenant_id=TENANT, page_size=2, page_token=page.next_page_token)
    )
    assert [r.receipt_id for r in rest.receipts] == [first] and not rest.next_page_token
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    recent = await reader.ListWebhookReceipts(pb.ListWebhookReceiptsRequest(tenant_id=TENANT, since=since))
    assert [r.receipt_id for r in recent.receipts] == [third, second]
