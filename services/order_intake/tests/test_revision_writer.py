"""Intake's group-commit writer on real Postgres: every outcome a webhook can have."""

import asyncio

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import events_pb2

from libs.platform.db import create_pool, migrate
from libs.platform.events import new_event
from order_intake.app import MIGRATIONS
from order_intake.storage.orders import Revision, RevisionWriter

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


def revision(external_id: str, updated_at: str, outcome: str = "accepted", gift_message: str = "") -> Revision:
    order = order_pb2.Order(
        order_id=f"ord_{external_id}",
        tenant_id="acme",
        external_id=external_id,
        revision=updated_at,
        gift_message=gift_message,
    )
    return Revision(
        tenant_id="acme",
        channel="commerce7",
        body=b"{}",
        trace_id="",
        outcome_if_new=outcome,
        detail="shipTo.stateCode: is required" if outcome == "invalid" else "",
        order_id=order.order_id,
        external_id=external_id,
        external_number="1001",
        revision=updated_at,
        order_proto=order.SerializeToString(),
        build_event=lambda first: new_event(
            "intake.orders.v1",
            events_pb2.OrderAccepted(order=order, first_revision=first),
            aggregate_id=order.order_id,
            tenant_id="acme",
            producer="t",
        ),
    )


@pytest_asyncio.fixture
async def writer(database):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 4)
    writer = RevisionWriter(pool, max_batch=50)
    await writer.start()
    yield writer, pool
    await writer.stop()
    await pool.close()


async def test_outcomes_of_revisions_committed_together(writer):
    writer, pool = writer
    outcomes = await asyncio.gather(
        writer.record(revision("a", "2026-11-23T10:00:00.000Z")),
        writer.record(revision("a", "2026-11-23T10:00:00.000Z")),  # the channel retried
        writer.record(revision("b", "2026-11-23T10:00:00.000Z", outcome="invalid")),
    )
    assert [o.outcome for o in outcomes] == ["accepted", "duplicate", "invalid"]
    newer = await writer.record(revision("a", "2026-11-23T11:00:00.000Z", gift_message="Enjoy"))
    older = await writer.record(revision("a", "2026-11-23T09:00:00.000Z"))
    assert (newer.outcome, older.outcome) == ("accepted", "stale")

    order = await pool.fetchrow("SELECT latest_revision, revision_count FROM orders WHERE order_id = 'ord_a'")
    assert (order["latest_revision"], order["revision_count"]) == ("2026-11-23T11:00:00.000Z", 3)
    invalid = await pool.fetchrow("SELECT status, status_reason FROM orders WHERE order_id = 'ord_b'")
    assert tuple(invalid) == ("invalid", "shipTo.stateCode: is required")
    # Events only for accepted revisions: the first and the newer one of order a.
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
    assert await pool.fetchval("SELECT count(*) FROM webhook_receipts") == 5


async def test_a_newer_revision_that_changes_nothing_is_recorded_but_not_announced(writer):
    # What Commerce7 sends after ordersync writes a fulfilment: same order, new updatedAt.
    writer, pool = writer
    first = await writer.record(revision("a", "2026-11-23T10:00:00.000Z"))
    echo = await writer.record(revision("a", "2026-11-23T10:05:00.000Z"))
    assert (first.outcome, echo.outcome) == ("accepted", "unchanged")
    assert (
        await pool.fetchval("SELECT latest_revision FROM orders WHERE order_id = 'ord_a'") == "2026-11-23T10:05:00.000Z"
    )
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_malformed_body_is_kept_with_its_reason(writer):
    writer, pool = writer
    kept = await writer.record(
        Revision(
            tenant_id="acme",
            channel="commerce7",
            body=b"not json",
            trace_id="",
            outcome_if_new="malformed",
            detail="commerce7 webhook: body is not JSON",
        )
    )
    row = await pool.fetchrow("SELECT outcome, detail, body FROM webhook_receipts WHERE id = $1", kept.receipt_id)
    assert tuple(row) == ("malformed", "commerce7 webhook: body is not JSON", b"not json")
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0
