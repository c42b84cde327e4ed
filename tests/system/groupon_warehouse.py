"""Driving a Groupon → Mintsoft merchant (e2e tests, the demo): the two simulated systems, as staff use them.

`Warehouse` places Groupon orders (the CommerceInterface simulator's control API), reads what
CommerceInterface shows (lines, exported marks, tracking and the call log), reads and despatches
orders in Mintsoft (its simulator's control API), and reads the hub's records through the
services' gRPC APIs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc
from ordersync.carriers.v1 import carriers_service_pb2 as carriers_pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as carriers_grpc
from ordersync.dispatch.v1 import product_map_service_pb2 as products_pb
from ordersync.dispatch.v1 import product_map_service_pb2_grpc as products_grpc
from ordersync.tracking.v1 import tracking_service_pb2 as tracking_pb
from ordersync.tracking.v1 import tracking_service_pb2_grpc as tracking_grpc

from libs.platform.testing import authorized
from tests.simulators.groupon import entry as groupon_entry
from tests.simulators.mintsoft import entry as mintsoft_entry
from tests.system.journey import Journey, JourneyReader
from tests.system.stack import DEALS, READER, WAREHOUSE, Stack, TenantSpec

T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str, timeout_s=90.0) -> T:
    """Poll `read` until `done` holds for its value; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen: {value}")
        await asyncio.sleep(0.3)


class Warehouse:
    """One tenant's Groupon supplier account and Mintsoft warehouse, both simulated."""

    def __init__(self, stack: Stack, spec: TenantSpec):
        self.stack = stack
        self.spec = spec
        self.http = stack.http
        [deals] = [a for a in stack.simulated_accounts("groupon") if a.tenant_id == spec.tenant_id]
        [warehouse] = [a for a in stack.simulated_accounts("mintsoft") if a.tenant_id == spec.tenant_id]
        self.supplier_id = groupon_entry.supplier(deals)["supplier_id"]
        self.client_id = mintsoft_entry.user(warehouse)["client_id"]
        self.groupon = f"{stack.sim_urls['groupon']}/_sim/suppliers/{self.supplier_id}"
        self.mintsoft = stack.sim_urls["mintsoft"]
        self.prefix = spec.account(WAREHOUSE).options.get("order_number_prefix", "")
        self.deals = spec.account(DEALS)

    # -- Groupon (CommerceInterface)

    async def place(self, **fields: Any) -> dict[str, Any]:
        """A Groupon order as CommerceInterface lists it whole (its lines with their ids)."""
        response = await self.http.post(f"{self.groupon}/orders", json={"orders": [fields]})
        response.raise_for_status()
        [order] = response.json()["orders"]
        return order

    async def groupon_state(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.groupon}/state")
        response.raise_for_status()
        return response.json()

    async def groupon_lines(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        return [line for line in (await self.groupon_state())["lines"] if line["orderid"] == order["orderid"]]

    async def groupon_calls(self, kind: str) -> list[dict[str, Any]]:
        """The simulator's log of one kind of call (mark_exported, tracking_notification)."""
        return [entry for entry in (await self.groupon_state())["log"] if entry.get("route", entry.get("call")) == kind]

    async def groupon_fault(self, route: str, **fault: Any) -> None:
        response = await self.http.post(f"{self.stack.sim_urls['groupon']}/_sim/faults", json={"route": route, **fault})
        response.raise_for_status()

    # -- Mintsoft

    def order_number(self, order: dict[str, Any]) -> str:
        return f"{self.prefix}{order['orderid']}"

    async def in_mintsoft(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """Every Mintsoft order under the Groupon order's number (more than one is a duplicate)."""
        response = await self.http.get(
            f"{self.mintsoft}/_sim/orders",
            params={"client_id": self.client_id, "order_number": self.order_number(order)},
        )
        response.raise_for_status()
        return response.json()["orders"]

    async def sent(self, order: dict[str, Any], timeout_s: float = 90.0) -> dict[str, Any]:
        """The order's one Mintsoft order, once it is there."""
        [created] = await eventually(
            lambda: self.in_mintsoft(order), lambda found: len(found) == 1, f"{order['orderid']} in Mintsoft", timeout_s
        )
        return created

    async def despatch(self, mintsoft_order: dict[str, Any], courier: str, tracking: str, **options: Any) -> None:
        """Despatch in Mintsoft with the named courier service; its callback follows."""
        body = {"CourierServiceName": courier, "TrackingNumber": tracking, **options}
        response = await self.http.post(f"{self.mintsoft}/_sim/orders/{mintsoft_order['ID']}/despatch", json=body)
        response.raise_for_status()

    async def cancel(self, mintsoft_order: dict[str, Any]) -> None:
        """Cancel in Mintsoft; its callback follows."""
        response = await self.http.post(f"{self.mintsoft}/_sim/orders/{mintsoft_order['ID']}/cancel", json={})
        response.raise_for_status()

    async def add_products(self, *skus: str) -> None:
        products = [{"SKU": sku, "Name": sku} for sku in skus]
        response = await self.http.post(
            f"{self.mintsoft}/_sim/clients/{self.client_id}/products", json={"products": products}
        )
        response.raise_for_status()

    async def mintsoft_stats(self) -> dict[str, Any]:
        response = await self.http.get(f"{self.mintsoft}/_sim/stats")
        response.raise_for_status()
        return response.json()


class Hub:
    """The hub's side, through the services' gRPC APIs: journeys, writebacks, carrier mapping,
    operator actions. Use as an async context manager."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._reader = JourneyReader({name: stack.grpc_address(name) for name in stack.services}, stack.token(READER))

    def _channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            self._channels[service] = grpc.aio.insecure_channel(self.stack.grpc_address(service))
        return self._channels[service]

    async def __aenter__(self) -> Hub:
        await self._reader.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._reader.__aexit__(*exc)
        for channel in self._channels.values():
            await channel.close()

    async def journey(self, tenant_id: str, order: dict[str, Any]) -> Journey:
        return await self._reader.read(tenant_id, "groupon", str(order["orderid"]))

    async def writeback(self, tenant_id: str, order_id: str) -> tracking_pb.WritebackRecord | None:
        """The order's writeback record, or None while writeback has none."""
        stub = tracking_grpc.TrackingWritebackServiceStub(self._channel("tracking_writeback"))
        request = tracking_pb.GetWritebackRequest(tenant_id=tenant_id, order_id=order_id)
        try:
            return (await authorized(stub, self.stack.token(READER)).GetWriteback(request)).record
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def map_courier(self, tenant_id: str, courier: str, canonical_carrier: str) -> None:
        """The tenant's Mintsoft courier service mapped to a canonical carrier (Groupon's code follows)."""
        stub = carriers_grpc.CarrierMappingServiceStub(self._channel("carrier_mapping"))
        mapping = carriers_pb.Mapping(
            system="mintsoft", code=courier, name=courier, carrier=courier, canonical_carrier=canonical_carrier
        )
        request = carriers_pb.CreateMappingRequest(tenant_id=tenant_id, mapping=mapping)
        await authorized(stub, self.stack.token(self.stack.operator(tenant_id))).CreateMapping(request)

    async def retry(self, tenant_id: str, order_id: str, reason: str = "mapping added") -> None:
        stub = admin_grpc.OrderAdminServiceStub(self._channel("fulfillment_dispatch"))
        request = admin_pb.RetrySendRequest(
            order=admin_pb.OrderSelector(tenant_id=tenant_id, order_id=order_id),
            action=admin_pb.OperatorAction(reason=reason),
        )
        await authorized(stub, self.stack.token(self.stack.operator(tenant_id))).RetrySend(request)

    async def map_product(self, tenant_id: str, channel_sku: str, *components: tuple[str, int]) -> None:
        """The tenant's channel SKU mapped to a warehouse SKU (one component of quantity 1: an
        alternative code) or a bundle of (sku, quantity) components."""
        mapping = products_pb.ProductMapping(
            channel_sku=channel_sku,
            components=[products_pb.ProductComponent(sku=sku, quantity=qty, name=sku) for sku, qty in components],
        )
        await self.put_product_mapping(tenant_id, mapping)

    async def put_product_mapping(self, tenant_id: str, mapping: products_pb.ProductMapping) -> None:
        stub = products_grpc.ProductMapServiceStub(self._channel("fulfillment_dispatch"))
        request = products_pb.PutProductMappingRequest(tenant_id=tenant_id, mapping=mapping)
        await authorized(stub, self.stack.token(self.stack.operator(tenant_id))).PutProductMapping(request)

    async def sync_products(self, tenant_id: str, dry_run: bool = False) -> products_pb.SyncProductsResponse:
        stub = products_grpc.ProductMapServiceStub(self._channel("fulfillment_dispatch"))
        request = products_pb.SyncProductsRequest(tenant_id=tenant_id, provider_account=WAREHOUSE, dry_run=dry_run)
        return await authorized(stub, self.stack.token(self.stack.operator(tenant_id))).SyncProducts(request)
