"""Cin7 Omni → ShipStation in push mode, through the whole stack on real Kafka and Postgres.

Orders are entered in the Cin7 simulator as a user would (approved, Fully Picked, a delivery
country, lines to dispatch), pulled by intake, routed, and created at the ShipStation simulator,
which keeps ShipStation's real 40 requests a minute. Shipments come back by SHIP_NOTIFY and, when
one is lost, by dispatch's shipment polling. Status checks are pushed out to an hour, so what
finds a lost notice here is the poll, not a per-order read-back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.conftest import Driver
from tests.system.journey import JourneyReader
from tests.system.stack import LABELS, OMNI, READER, Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

TENANT = "harbour-wines"
CUSTOM = "ready-cellars"  # Cin7 stages of its own: "Ready To Ship" is its Fully Picked
SENT, FAILED = "Sent to ShipStation", "Failed to Send"


class Push:
    """The tenant's two vendors as a test drives them, and dispatch as operators see it."""

    def __init__(self, stack: Stack, driver: Driver, spec: TenantSpec):
        self.stack, self.driver, self.spec = stack, driver, spec
        self.cin7 = f"{stack.sim_urls['cin7']}/_sim/accounts/{spec.account(OMNI)['username']}"
        self.ss = stack.sim_urls["shipstation"]
        self.ss_account = f"{self.ss}/_sim/accounts/{spec.tenant_id}.{LABELS}"

    async def enter(self, *references: str, stage: str = "Fully Picked") -> None:
        """Orders entered in Cin7 that pass every import rule."""
        orders = [cin7_order(reference, stage) for reference in references]
        response = await self.stack.http.post(f"{self.cin7}/orders", json={"orders": orders})
        response.raise_for_status()

    async def shipstation(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.stack.http.post(f"{self.ss_account}/{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def stats(self) -> dict[str, Any]:
        return (await self.stack.http.get(f"{self.ss}/_sim/stats")).json()

    async def dispatch_rows(self, prefix: str) -> dict[str, str]:
        conn = await self.stack.connect_service_db()
        try:
            rows = await conn.fetch(
                "SELECT external_number, status FROM fulfillment_dispatch.dispatches WHERE external_number LIKE $1",
                f"{prefix}%",
            )
        finally:
            await conn.close()
        return {r["external_number"]: r["status"] for r in rows}

    async def receipts(self) -> int:
        conn = await self.stack.connect_service_db()
        try:
            return await conn.fetchval("SELECT count(*) FROM fulfillment_dispatch.provider_webhooks")
        finally:
            await conn.close()


def cin7_order(reference: str, stage: str) -> dict[str, Any]:
    return {
        "reference": reference,
        "stage": stage,
        "status": "Approved",
        "isApproved": True,
        "firstName": "Mere",
        "lastName": "Tane",
        "email": "mere@harbourbistro.example",
        "mobile": "+1 415 555 0142",
        "deliveryFirstName": "Mere",
        "deliveryLastName": "Tane",
        "deliveryAddress1": "200 Embarcadero",
        "deliveryCity": "San Francisco",
        "deliveryState": "CA",
        "deliveryPostalCode": "94111",
        "deliveryCountry": "US",
        "freightDescription": "UPS Ground",
        "lineItems": [{"code": "CAB-750", "name": "Estate Cabernet 750ml", "qty": 6, "unitPrice": 35.0}],
    }


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tenants(infra, tmp_path_factory):
    """Push per tenant: TENANT (Cin7's default stages), CUSTOM (its own "Ready To Ship" stage,
    which its ShipStation account does not map yet)."""
    specs = [
        TenantSpec.cin7_shipstation(TENANT, cin7={"poll_interval_s": 1}),
        TenantSpec.cin7_shipstation(CUSTOM, cin7={"poll_interval_s": 1, "fully_picked_stage": "Ready To Ship"}),
    ]
    service_env = {"ORDERSYNC_STATUS_CHECK_S": "3600", "ORDERSYNC_DISPATCH_SHIPMENT_POLL_S": "3"}
    run_dir = tmp_path_factory.mktemp("cin7ss")
    async with Stack(
        specs,
        run_dir=run_dir,
        pg_dsn=infra.pg_dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        service_env=service_env,
    ) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses, stack.token(READER)) as reader:
            pushes = {spec.tenant_id: Push(stack, Driver(stack, reader, spec.tenant_id), spec) for spec in specs}
            yield pushes
            for each in pushes.values():
                await each.driver.close()


@pytest.fixture
def push(tenants) -> Push:
    return tenants[TENANT]


async def test_a_250_order_burst_is_created_in_three_bulk_calls(push):
    before = (await push.stats())["requests"].get("createorders", 0)
    references = [f"BURST-{i:03d}" for i in range(250)]
    await push.enter(*references)

    async def all_sent() -> bool:
        rows = await push.dispatch_rows("BURST-")
        return len(rows) == 250 and set(rows.values()) == {"sent"}

    await until(all_sent, "all 250 orders are sent", timeout_s=150)
    stats = await push.stats()
    assert stats["requests"]["createorders"] - before == 3
    shown = await push.driver.show("BURST-042")
    assert shown.sync.status_title == SENT and shown.sync.provider_order_number == "BURST-042"
    assert stats["rate_limited"] == 0, "paced inside ShipStation's window: no 429 in steady state"


async def test_a_refused_item_of_a_200_answer_fails_alone_with_shipstations_message(push):
    await push.shipstation("rejections", {"order_number": "ITEM-2", "message": "The shipTo.postalCode is invalid."})
    await push.enter("ITEM-1", "ITEM-2", "ITEM-3")

    refused = await push.driver.wait_for_status("ITEM-2", FAILED, timeout_s=60)
    assert refused.sync.reason_code == "SHIPSTATION_ORDER_REJECTED"
    assert refused.sync.reason == "ShipStation refused order ITEM-2: The shipTo.postalCode is invalid."
    for reference in ("ITEM-1", "ITEM-3"):
        await push.driver.wait_for_status(reference, SENT, timeout_s=60)


async def test_a_429_is_honoured_and_the_orders_go_after_it(push):
    before = await push.stats()
    fault = {"route": "createorders", "status": 429, "count": 1}
    (await push.stack.http.post(f"{push.ss}/_sim/faults", json=fault)).raise_for_status()
    await push.enter("SLOW-1", "SLOW-2")

    for reference in ("SLOW-1", "SLOW-2"):
        shown = await push.driver.wait_for_status(reference, SENT, timeout_s=60)
        assert shown.sync.attempts == 1, "the 429 was waited out inside the attempt"
    after = await push.stats()
    assert after["rate_limited"] - before["rate_limited"] == 1
    assert after["requests"]["createorders"] - before["requests"]["createorders"] == 2  # the 429, then the call


async def test_a_lost_ship_notify_is_recovered_by_polling(push):
    await push.enter("LOST-1")
    await push.driver.wait_for_status("LOST-1", SENT, timeout_s=60)
    receipts = await push.receipts()
    await push.shipstation("webhooks/drop", {"count": 1})
    await push.shipstation("orders/LOST-1/ship", {"tracking_number": "1ZLOST0001"})

    async def shipped() -> bool:
        return list((await push.driver.show("LOST-1")).sync.shipment.tracking_numbers) == ["1ZLOST0001"]

    await until(shipped, "the poll finds the shipment", timeout_s=60)
    assert (await push.stats())["webhooks_dropped"] >= 1
    assert await push.receipts() == receipts, "no webhook brought it: the poll did"


async def test_a_voided_label_is_carried_as_voided_and_never_as_tracking(push):
    await push.enter("VOID-1")
    await push.driver.wait_for_status("VOID-1", SENT, timeout_s=60)
    first = await push.shipstation("orders/VOID-1/ship", {"tracking_number": "1ZVOID0001"})

    async def tracking(expected: list[str]) -> bool:
        return list((await push.driver.show("VOID-1")).sync.shipment.tracking_numbers) == expected

    await until(lambda: tracking(["1ZVOID0001"]), "the first label is applied", timeout_s=60)
    await push.shipstation(f"shipments/{first['shipment']['shipmentId']}/void", {})
    await push.shipstation("orders/VOID-1/ship", {"tracking_number": "1ZVOID0002"})

    await until(lambda: tracking(["1ZVOID0002"]), "the replacement label is applied", timeout_s=60)
    shipment = (await push.driver.show("VOID-1")).sync.shipment
    assert list(shipment.voided_tracking_numbers) == ["1ZVOID0001"]


async def test_an_unmapped_custom_status_fails_clearly_and_goes_once_it_is_mapped(tenants):
    custom = tenants[CUSTOM]
    await custom.enter("READY-1", stage="Ready To Ship")

    failed = await custom.driver.wait_for_status("READY-1", FAILED, timeout_s=60)
    assert failed.sync.reason_code == "UNMAPPED_STATUS"
    assert "'Ready To Ship'" in failed.sync.reason
    assert "status_<shipstation status> = 'Ready To Ship'" in failed.sync.reason

    await custom.stack.update_account(CUSTOM, LABELS, status_awaiting_shipment="Ready To Ship")
    await asyncio.sleep(2)  # the services reload the tenants file within a second
    await custom.driver.act("RetrySend", "READY-1", reason="Ready To Ship mapped to Awaiting Shipment")
    await custom.driver.wait_for_status("READY-1", SENT, timeout_s=60)
    listed = await custom.stack.http.get(f"{custom.ss_account}/orders")
    (order,) = [o for o in listed.json()["orders"] if o["orderNumber"] == "READY-1"]
    assert order["orderStatus"] == "awaiting_shipment"
