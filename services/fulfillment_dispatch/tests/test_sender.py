"""The sender on real Postgres and the real carrier-mapping service, with a fake batch provider:
chunks of the provider's batch size per account, per-item results, whole-call errors, re-attempts
that may exist, fenced late results, and service codes only for providers that need them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from ordersync.dispatch.v1 import events_pb2

from carrier_mapping.testing import ACME_READER, CALLERS, running_service
from fulfillment_dispatch.connection_health import DispatchHealth
from fulfillment_dispatch.sender import RECORD_AFTER_S, Sender
from libs.clients.carrier_mapping import CarrierMappingClient
from libs.connectors.base.idempotency import idempotency_key
from libs.platform.connection_health import SERVICE_CODE, SKU
from libs.platform.events import parse_envelope
from services.fulfillment_dispatch.tests.fake_provider import BUSY, DOWN, OWN_ID, REFUSED, TENANT, queue

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(90)]


@pytest_asyncio.fixture
async def carriers(infra):
    async with (
        running_service(infra.pg_dsn, CALLERS) as service,
        CarrierMappingClient(service.address, token=ACME_READER) as client,
    ):
        await asyncio.wait_for(client.synced.wait(), 5)
        yield client


def sender(pool, hub, carriers, *, lease_s: float = 30) -> Sender:
    return Sender(
        pool,
        hub.accounts,
        carriers,
        topic="dispatch.orders.v1",
        producer="test",
        lease_s=lease_s,
        batch=50,
        max_attempts=5,
        concurrency=8,
        first_check_after=timedelta(minutes=15),
    )


async def statuses(pool) -> dict[str, tuple[str, str]]:
    rows = await pool.fetch("SELECT external_number, status, reason_code FROM dispatches")
    return {r["external_number"]: (r["status"], r["reason_code"]) for r in rows}


async def events(pool) -> list:
    """The outbox's events, as their messages."""
    found = []
    for row in await pool.fetch("SELECT value FROM outbox ORDER BY id"):
        envelope = parse_envelope(row["value"])
        for kind in (events_pb2.OrderDispatched, events_pb2.OrderDispatchFailed):
            message = kind()
            if envelope.payload.Unpack(message):
                found.append(message)
    return found


async def due_now(pool) -> None:
    await pool.execute("UPDATE dispatches SET next_attempt_at = now() WHERE status = 'retry_wait'")


async def test_seven_due_orders_of_one_account_go_in_calls_of_three_three_and_one(pool, hub, carriers):
    numbers = [f"100{n}" for n in range(7)]
    await queue(pool, *numbers, route="west")

    assert await sender(pool, hub, carriers).run_once() == 7

    calls = hub.vendor.calls
    assert sorted(len(call) for call in calls) == [1, 3, 3]
    submitted = [item for call in calls for item in call]
    assert sorted(item.order.external_number for item in submitted) == numbers
    assert {item.order_number for item in submitted} == {f"B-{n}" for n in numbers}
    assert all(item.options == {"warehouse": "W1"} and item.service_code == "" for item in submitted)
    assert not any(item.may_exist for item in submitted)
    assert await statuses(pool) == dict.fromkeys(numbers, ("sent", ""))
    dispatched = await events(pool)
    assert len(dispatched) == 7 and all(isinstance(e, events_pb2.OrderDispatched) for e in dispatched)
    assert {(e.provider, e.provider_account, e.channel_ref.account) for e in dispatched} == {
        ("batchship", "batch", "store")
    }
    activity = await pool.fetchval(
        "SELECT message FROM dispatch_activity WHERE order_id = 'ord-1000' AND kind = 'sent'"
    )
    assert activity == "taken as B-1000"


async def test_orders_of_two_accounts_never_share_a_call(pool, hub, carriers):
    await queue(pool, "2001", "2002")
    await queue(pool, "2003", account="nocancel", provider="stuckship")

    await sender(pool, hub, carriers).run_once()

    accounts_per_call = sorted("".join(sorted({i.order_number[0] for i in call})) for call in hub.vendor.calls)
    assert accounts_per_call == ["B", "S"]


async def test_each_item_of_a_call_gets_its_own_result(pool, hub, carriers):
    await queue(pool, f"{REFUSED}-1", f"{BUSY}-1", "3001")

    await sender(pool, hub, carriers).run_once()

    assert [len(call) for call in hub.vendor.calls] == [3]
    assert await statuses(pool) == {
        f"{REFUSED}-1": ("failed", "UNKNOWN_SKU"),
        f"{BUSY}-1": ("retry_wait", "PROVIDER_UNAVAILABLE"),
        "3001": ("sent", ""),
    }
    reason = await pool.fetchval("SELECT reason FROM dispatches WHERE external_number = $1", f"{REFUSED}-1")
    assert reason == "SKU CAB-1999 is not a product of this producer: CAB-1999"
    announced = {type(e).__name__: e for e in await events(pool)}
    assert set(announced) == {"OrderDispatched", "OrderDispatchFailed"}
    assert announced["OrderDispatchFailed"].reason_code == "UNKNOWN_SKU"
    assert announced["OrderDispatchFailed"].provider_account == "batch"


async def test_the_providers_own_id_of_an_order_is_kept_and_announced(pool, hub, carriers):
    await queue(pool, f"{OWN_ID}-1", "3101")

    await sender(pool, hub, carriers).run_once()

    rows = await pool.fetch("SELECT external_number, provider_reference FROM dispatches")
    assert {r["external_number"]: r["provider_reference"] for r in rows} == {f"{OWN_ID}-1": "V1", "3101": ""}
    announced = {e.channel_ref.external_number: e.provider_reference for e in await events(pool)}
    assert announced == {f"{OWN_ID}-1": "V1", "3101": ""}


async def test_an_error_of_the_whole_call_applies_to_its_chunk_only(pool, hub, carriers):
    await queue(pool, f"{DOWN}-1", "4001", "4002", "4003", "4004", "4005")

    await sender(pool, hub, carriers).run_once()

    failed_call = next(call for call in hub.vendor.calls if any(i.order.external_number == f"{DOWN}-1" for i in call))
    in_failed_call = {item.order.external_number for item in failed_call}
    assert len(in_failed_call) == 3
    expected = {
        number: ("retry_wait", "PROVIDER_UNAVAILABLE") if number in in_failed_call else ("sent", "")
        for number in [f"{DOWN}-1", "4001", "4002", "4003", "4004", "4005"]
    }
    assert await statuses(pool) == expected
    activity = await pool.fetchval("SELECT message FROM dispatch_activity WHERE order_id = $1", f"ord-{DOWN}-1")
    assert activity == "routed to provider; queued for sending"
    retry = await pool.fetchval("SELECT message FROM dispatch_activity WHERE kind = 'retry_wait' LIMIT 1")
    assert retry == "attempt 1: the provider is down for maintenance"


async def test_a_re_attempt_may_exist_at_the_provider_and_keeps_its_idempotency_key(pool, hub, carriers):
    await queue(pool, f"{BUSY}-2")
    send = sender(pool, hub, carriers)
    await send.run_once()
    await due_now(pool)

    await send.run_once()

    first, second = (call[0] for call in hub.vendor.calls)
    assert (first.may_exist, second.may_exist) == (False, True)
    assert first.idempotency_key == second.idempotency_key == idempotency_key("dispatch", TENANT, f"ord-{BUSY}-2")
    assert await pool.fetchval("SELECT attempts FROM dispatches") == 2


async def test_a_late_result_whose_lease_was_taken_over_is_dropped_with_its_event(pool, hub, carriers):
    await queue(pool, "5001")
    hold = hub.vendor.hold = asyncio.Event()
    slow = asyncio.create_task(sender(pool, hub, carriers, lease_s=30).run_once())
    await asyncio.wait_for(hub.vendor.entered.wait(), 10)
    # The slow attempt's lease runs out while the provider holds it, as it does for a replica
    # stalled past its lease (its renewals stalled with it).
    await pool.execute("UPDATE dispatches SET lease_until = now() - interval '1 second'")

    assert await sender(pool, hub, carriers).run_once() == 1  # attempt 2 takes over and is recorded
    hold.set()
    assert await slow == 1

    assert len(hub.vendor.calls) == 2
    assert await statuses(pool) == {"5001": ("sent", "")}
    assert len(await events(pool)) == 1
    sent = await pool.fetch("SELECT message FROM dispatch_activity WHERE kind = 'sent'")
    assert len(sent) == 1


async def test_a_provider_needing_service_codes_is_asked_in_its_own_codes_and_unmapped_orders_fail(pool, hub, carriers):
    await queue(pool, "6001", account="codes", provider="codeship")
    await queue(pool, "6002")

    await sender(pool, hub, carriers).run_once()

    assert [[item.order.external_number for item in call] for call in hub.vendor.calls] == [["6002"]]
    assert await statuses(pool) == {"6001": ("failed", "UNMAPPED_CARRIER"), "6002": ("sent", "")}
    reason = await pool.fetchval("SELECT reason FROM dispatches WHERE external_number = '6001'")
    assert "codeship" in reason


async def test_an_order_whose_provider_account_is_not_configured_waits_and_says_why(pool, hub, carriers):
    await queue(pool, "7001", account="gone")

    await sender(pool, hub, carriers).run_once()

    assert await statuses(pool) == {"7001": ("retry_wait", "PROVIDER_NOT_CONFIGURED")}
    assert hub.vendor.calls == []
    assert "has no account 'gone'" in await pool.fetchval("SELECT reason FROM dispatches")


async def test_a_slow_call_neither_delays_recording_the_others_nor_loses_its_lease(pool, hub, carriers):
    """Results are recorded as their calls complete (group commits), not when the whole pass
    ends; the lease of an order whose call is still in flight is renewed, so it is never claimed
    again meanwhile."""
    await queue(pool, "9001")
    await queue(pool, "9002", account="nocancel", provider="stuckship")
    release = asyncio.Event()
    hub.vendor.hold = release  # the first call made waits until released
    lease_s = 0.9
    the_pass = asyncio.create_task(sender(pool, hub, carriers, lease_s=lease_s).run_once())
    await asyncio.wait_for(hub.vendor.entered.wait(), 10)

    async def one_sent() -> dict[str, tuple[str, str]]:
        while True:
            found = await statuses(pool)
            if sorted(status for status, _ in found.values()) == ["sending", "sent"]:
                return found
            await asyncio.sleep(0.05)

    found = await asyncio.wait_for(one_sent(), RECORD_AFTER_S + 5)
    [held] = [number for number, (status, _) in found.items() if status == "sending"]
    await asyncio.sleep(lease_s * 2)  # past the lease it was claimed with
    assert await pool.fetchval("SELECT lease_until > now() FROM dispatches WHERE external_number = $1", held), (
        "the lease of the call in flight was renewed"
    )
    assert not the_pass.done()

    release.set()
    assert await asyncio.wait_for(the_pass, 10) == 2
    assert await statuses(pool) == {"9001": ("sent", ""), "9002": ("sent", "")}
    assert len(await events(pool)) == 2


async def test_failures_keep_the_codes_they_found_unmapped_and_connection_health_counts_them(pool, hub, carriers):
    # The provider names CAB-1999; CAB-1 is only part of it, and WINE-7 it does not name.
    await queue(pool, f"{REFUSED}-1", f"{REFUSED}-2", skus=("CAB-1", "CAB-1999", "WINE-7"))
    await queue(pool, "6001", account="codes", provider="codeship")
    await queue(pool, "7001")

    await sender(pool, hub, carriers).run_once()

    rows = await pool.fetch("SELECT external_number, unmapped_codes FROM dispatches ORDER BY external_number")
    assert {r["external_number"]: json.loads(r["unmapped_codes"]) for r in rows} == {
        "6001": ["03"],
        "7001": [],
        f"{REFUSED}-1": ["CAB-1999"],
        f"{REFUSED}-2": ["CAB-1999"],
    }
    health = await DispatchHealth().connection_health(pool, TENANT, datetime.now(UTC) - timedelta(hours=1))
    by_account = {h.account: h for h in health}
    assert set(by_account) == {"batch", "codes"}
    batch, codes = by_account["batch"], by_account["codes"]
    assert (batch.connector, batch.attempts, batch.failures, batch.unsent_count) == ("batchship", 3, 2, 0)
    assert "CAB-1999" in batch.last_error
    assert [(u.kind, u.code, u.orders, u.connector) for u in batch.unmapped] == [(SKU, "CAB-1999", 2, "batchship")]
    assert batch.unmapped[0].example_order_id in {f"ord-{REFUSED}-1", f"ord-{REFUSED}-2"}
    assert [(u.kind, u.code, u.orders, u.example_order_id) for u in codes.unmapped] == [
        (SERVICE_CODE, "03", 1, "ord-6001")
    ]
    assert (codes.attempts, codes.failures) == (1, 1)
