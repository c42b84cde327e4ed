"""Cin7 Omni → ShipStation, shipments back: what a label in ShipStation writes onto the Cin7 order.

One stack (five service processes, real Kafka and Postgres, the Cin7 and ShipStation
simulators) serves one merchant: a Cin7 Omni connection polled every second whose orders go to
one ShipStation account. Each order is entered in Cin7 passing every import rule (approved,
stage Fully Picked, a delivery country, created now, a line with a quantity), reaches
ShipStation, and is shipped there through the simulator's control API: ShipStation then sends
SHIP_NOTIFY, dispatch re-reads the batch it names, and writeback writes Cin7.

ShipStation sends no webhook when a label is voided; the hub hears of it when it next reads
the order's labels. These tests make that re-read happen as a thin notice naming the order's
labels (`/shipments?orderNumber=`) does, so the outcome does not depend on a polling interval.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from tests.simulators.shipstation import entry as shipstation_entry
from tests.system.stack import LABELS, OMNI, Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

TENANT = "harbour-bistro"


class Shop:
    """The merchant's two systems as a test drives them: Cin7 Omni and ShipStation (simulated)."""

    def __init__(self, stack: Stack, spec: TenantSpec):
        self.stack = stack
        self.http = stack.http
        self.cin7 = f"{stack.sim_urls['cin7']}/_sim/accounts/{spec.account(OMNI)['username']}"
        self.shipstation = stack.sim_urls["shipstation"]
        self.labels = f"{self.shipstation}/_sim/accounts/{TENANT}.{LABELS}"
        [self.labels_account] = stack.simulated_accounts("shipstation")

    async def enter_order(self, **fields: Any) -> dict[str, Any]:
        """An order a Cin7 user entered, passing every import rule unless `fields` say otherwise."""
        order = {
            "stage": "Fully Picked",
            "status": "Approved",
            "isApproved": True,
            "email": "mere@harbourbistro.example",
            "phone": "+1 415 555 0142",
            "firstName": "Mere",
            "lastName": "Tane",
            "deliveryFirstName": "Mere",
            "deliveryLastName": "Tane",
            "deliveryAddress1": "200 Embarcadero",
            "deliveryCity": "San Francisco",
            "deliveryState": "CA",
            "deliveryPostalCode": "94111",
            "deliveryCountry": "US",
            "lineItems": [{"code": "CAB-750", "name": "Estate Cabernet 750ml", "qty": 6, "unitPrice": 35.0}],
            **fields,
        }
        response = await self.http.post(f"{self.cin7}/orders", json={"orders": [order]})
        response.raise_for_status()
        [stored] = response.json()["orders"]
        return stored

    async def cin7_order(self, order_id: int) -> dict[str, Any]:
        response = await self.http.get(f"{self.cin7}/orders/{order_id}")
        response.raise_for_status()
        return response.json()

    async def cin7_stats(self) -> dict[str, Any]:
        return (await self.http.get(f"{self.stack.sim_urls['cin7']}/_sim/stats")).json()

    async def at_shipstation(self, order_number: str) -> dict[str, Any] | None:
        listed = (await self.http.get(f"{self.labels}/orders")).json()
        return next((o for o in listed["orders"] if o["orderNumber"] == order_number), None)

    async def ship(self, order_number: str, tracking: str, **label: Any) -> dict[str, Any]:
        """Buy a label in ShipStation (SHIP_NOTIFY follows when webhooks are on); the label."""
        body = {"tracking_number": tracking, "carrier_code": "ups", "service_code": "ups_ground", **label}
        response = await self.http.post(f"{self.labels}/orders/{order_number}/ship", json=body)
        response.raise_for_status()
        return response.json()["shipment"]

    async def void(self, label: dict[str, Any]) -> None:
        response = await self.http.post(f"{self.labels}/shipments/{label['shipmentId']}/void")
        response.raise_for_status()

    async def webhooks(self, on: bool) -> None:
        """Turn the account's SHIP_NOTIFY deliveries on or off, as unsubscribing in ShipStation does."""
        body = shipstation_entry.account(self.labels_account)
        if not on:
            body["webhook_url"] = None
        response = await self.http.put(self.labels, json=body)
        response.raise_for_status()

    async def labels_reread(self, order_number: str) -> None:
        """Have dispatch re-read the order's labels, as a thin notice naming them does."""
        notice = {
            "resource_url": f"{self.shipstation}/shipments?orderNumber={order_number}",
            "resource_type": "SHIP_NOTIFY",
        }
        response = await self.http.post(
            self.labels_account.notice_url, content=json.dumps(notice), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text


async def eventually(read: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], what: str, timeout_s=90.0):
    """Poll `read` until `done` holds for its value; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value}")
        await asyncio.sleep(0.3)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(infra, tmp_path_factory):
    spec = TenantSpec.cin7_shipstation(TENANT, cin7={"poll_interval_s": 1})
    run_dir = tmp_path_factory.mktemp("cin7ss")
    async with Stack([spec], run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap) as stack:
        yield Shop(stack, spec)


async def sent_to_shipstation(shop: Shop, order: dict[str, Any]) -> dict[str, Any]:
    return await eventually(
        lambda: shop.at_shipstation(order["reference"]), lambda o: o is not None, f"{order['reference']} at ShipStation"
    )


def dispatched(order: dict[str, Any]) -> bool:
    return order["stage"] == "Dispatched"


async def test_a_label_bought_in_shipstation_dispatches_the_cin7_order_with_its_details(shop):
    order = await shop.enter_order()
    await sent_to_shipstation(shop, order)

    await shop.ship(order["reference"], "1ZE2E0000000000001", shipment_cost=11.25)
    written = await eventually(lambda: shop.cin7_order(order["id"]), dispatched, "the Cin7 order dispatched")

    assert written["trackingCode"] == "1ZE2E0000000000001"
    # ShipStation's ups/ups_ground through carrier mapping: Cin7's one text for carrier and service.
    assert written["logisticsCarrier"] == "UPS Ground"
    assert written["dispatchedDate"]
    assert [line["qtyShipped"] for line in written["lineItems"]] == [6]
    # Cin7 has no field for the carrier's fee: what the customer paid for freight is left alone.
    assert written.get("freightTotal") is None


async def test_a_carrier_already_in_cin7_is_not_overwritten(shop):
    order = await shop.enter_order(logisticsCarrier="Harbour Couriers")
    await sent_to_shipstation(shop, order)

    await shop.ship(order["reference"], "1ZE2E0000000000002")
    written = await eventually(lambda: shop.cin7_order(order["id"]), dispatched, "the Cin7 order dispatched")

    assert (written["trackingCode"], written["logisticsCarrier"]) == ("1ZE2E0000000000002", "Harbour Couriers")


async def test_a_label_voided_before_it_was_written_never_reaches_cin7(shop):
    order = await shop.enter_order()
    await sent_to_shipstation(shop, order)
    await shop.webhooks(on=False)
    try:
        voided = await shop.ship(order["reference"], "1ZE2E00000000VOIDED", service_code="ups_2nd_day_air")
        await shop.void(voided)
    finally:
        await shop.webhooks(on=True)
    before = (await shop.cin7_stats())["rows_updated"]
    await shop.labels_reread(order["reference"])  # dispatch has read the voided label when this answers

    await shop.ship(order["reference"], "1ZE2E0000000000003")
    written = await eventually(lambda: shop.cin7_order(order["id"]), dispatched, "the Cin7 order dispatched")

    assert written["trackingCode"] == "1ZE2E0000000000003"
    assert written["logisticsCarrier"] == "UPS Ground"  # the live label's service, not the voided one's
    assert (await shop.cin7_stats())["rows_updated"] == before + 1  # one write: the live label's


async def test_a_written_label_voided_in_shipstation_is_taken_back_and_its_replacement_written(shop):
    order = await shop.enter_order()
    await sent_to_shipstation(shop, order)
    first = await shop.ship(order["reference"], "1ZE2E00000000FIRST")
    await eventually(lambda: shop.cin7_order(order["id"]), dispatched, "the Cin7 order dispatched")

    await shop.void(first)
    await shop.labels_reread(order["reference"])
    taken_back = await eventually(
        lambda: shop.cin7_order(order["id"]),
        lambda o: o["stage"] == "Fully Picked",
        "the voided label's tracking taken back from Cin7",
    )
    assert taken_back["trackingCode"] == ""

    await shop.ship(order["reference"], "1ZE2E0000000SECOND")
    rewritten = await eventually(lambda: shop.cin7_order(order["id"]), dispatched, "the Cin7 order dispatched again")
    assert rewritten["trackingCode"] == "1ZE2E0000000SECOND"
