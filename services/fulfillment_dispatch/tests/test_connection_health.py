"""Dispatch's connection health on real Postgres: per provider account the orders still to send
and the oldest of them, the sender's results in the window, the latest failure, the SKUs and
shipping codes failed orders found unmapped; another tenant's orders never count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fulfillment_dispatch.connection_health import DispatchHealth
from libs.platform.connection_health import SERVICE_CODE, SKU

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
NOW = datetime.now(UTC)


async def seed(pool, order_id: str, status: str, *, tenant: str = "acme", account: str = "vs", **columns) -> None:
    values = {
        "order_id": order_id,
        "tenant_id": tenant,
        "provider": "vinoshipper",
        "provider_account": account,
        "status": status,
        "provider_order_number": "",
        "order_proto": b"",
        "channel": "commerce7",
        "external_id": order_id,
        "external_number": order_id,
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO dispatches ({names}) VALUES ({marks})", *values.values())


async def test_each_provider_account_of_the_tenant_with_its_queue_results_and_unmapped_codes(pool):
    await seed(pool, "q1", "sending", created_at=NOW - timedelta(hours=3))
    await seed(pool, "q2", "retry_wait", created_at=NOW - timedelta(hours=1), last_result_at=NOW - timedelta(minutes=5))
    await seed(pool, "s1", "sent", last_result_at=NOW - timedelta(hours=2))
    await seed(
        pool, "pulled", "awaiting_pull", account="cs", provider="shipstation", created_at=NOW - timedelta(days=2)
    )
    await seed(pool, "s_old", "sent", last_result_at=NOW - timedelta(days=3))  # before the window
    sku = {"reason_code": "UNKNOWN_SKU", "unmapped_codes": '["WINE-12"]'}
    await seed(pool, "f1", "failed", last_result_at=NOW - timedelta(hours=4), reason="SKU WINE-12 unknown", **sku)
    await seed(pool, "f2", "failed", last_result_at=NOW - timedelta(hours=1), reason="no WINE-12", **sku)
    await seed(
        pool,
        "f3",
        "failed",
        account="ss",
        provider="shipstation",
        last_result_at=NOW - timedelta(minutes=30),
        reason_code="UNMAPPED_CARRIER",
        reason="no service code for GROUND",
        unmapped_codes='["GROUND"]',
    )
    await seed(pool, "f_old", "failed", last_result_at=NOW - timedelta(days=2), reason="old", **sku)
    await seed(pool, "other", "failed", tenant="globex", last_result_at=NOW, reason="globex's", **sku)
    await seed(pool, "other_q", "sending", tenant="globex", account="gx", created_at=NOW - timedelta(days=9))

    health = await DispatchHealth().connection_health(pool, "acme", NOW - timedelta(hours=24))

    by_account = {h.account: h for h in health}
    assert set(by_account) == {"vs", "ss", "cs"}
    vs, ss, cs = by_account["vs"], by_account["ss"], by_account["cs"]
    assert (vs.connector, vs.unsent_count, vs.oldest_unsent) == ("vinoshipper", 2, NOW - timedelta(hours=3))
    assert (vs.attempts, vs.failures) == (3, 2)  # s1, f1, f2: retries still waiting are no result yet
    assert vs.last_error == "no WINE-12"  # f2, the latest failure with a reason
    assert [(u.kind, u.code, u.orders, u.last_seen, u.example_order_id) for u in vs.unmapped] == [
        (SKU, "WINE-12", 2, NOW - timedelta(hours=1), "f2")
    ]
    assert (ss.connector, ss.unsent_count, ss.oldest_unsent, ss.attempts, ss.failures) == ("shipstation", 0, None, 1, 1)
    assert ss.last_error == "no service code for GROUND"
    assert [(u.kind, u.code, u.connector) for u in ss.unmapped] == [(SERVICE_CODE, "GROUND", "commerce7")]
    # an order the provider has not fetched yet waits too, however old
    assert (cs.unsent_count, cs.oldest_unsent, cs.attempts) == (1, NOW - timedelta(days=2), 0)


async def test_the_latest_failure_in_the_window_is_the_last_error(pool):
    await seed(pool, "f1", "failed", last_result_at=NOW - timedelta(hours=2), reason="earlier")
    await seed(pool, "r1", "retry_wait", last_result_at=NOW - timedelta(minutes=1), reason="provider busy")
    await seed(pool, "f_old", "failed", last_result_at=NOW - timedelta(days=2), reason="before the window")

    [vs] = await DispatchHealth().connection_health(pool, "acme", NOW - timedelta(hours=24))
    assert vs.last_error == "provider busy"
    [later] = await DispatchHealth().connection_health(pool, "acme", NOW - timedelta(seconds=10))
    assert (later.last_error, later.attempts, later.unsent_count) == ("", 0, 1)


async def test_a_tenant_with_no_orders_has_no_accounts(pool):
    await seed(pool, "other", "sending", tenant="globex")
    assert await DispatchHealth().connection_health(pool, "acme", NOW - timedelta(hours=24)) == []
