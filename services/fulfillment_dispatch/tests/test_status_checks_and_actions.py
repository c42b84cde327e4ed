"""Status checks and operator actions at the service level, on real Postgres, with the fake batch
provider: read-backs applied, unchanged or missing; Retry, Don't Send, Void Sync (with and
without the provider's CANCEL) and Check Fulfillment, in the provider's own words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ordersync.common.v1 import shipment_pb2
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.domain.actions import ActionRefused
from fulfillment_dispatch.operator_actions import Operator, OperatorActions, OrderSelector
from fulfillment_dispatch.provider_words import status_title
from fulfillment_dispatch.status_checks import StatusChecker, check_at_provider
from fulfillment_dispatch.storage.dispatches import AttemptResult, claim_due, record_results
from libs.platform.events import parse_envelope
from services.fulfillment_dispatch.tests.fake_provider import TENANT, queue, recorder

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
OPERATOR = Operator("jane@acme.example", "customer asked")


@pytest.fixture
def requeued() -> list[bool]:
    """One entry per time the actions woke the sender."""
    return []


@pytest.fixture
def actions(pool, hub, requeued):
    return OperatorActions(
        pool,
        hub.accounts,
        recorder(pool, hub.registry),
        registry=hub.registry,
        on_requeued=lambda: requeued.append(True),
    )


async def settle(pool, number: str, status: str, *, reason_code: str = "", account: str = "batch") -> None:
    """Queue an order and record one attempt's result, as the sender would."""
    provider = {"batch": "batchship", "nocancel": "stuckship"}[account]
    await queue(pool, number, account=account, provider=provider)
    [row] = await claim_due(pool, 10, lease_s=30)
    result = AttemptResult(row["order_id"], TENANT, status, reason_code, reason_code.lower(), None, status, 1)
    async with pool.acquire() as conn:
        await record_results(conn, [result], first_check_after=timedelta(minutes=15))


async def sent_at_vendor(pool, hub, number: str, account: str = "batch") -> str:
    await settle(pool, number, "sent", account=account)
    order_number = await pool.fetchval(
        "SELECT provider_order_number FROM dispatches WHERE external_number = $1", number
    )
    hub.vendor.orders[order_number] = shipment_pb2.Shipment()  # taken, not yet fulfilled
    return order_number


async def row_of(pool, number: str):
    return await pool.fetchrow(
        "SELECT order_id, tenant_id, provider, provider_account, provider_order_number, status, reason_code, reason,"
        " shipment_status FROM dispatches WHERE external_number = $1",
        number,
    )


async def shipment_events(pool) -> list[events_pb2.ShipmentUpdated]:
    found = []
    for row in await pool.fetch("SELECT value FROM outbox ORDER BY id"):
        message = events_pb2.ShipmentUpdated()
        if parse_envelope(row["value"]).payload.Unpack(message):
            found.append(message)
    return found


def select(number: str) -> OrderSelector:
    return OrderSelector(TENANT, channel_order_number=number)


# ---- status checks ----------------------------------------------------------------------------


async def test_a_read_back_with_news_is_applied_and_announced(pool, hub):
    number = await sent_at_vendor(pool, hub, "1001")
    hub.vendor.ship(number, "1Z999")

    outcome = await check_at_provider(hub.accounts, recorder(pool, hub.registry), await row_of(pool, "1001"))

    assert outcome == "applied"
    assert (await row_of(pool, "1001"))["shipment_status"] == "shipped"
    [event] = await shipment_events(pool)
    assert (event.provider, event.provider_account, event.channel_ref.account) == ("batchship", "batch", "store")
    assert list(event.shipment.tracking_numbers) == ["1Z999"]


async def test_a_read_back_without_news_is_unchanged(pool, hub):
    number = await sent_at_vendor(pool, hub, "1002")
    hub.vendor.ship(number, "1Z999")
    check = recorder(pool, hub.registry)
    await check_at_provider(hub.accounts, check, await row_of(pool, "1002"))

    assert await check_at_provider(hub.accounts, check, await row_of(pool, "1002")) == "unchanged"
    assert len(await shipment_events(pool)) == 1


async def test_an_order_the_provider_no_longer_has_is_missing_and_logged(pool, hub):
    await settle(pool, "1003", "sent")  # the vendor never had it

    outcome = await check_at_provider(hub.accounts, recorder(pool, hub.registry), await row_of(pool, "1003"))

    assert outcome == "missing"
    logged = await pool.fetchval("SELECT message FROM dispatch_activity WHERE kind = 'status_check_missing'")
    assert logged == "Batchship has no order B-1003 (deleted there?)"


async def test_the_checker_reads_back_due_orders_and_applies_their_news(pool, hub):
    number = await sent_at_vendor(pool, hub, "1004")
    hub.vendor.ship(number, "1Z1004")
    await pool.execute("UPDATE dispatches SET next_check_at = now()")
    checker = StatusChecker(pool, hub.accounts, recorder(pool, hub.registry), batch=10, base_s=60, max_s=600)

    assert await checker.run_once() == 1

    assert (await row_of(pool, "1004"))["shipment_status"] == "shipped"
    assert await checker.run_once() == 0  # next check scheduled later


# ---- operator actions -------------------------------------------------------------------------


async def test_retry_queues_a_failed_order_again_with_a_fresh_budget(pool, actions, requeued):
    await settle(pool, "2001", "failed", reason_code="UNKNOWN_SKU")

    row = await actions.retry(select("2001"), OPERATOR)

    assert (row["status"], row["reason_code"]) == ("sending", "")
    assert requeued == [True]
    assert await pool.fetchval("SELECT attempts_before_retry FROM dispatches") == 1
    logged = await pool.fetchrow("SELECT actor, message FROM dispatch_activity WHERE kind = 'operator_retry'")
    assert tuple(logged) == ("jane@acme.example", "customer asked")


async def test_retry_of_a_sent_order_is_refused_in_the_providers_words(pool, actions):
    await settle(pool, "2002", "sent")

    with pytest.raises(ActionRefused) as refused:
        await actions.retry(select("2002"), OPERATOR)

    assert str(refused.value).startswith("only a Failed to Send order can be retried; this one is Sent to Batchship")
    assert "Void Sync to cancel it at Batchship" in str(refused.value)


async def test_dont_send_keeps_a_failed_order_in_the_channel(pool, hub, actions):
    await settle(pool, "2003", "failed", reason_code="UNKNOWN_SKU")

    row = await actions.dont_send(select("2003"), OPERATOR)

    assert (row["status"], row["reason_code"]) == ("not_required", "DONT_SEND")
    assert row["reason"] == "Don't Send by jane@acme.example: customer asked"
    assert status_title(hub.registry, row) == "Not Required to Send"


async def test_void_cancels_at_a_provider_that_can_and_the_order_is_voided(pool, hub, actions):
    number = await sent_at_vendor(pool, hub, "2004")

    row = await actions.void(select("2004"), OPERATOR)

    assert hub.vendor.cancelled == [number]
    assert (row["status"], row["reason_code"]) == ("voided", "VOIDED_AT_PROVIDER")
    assert row["reason"] == "cancelled at Batchship: customer asked (by jane@acme.example)"
    assert status_title(hub.registry, row) == "Voided in Batchship"
    [event] = await shipment_events(pool)
    assert event.provider_account == "batch"


async def test_void_is_refused_for_a_provider_that_cannot_cancel(pool, hub, actions):
    await sent_at_vendor(pool, hub, "2005", account="nocancel")

    with pytest.raises(ActionRefused) as refused:
        await actions.void(select("2005"), OPERATOR)

    assert (
        str(refused.value)
        == "Stuckship orders cannot be cancelled from here; cancel it at Stuckship and Check Fulfillment"
    )
    assert hub.vendor.cancelled == []
    assert (await row_of(pool, "2005"))["status"] == "sent"


async def test_check_fulfillment_reads_back_now_and_says_whether_anything_changed(pool, hub, actions):
    number = await sent_at_vendor(pool, hub, "2006")
    hub.vendor.ship(number, "1Z2006")

    row, changed = await actions.check_fulfillment(select("2006"), OPERATOR)
    again, changed_again = await actions.check_fulfillment(select("2006"), OPERATOR)

    assert (changed, changed_again) == (True, False)
    assert row["shipment_status"] == again["shipment_status"] == "shipped"
    logged = await pool.fetch("SELECT message FROM dispatch_activity WHERE kind = 'operator_check_fulfillment'")
    assert [r["message"] for r in logged] == [
        "Check Fulfillment (customer asked): found an update",
        "Check Fulfillment (customer asked): no change",
    ]


async def test_check_fulfillment_of_an_order_never_sent_is_refused_naming_the_provider(pool, actions):
    await settle(pool, "2007", "failed", reason_code="UNKNOWN_SKU")

    with pytest.raises(ActionRefused) as refused:
        await actions.check_fulfillment(select("2007"), OPERATOR)

    assert str(refused.value) == "the order never reached Batchship (it is Failed to Send); there is nothing to check"
