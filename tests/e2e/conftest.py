"""End-to-end fixtures: one stack of five service processes and both simulators per module."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest_asyncio
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc
from ordersync.ops.v1 import connection_health_pb2 as health_pb
from ordersync.ops.v1 import connection_health_pb2_grpc as health_grpc

from libs.platform.testing import authorized
from tests.simulators.registry import default_simulators
from tests.system.journey import Journey, JourneyReader
from tests.system.stack import READER, STORE, RouteSpec, Stack, TenantSpec


def tenant(tenant_id: str = "acme-cellars", prefix: str = "ACME", **options) -> TenantSpec:
    """A Commerce7 store sending to one Vinoshipper account; `options` as TenantSpec.commerce7_vinoshipper."""
    return TenantSpec.commerce7_vinoshipper(
        tenant_id,
        chosen_states=["CA", "OR", "NY"],
        products=["SKU-CAB", "SKU-CHARD"],
        licensed_states=["CA", "OR"],
        order_number_prefix=prefix,
        **options,
    )


def two_coasts(tenant_id: str = "two-coasts") -> TenantSpec:
    """One Commerce7 store and two Vinoshipper accounts: the west coast's orders go to "west",
    New York's to "east", by two routes chosen by ship-to state."""
    simulators = default_simulators()
    store = simulators.get("commerce7").new_account(STORE, tenant_id)
    west, east = (
        simulators.get("vinoshipper").new_account(
            name, tenant_id, order_number_prefix=name.upper(), products=["SKU-CAB"], licensed_states=states
        )
        for name, states in (("west", ["CA", "OR"]), ("east", ["NY"]))
    )
    routes = (
        RouteSpec("west-coast", STORE, "west", ship_to_states=("CA", "OR")),
        RouteSpec("new-york", STORE, "east", ship_to_states=("NY",)),
    )
    return TenantSpec(tenant_id, (store, west, east), routes)


def web_order(state: str = "CA", sku: str = "SKU-CAB", code: str = "03", **extra) -> dict:
    address = {
        "firstName": "Sam",
        "lastName": "Lee",
        "address": "9 Oak St",
        "city": "Napa",
        "stateCode": state,
        "zipCode": "94558",
        "countryCode": "US",
    }
    return {
        "channel": "Web",
        "orderDeliveryMethod": "Ship",
        "customer": {
            "firstName": "Sam",
            "lastName": "Lee",
            "emails": [{"email": "sam@example.com"}],
            "birthDate": "1975-01-01",
        },
        "shipTo": address,
        "billTo": address,
        "items": [{"sku": sku, "quantity": 2, "price": 3000, "purchaseTitle": "Cabernet"}],
        "shipping": [{"carrier": "UPS", "service": "Ground", "code": code, "title": "UPS Ground", "price": 1200}],
        **extra,
    }


class Driver:
    """What a test does to the system: place orders in the channel, move them at the provider, read journeys."""

    def __init__(self, stack: Stack, reader: JourneyReader, tenant_id: str):
        self.stack = stack
        self.reader = reader
        self.tenant_id = tenant_id

    @property
    def c7(self) -> str:
        return self.stack.sim_urls["commerce7"]

    @property
    def vs(self) -> str:
        return self.stack.sim_urls["vinoshipper"]

    async def place(self, order: dict) -> dict:
        response = await self.stack.http.post(
            f"{self.c7}/_sim/orders", json={"tenant_id": self.tenant_id, "order": order, "wait": True}
        )
        response.raise_for_status()
        return response.json()

    async def journey(self, external_id: str) -> Journey:
        return await self.reader.read(self.tenant_id, "commerce7", external_id)

    async def wait_for(self, external_id: str, done: Callable[[Journey], bool], timeout_s: float = 45.0) -> Journey:
        deadline = time.monotonic() + timeout_s
        while True:
            journey = await self.journey(external_id)
            if done(journey):
                return journey
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; journey so far: {journey}")
            await asyncio.sleep(0.3)

    async def provider(self, order_number: str, step: str, **body) -> dict:
        response = await self.stack.http.post(
            f"{self.vs}/_sim/orders/{order_number}/{step}", json={"wait": True, **body}
        )
        response.raise_for_status()
        return response.json()

    async def provider_stats(self) -> dict:
        return (await self.stack.http.get(f"{self.vs}/_sim/stats")).json()

    async def channel_order(self, external_id: str) -> dict:
        return (await self.stack.http.get(f"{self.c7}/_sim/orders/{external_id}")).json()

    async def provider_order(self, order_number: str) -> dict:
        response = await self.stack.http.get(f"{self.vs}/_sim/orders/{order_number}")
        response.raise_for_status()
        return response.json()

    # ---- the admin API, as an operator's tool calls it ----------------------------------------

    def admin(self, caller: str | None = None) -> admin_grpc.OrderAdminServiceStub:
        """The admin API as `caller` (the tenant's first operator by default) calls it."""
        if not hasattr(self, "_admin_channel"):
            self._admin_channel = grpc.aio.insecure_channel(self.stack.grpc_address("fulfillment_dispatch"))
        stub = admin_grpc.OrderAdminServiceStub(self._admin_channel)
        return authorized(stub, self.stack.token(caller or self.stack.operator(self.tenant_id)))

    async def dispatch_health(self) -> health_pb.GetConnectionHealthResponse:
        """Dispatch's connection health of the tenant (its provider accounts), as its operator reads it."""
        self.admin()  # opens the channel to dispatch
        stub = health_grpc.ConnectionHealthServiceStub(self._admin_channel)
        reader = authorized(stub, self.stack.token(self.stack.operator(self.tenant_id)))
        return await reader.GetConnectionHealth(health_pb.GetConnectionHealthRequest(tenant_id=self.tenant_id))

    def selector(self, channel_order_number) -> admin_pb.OrderSelector:
        return admin_pb.OrderSelector(tenant_id=self.tenant_id, channel_order_number=str(channel_order_number))

    async def show(self, channel_order_number) -> admin_pb.GetOrderResponse:
        return await self.admin().GetOrder(admin_pb.GetOrderRequest(order=self.selector(channel_order_number)))

    async def act(self, method: str, channel_order_number, *, operator: str | None = None, reason: str):
        """Call action `method` as the caller named `operator` (the tenant's first operator by default)."""
        request_type = getattr(admin_pb, f"{method}Request")
        action = admin_pb.OperatorAction(reason=reason)
        return await getattr(self.admin(operator), method)(
            request_type(order=self.selector(channel_order_number), action=action), timeout=30
        )

    async def wait_for_status(self, channel_order_number, title: str, timeout_s: float = 45.0):
        """Wait until the admin API shows the order in the status titled `title`; return it."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                shown = await self.show(channel_order_number)
                if shown.sync.status_title == title:
                    return shown
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                shown = None
            if time.monotonic() > deadline:
                raise AssertionError(f"order {channel_order_number} not {title!r}; last seen: {shown}")
            await asyncio.sleep(0.3)

    async def close(self) -> None:
        if hasattr(self, "_admin_channel"):
            await self._admin_channel.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def driver(infra, tmp_path_factory):
    spec = tenant()
    run_dir = tmp_path_factory.mktemp("stack")
    async with Stack([spec], run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses, stack.token(READER)) as reader:
            driver = Driver(stack, reader, spec.tenant_id)
            yield driver
            await driver.close()
