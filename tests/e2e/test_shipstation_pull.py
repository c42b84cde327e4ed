"""Cin7 Omni → ShipStation in pull mode (Custom Store), on real Kafka and Postgres.

One stack (five service processes, the Cin7 and ShipStation simulators) serves a tenant whose
only route is in custom_store mode: intake polls Cin7, routing sends the orders to the
ShipStation account, dispatch holds them for ShipStation to fetch. The simulator's puller then
calls dispatch's store endpoint as ShipStation does (Basic credentials, export page by page up
to `pages`, two orders a page here), the orders it fetched are Sent, and a label bought in
ShipStation posts shipnotify, which ships the order. SHIP_NOTIFY webhooks are not subscribed,
so the shipment can only have come through shipnotify.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
import pytest_asyncio
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc

from libs.platform.testing import authorized
from tests.system.journey import Journey, JourneyReader
from tests.system.stack import LABELS, OMNI, READER, Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

TENANT = "harbour-wines"
WAITING = "Waiting for ShipStation to fetch"


def picked_order(**fields: Any) -> dict[str, Any]:
    """A Cin7 order passing every import rule: approved (Cin7's default), stage Fully Picked, a
    delivery country, created now, and a line with a quantity to dispatch."""
    return {
        "stage": "Fully Picked",
        "createdDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "firstName": "Ana",
        "lastName": "Reyes",
        "email": "ana@example.com",
        "phone": "",
        "mobile": "+1 415 555 0100",
        "deliveryFirstName": "Ana",
        "deliveryLastName": "Reyes",
        "deliveryAddress1": "200 Embarcadero",
        "deliveryCity": "San Francisco",
        "deliveryState": "CA",
        "deliveryPostalCode": "94111",
        "deliveryCountry": "US",
        "lineItems": [{"code": "CAB-750", "name": "Estate Cabernet", "qty": 2, "unitPrice": 35.0}],
    } | fields


class PullDriver:
    """Places orders in Cin7, drives ShipStation's puller and labels, reads journeys and statuses."""

    def __init__(self, stack: Stack, reader: JourneyReader, spec: TenantSpec):
        self.stack, self.reader, self.spec = stack, reader, spec
        self.cin7 = stack.sim_urls["cin7"]
        self.ss = stack.sim_urls["shipstation"]
        self.ss_account = f"{TENANT}.{LABELS}"

    async def place(self, *orders: dict[str, Any]) -> list[dict[str, Any]]:
        username = self.spec.account(OMNI)["username"]
        response = await self.stack.http.post(
            f"{self.cin7}/_sim/accounts/{username}/orders", json={"orders": list(orders)}
        )
        response.raise_for_status()
        return response.json()["orders"]

    async def journey(self, cin7_id: int) -> Journey:
        return await self.reader.read(TENANT, "cin7", str(cin7_id))

    async def wait_for(self, cin7_id: int, done: Callable[[Journey], bool], timeout_s: float = 90.0) -> Journey:
        deadline = time.monotonic() + timeout_s
        while True:
            journey = await self.journey(cin7_id)
            if done(journey):
                return journey
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; journey so far: {journey}")
            await asyncio.sleep(0.3)

    async def pull(self, **body: Any) -> dict[str, Any]:
        response = await self.stack.http.post(f"{self.ss}/_sim/accounts/{self.ss_account}/store/pull", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    async def buy_label(self, order_number: str, **body: Any) -> dict[str, Any]:
        response = await self.stack.http.post(
            f"{self.ss}/_sim/accounts/{self.ss_account}/orders/{order_number}/ship", json={"wait": True, **body}
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def shipstation_orders(self) -> list[dict[str, Any]]:
        response = await self.stack.http.get(f"{self.ss}/_sim/accounts/{self.ss_account}/orders")
        return response.json()["orders"]

    async def sync_title(self, reference: str) -> str:
        """The order's sync status as an operator reads it in the admin API."""
        channel = grpc.aio.insecure_channel(self.stack.grpc_address("fulfillment_dispatch"))
        try:
            stub = authorized(admin_grpc.OrderAdminServiceStub(channel), self.stack.token(self.stack.operator(TENANT)))
            selector = admin_pb.OrderSelector(tenant_id=TENANT, channel_order_number=reference)
            return (await stub.GetOrder(admin_pb.GetOrderRequest(order=selector))).sync.status_title
        finally:
            await channel.close()

    async def deliveries(self) -> list[dict[str, Any]]:
        return (await self.stack.http.get(f"{self.ss}/_sim/webhook-deliveries")).json()["deliveries"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def driver(infra, tmp_path_factory):
    spec = TenantSpec.cin7_shipstation(
        TENANT,
        cin7={"poll_interval_s": 1},
        shipstation={"subscribe_webhooks": False},
        route_options={"mode": "custom_store"},
    )
    run_dir = tmp_path_factory.mktemp("stack")
    async with Stack(
        [spec],
        run_dir=run_dir,
        pg_dsn=infra.pg_dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        service_env={"ORDERSYNC_DISPATCH_STORE_PAGE_SIZE": "2"},
    ) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses, stack.token(READER)) as reader:
            yield PullDriver(stack, reader, spec)


async def test_pulled_orders_are_sent_once_and_a_label_ships_them_through_shipnotify(driver):
    placed = await driver.place(picked_order(), picked_order(), picked_order())
    held = [await driver.wait_for(o["id"], lambda j: j.dispatch == "awaiting pull") for o in placed]
    assert {(j.route_name, j.provider, j.provider_account) for j in held} == {("omni-to-labels", "shipstation", LABELS)}
    numbers = [j.provider_order_number for j in held]
    assert all(numbers) and len(set(numbers)) == 3
    assert await driver.sync_title(placed[0]["reference"]) == WAITING

    pulled = await driver.pull()
    assert pulled["pages"] == 2 and sorted(pulled["orders"]) == sorted(numbers) and pulled["skipped"] == []
    sent = [await driver.wait_for(o["id"], lambda j: j.dispatch == "sent") for o in placed]
    assert [j.provider_order_number for j in sent] == numbers
    assert await driver.sync_title(placed[0]["reference"]) == "Sent to ShipStation"

    label = await driver.buy_label(numbers[0], tracking_number="9400111899223100000001")
    assert label["shipnotify"] == {"order_number": numbers[0], "status": 200, "state": "delivered"}
    shipped = await driver.wait_for(placed[0]["id"], lambda j: j.shipment == "shipped")
    assert shipped.dispatch == "sent" and shipped.tracking == ("9400111899223100000001",)
    # Nothing came by SHIP_NOTIFY: the only deliveries are the store's shipnotify posts.
    assert {d["event"] for d in await driver.deliveries()} == {"shipnotify"}

    # ShipStation pulls the window again: the same orders, none created twice, the label kept.
    again = await driver.pull()
    assert again["pages"] == 2 and sorted(again["orders"]) == sorted(numbers)
    at_shipstation = await driver.shipstation_orders()
    assert sorted(o["orderNumber"] for o in at_shipstation) == sorted(numbers)
    statuses = {o["orderNumber"]: o["orderStatus"] for o in at_shipstation}
    assert statuses == {numbers[0]: "shipped", numbers[1]: "awaiting_shipment", numbers[2]: "awaiting_shipment"}
    for order, journey in zip(placed[1:], sent[1:], strict=True):
        assert (await driver.journey(order["id"])).dispatch == journey.dispatch == "sent"


async def test_a_pull_without_the_store_password_is_refused_and_sends_nothing(driver):
    (order,) = await driver.place(picked_order())
    await driver.wait_for(order["id"], lambda j: j.dispatch == "awaiting pull")
    account = driver.spec.account(LABELS)
    wrong = {
        "account_id": driver.ss_account,
        "api_key": account["api_key"],
        "api_secret": account["api_secret"],
        "store_url": f"{driver.stack.http_url('fulfillment_dispatch')}/stores/shipstation/{TENANT}/{LABELS}",
        "store_user": account["store_user"],
        "store_password": "not-the-password",
    }
    changed = await driver.stack.http.put(f"{driver.ss}/_sim/accounts/{driver.ss_account}", json=wrong)
    changed.raise_for_status()
    try:
        response = await driver.stack.http.post(f"{driver.ss}/_sim/accounts/{driver.ss_account}/store/pull", json={})
        assert response.status_code == 502 and "HTTP 401" in response.json()["error"]
        assert (await driver.journey(order["id"])).dispatch == "awaiting pull"
    finally:
        right = wrong | {"store_password": account["store_password"]}
        (await driver.stack.http.put(f"{driver.ss}/_sim/accounts/{driver.ss_account}", json=right)).raise_for_status()
    await driver.pull()
    assert (await driver.wait_for(order["id"], lambda j: j.dispatch == "sent")).dispatch == "sent"
