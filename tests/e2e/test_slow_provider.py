"""A Vinoshipper slower than the tenant's timeout: every order still arrives once, none submitted twice.

Vinoshipper takes 9 s to create each of the first orders; the tenant's client gives up after 3 s,
so every first attempt ends in a timeout while Vinoshipper is still creating the order. The next
attempt reads back, finds nothing yet, and sends again while the first request is still being
handled there.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb

from tests.e2e.conftest import Driver, tenant, web_order
from tests.system.journey import JourneyReader
from tests.system.stack import READER, Stack

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e, pytest.mark.timeout(420)]

ORDERS = 60
SLOW_CREATE_S = 9.0
CLIENT_TIMEOUT_S = 3.0


async def _eventually(read, done, what: str, timeout_s: float = 240.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value}")
        await asyncio.sleep(1.0)


async def _sent(driver: Driver) -> list[admin_pb.OrderSync]:
    request = admin_pb.ListOrdersRequest(
        tenant_id=driver.tenant_id, statuses=[admin_pb.SYNC_STATUS_SENT], page_size=500
    )
    return list((await driver.admin().ListOrders(request)).orders)


async def test_orders_created_slower_than_the_timeout_are_each_created_once_and_never_resubmitted(infra, tmp_path):
    spec = tenant("slow-winery", prefix="SLOW", provider_timeout_s=CLIENT_TIMEOUT_S)
    stack = Stack([spec], run_dir=tmp_path, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap)
    async with (
        stack,
        JourneyReader({name: stack.grpc_address(name) for name in stack.services}, stack.token(READER)) as reader,
    ):
        driver = Driver(stack, reader, spec.tenant_id)
        try:
            # Every way of creating an order is slow: POST (create) and PUT (upsert).
            for route in ("create", "upsert"):
                fault = {"route": route, "delay_s": SLOW_CREATE_S, "count": ORDERS}
                (await stack.http.post(f"{driver.vs}/_sim/faults", json=fault)).raise_for_status()

            placed = await asyncio.gather(*(driver.place(web_order()) for _ in range(ORDERS)))
            numbers = {f"SLOW-{p['order']['orderNumber']}" for p in placed}

            sent = await _eventually(lambda: _sent(driver), lambda s: len(s) == ORDERS, "every order sent")
            assert {o.provider_order_number for o in sent} == numbers
            assert sum(o.attempts >= 2 for o in sent) >= ORDERS // 2, "the slow creates timed out first attempts"

            # Let the slow requests Vinoshipper is still handling finish before counting.
            stats = await _eventually(
                driver.provider_stats,
                lambda s: sum(s["responses"].values()) == sum(s["requests"].values()),
                "Vinoshipper to answer every request it received",
            )
            stored = (await stack.http.get(f"{driver.vs}/_sim/orders")).json()["orders"]
        finally:
            await driver.close()

    assert stats["duplicate_submissions"] == 0
    assert stats["orders_created"] == ORDERS
    copies = Counter(order["orderNumber"] for order in stored)
    assert set(copies) == numbers and set(copies.values()) == {1}
