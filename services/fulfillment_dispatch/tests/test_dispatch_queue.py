"""The dispatch queue on real Postgres: leases, attempt counting and fenced results."""

import asyncio
from datetime import timedelta

import pytest

from fulfillment_dispatch.storage.dispatches import AttemptResult, NewDispatch, claim_due, enqueue, record_results

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
CHECK_AFTER = timedelta(minutes=15)


def routed(order_id: str) -> NewDispatch:
    return NewDispatch(order_id, "acme", "vinoshipper", f"ACME-{order_id}", b"", "commerce7", order_id, "1001", "")


def result(order_id: str, attempt: int, status: str = "sent") -> AttemptResult:
    return AttemptResult(order_id, "acme", status, "", "", None, f"{status} by attempt {attempt}", attempt)


async def test_an_order_is_queued_once_however_often_it_is_routed(pool):
    async with pool.acquire() as conn:
        assert await enqueue(conn, [routed("o1")]) == ["o1"]
        assert await enqueue(conn, [routed("o1")]) == []


async def test_a_leased_order_is_not_claimed_again_until_its_lease_runs_out(pool):
    async with pool.acquire() as conn:
        await enqueue(conn, [routed("o1")])
    first = await claim_due(pool, 10, lease_s=0.5)
    assert [r["attempts"] for r in first] == [1]
    assert await claim_due(pool, 10, lease_s=0.5) == []
    await asyncio.sleep(0.6)
    assert [r["attempts"] for r in await claim_due(pool, 10, lease_s=30)] == [2]


async def test_a_late_result_from_an_attempt_whose_lease_was_taken_over_is_dropped(pool):
    async with pool.acquire() as conn:
        await enqueue(conn, [routed("o1")])
    await claim_due(pool, 10, lease_s=0.1)
    await asyncio.sleep(0.2)
    await claim_due(pool, 10, lease_s=30)  # attempt 2 takes over
    async with pool.acquire() as conn:
        assert await record_results(conn, [result("o1", attempt=2, status="sent")], first_check_after=CHECK_AFTER) == {
            "o1"
        }
        assert (
            await record_results(conn, [result("o1", attempt=1, status="failed")], first_check_after=CHECK_AFTER)
            == set()
        )
        row = await conn.fetchrow("SELECT status, lease_until FROM dispatches WHERE order_id = 'o1'")
        activity = await conn.fetch("SELECT message FROM dispatch_activity WHERE order_id = 'o1' ORDER BY id")
    assert row["status"] == "sent" and row["lease_until"] is None
    assert [a["message"] for a in activity][-1] == "sent by attempt 2"
