"""The console's only way to the system: the services' gRPC APIs, called on a member's behalf.

Every call presents the console's own bearer token and names the signed-in member and their
tenant (libs.platform.auth's on-behalf-of metadata), so each service narrows the call to that
tenant and records the member as the operator ("jane@winery.example via operator-console").
Errors come back as ServiceError, carrying the service's status code and message for the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc
from ordersync.carriers.v1 import carriers_service_pb2 as carriers_pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as carriers_grpc
from ordersync.compliance.v1 import compliance_service_pb2 as compliance_pb
from ordersync.compliance.v1 import compliance_service_pb2_grpc as compliance_grpc
from ordersync.compliance.v1 import routing_pb2
from ordersync.dispatch.v1 import product_map_service_pb2 as product_map_pb
from ordersync.dispatch.v1 import product_map_service_pb2_grpc as product_map_grpc
from ordersync.ops.v1 import connection_health_pb2 as health_view_pb
from ordersync.ops.v1 import connection_health_pb2_grpc as health_view_grpc
from ordersync.ops.v1 import dead_letters_pb2, dead_letters_pb2_grpc
from ordersync.tracking.v1 import tracking_service_pb2 as tracking_pb
from ordersync.tracking.v1 import tracking_service_pb2_grpc as tracking_grpc

from libs.platform.auth import bearer, on_behalf_of
from libs.platform.config import GrpcClientTls
from libs.platform.grpc_server import channel_credentials
from operator_console.staff import StaffMember

INTAKE, ROUTING, DISPATCH, WRITEBACK, MAPPING = (
    "order-intake",
    "compliance-routing",
    "fulfillment-dispatch",
    "tracking-writeback",
    "carrier-mapping",
)
PIPELINE = (INTAKE, ROUTING, DISPATCH, WRITEBACK)  # the services keeping dead letters
CALL_TIMEOUT_S = 10.0
LIST_LIMIT = 500  # rows a list page shows at most; each is one gRPC page at most
T = TypeVar("T")


class ServiceError(Exception):
    """A service refused or could not answer; `message` is the service's own words."""

    def __init__(self, service: str, code: grpc.StatusCode, message: str):
        super().__init__(f"{service}: {code.name}: {message}")
        self.service = service
        self.code = code
        self.message = message

    @property
    def unavailable(self) -> bool:
        return self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class OrderView:
    """Everything the order card and tab show, from the services that know the order."""

    order: admin_pb.GetOrderResponse
    routing: routing_pb2.RoutingDecision | None
    writeback: tracking_pb.WritebackRecord | None
    # services that could not be asked, with why (the page says so instead of failing)
    unreachable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failures:
    """The failures view's three lists, and the services that could not be asked."""

    failed_orders: list[admin_pb.OrderSync]
    writebacks: list[tracking_pb.ListedWriteback]
    dead_letters: list[dead_letters_pb2.DeadLetter]
    unreachable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionHealthViews:
    """Each service's view of the tenant's accounts, and the services that could not be asked."""

    views: dict[str, list[health_view_pb.ConnectionHealth]]
    unreachable: dict[str, str] = field(default_factory=dict)


class Backend:
    """Stubs of every service the console asks, over one channel per service."""

    def __init__(self, addresses: dict[str, str], token: str, tls: GrpcClientTls | None = None):
        self._token = token
        self._channels = {
            service: (
                grpc.aio.secure_channel(address, channel_credentials(tls))
                if tls
                else grpc.aio.insecure_channel(address)
            )
            for service, address in addresses.items()
        }
        self.admin = admin_grpc.OrderAdminServiceStub(self._channels[DISPATCH])
        self.products = product_map_grpc.ProductMapServiceStub(self._channels[DISPATCH])
        self.routing = compliance_grpc.ComplianceRoutingServiceStub(self._channels[ROUTING])
        self.writebacks = tracking_grpc.TrackingWritebackServiceStub(self._channels[WRITEBACK])
        self.mappings = carriers_grpc.CarrierMappingServiceStub(self._channels[MAPPING])
        self.dead_letters = {s: dead_letters_pb2_grpc.DeadLetterServiceStub(self._channels[s]) for s in PIPELINE}
        self.health_views = {
            s: health_view_grpc.ConnectionHealthServiceStub(self._channels[s]) for s in (INTAKE, DISPATCH, WRITEBACK)
        }

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))

    async def ready(self) -> bool:
        """True when dispatch, which holds every order's sync, answers its health check."""
        try:
            reply = await health_pb2_grpc.HealthStub(self._channels[DISPATCH]).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2.0
            )
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def _metadata(self, member: StaffMember) -> tuple[tuple[str, str], ...]:
        return bearer(self._token) + on_behalf_of(member.name, member.tenant_id, sorted(member.roles))

    async def _call(self, service: str, method: Callable[..., Awaitable[T]], request, member: StaffMember) -> T:
        try:
            return await method(request, metadata=self._metadata(member), timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise ServiceError(service, exc.code(), exc.details() or exc.code().name) from None

    # ---- one order ----------------------------------------------------------------------------

    async def order(self, member: StaffMember, order_id: str) -> OrderView:
        """The order as dispatch, routing and writeback know it; ServiceError NOT_FOUND when the
        member's tenant has no such order (another tenant's included: nothing tells them apart)."""
        selector = admin_pb.OrderSelector(tenant_id=member.tenant_id, order_id=order_id)
        order = await self._call(DISPATCH, self.admin.GetOrder, admin_pb.GetOrderRequest(order=selector), member)
        unreachable: dict[str, str] = {}
        routing, writeback = await asyncio.gather(
            self._optional(
                ROUTING,
                self.routing.GetRoutingDecision,
                compliance_pb.GetRoutingDecisionRequest(tenant_id=member.tenant_id, order_id=order_id),
                member,
                unreachable,
            ),
            self._optional(
                WRITEBACK,
                self.writebacks.GetWriteback,
                tracking_pb.GetWritebackRequest(tenant_id=member.tenant_id, order_id=order_id),
                member,
                unreachable,
            ),
        )
        return OrderView(
            order,
            routing.decision if routing is not None else None,
            writeback.record if writeback is not None else None,
            unreachable,
        )

    async def find_order(self, member: StaffMember, order_number: str) -> str:
        """ordersync's id of the member's order with this channel order number; ServiceError NOT_FOUND."""
        selector = admin_pb.OrderSelector(tenant_id=member.tenant_id, channel_order_number=order_number)
        found = await self._call(DISPATCH, self.admin.GetOrder, admin_pb.GetOrderRequest(order=selector), member)
        return found.sync.order_id

    async def act(self, member: StaffMember, order_id: str, action: int, reason: str) -> admin_pb.OrderSync:
        """Run one admin action (an OrderAction) on the order; ServiceError when it is refused."""
        rpc, request_type = _ACTIONS[action]
        request = request_type(
            order=admin_pb.OrderSelector(tenant_id=member.tenant_id, order_id=order_id),
            action=admin_pb.OperatorAction(reason=reason),
        )
        reply = await self._call(DISPATCH, getattr(self.admin, rpc), request, member)
        return reply.sync

    async def _optional(
        self, service: str, method, request, member: StaffMember, unreachable: dict[str, str]
    ):  # -> the reply, or None when the service has nothing or cannot be asked
        try:
            return await self._call(service, method, request, member)
        except ServiceError as exc:
            if exc.code is not grpc.StatusCode.NOT_FOUND:
                unreachable[service] = exc.message
            return None

    # ---- lists --------------------------------------------------------------------------------

    async def failures(self, member: StaffMember, since: datetime | None) -> Failures:
        """Failed to Send orders, failed or blocked writebacks, and dead letters, newest first."""
        unreachable: dict[str, str] = {}
        failed = _pages(
            lambda token: self._call(
                DISPATCH,
                self.admin.ListOrders,
                admin_pb.ListOrdersRequest(
                    tenant_id=member.tenant_id,
                    statuses=[admin_pb.SYNC_STATUS_FAILED],
                    updated_after=_timestamp(since),
                    page_size=LIST_LIMIT,
                    page_token=token,
                ),
                member,
            ),
            lambda reply: reply.orders,
        )
        writebacks = _pages(
            lambda token: self._call(
                WRITEBACK,
                self.writebacks.ListWritebacks,
                tracking_pb.ListWritebacksRequest(
                    tenant_id=member.tenant_id,
                    statuses=[tracking_pb.WRITEBACK_STATUS_BLOCKED, tracking_pb.WRITEBACK_STATUS_FAILED],
                    page_size=LIST_LIMIT,
                    page_token=token,
                ),
                member,
            ),
            lambda reply: reply.records,
        )
        letters = [self._dead_letters(service, member, since) for service in PIPELINE]
        results = await asyncio.gather(failed, writebacks, *letters, return_exceptions=True)
        lists = [_kept(result, unreachable) or [] for result in results]
        merged_letters = sorted(
            (letter for found in lists[2:] for letter in found), key=lambda d: d.received_at.ToDatetime(), reverse=True
        )
        return Failures(lists[0], lists[1], merged_letters[:LIST_LIMIT], unreachable)

    async def _dead_letters(
        self, service: str, member: StaffMember, since: datetime | None
    ) -> list[dead_letters_pb2.DeadLetter]:
        request = dead_letters_pb2.ListDeadLettersRequest(
            tenant_id=member.tenant_id,
            filter=dead_letters_pb2.DeadLetterFilter(since=_timestamp(since)),
            page_size=LIST_LIMIT,
        )
        reply = await self._call(service, self.dead_letters[service].ListDeadLetters, request, member)
        return list(reply.dead_letters)

    async def connection_health(self, member: StaffMember) -> ConnectionHealthViews:
        """Intake's, dispatch's and writeback's views of the member's accounts over the last day."""
        request = health_view_pb.GetConnectionHealthRequest(tenant_id=member.tenant_id)
        services = list(self.health_views)
        results = await asyncio.gather(
            *(self._call(s, self.health_views[s].GetConnectionHealth, request, member) for s in services),
            return_exceptions=True,
        )
        unreachable: dict[str, str] = {}
        views = {
            service: list(reply.connections) if (reply := _kept(result, unreachable)) else []
            for service, result in zip(services, results, strict=True)
        }
        return ConnectionHealthViews(views, unreachable)

    # ---- mapping fixes ------------------------------------------------------------------------

    async def create_carrier_mapping(self, member: StaffMember, mapping: carriers_pb.Mapping) -> None:
        request = carriers_pb.CreateMappingRequest(tenant_id=member.tenant_id, mapping=mapping)
        await self._call(MAPPING, self.mappings.CreateMapping, request, member)

    async def put_product_mapping(
        self, member: StaffMember, channel_sku: str, components: Sequence[tuple[str, int]]
    ) -> None:
        mapping = product_map_pb.ProductMapping(
            channel_sku=channel_sku,
            components=[product_map_pb.ProductComponent(sku=sku, quantity=quantity) for sku, quantity in components],
        )
        request = product_map_pb.PutProductMappingRequest(tenant_id=member.tenant_id, mapping=mapping)
        await self._call(DISPATCH, self.products.PutProductMapping, request, member)


_ACTIONS: dict[int, tuple[str, type]] = {
    admin_pb.ORDER_ACTION_RETRY_SEND: ("RetrySend", admin_pb.RetrySendRequest),
    admin_pb.ORDER_ACTION_DONT_SEND: ("DontSend", admin_pb.DontSendRequest),
    admin_pb.ORDER_ACTION_VOID_SYNC: ("VoidSync", admin_pb.VoidSyncRequest),
    admin_pb.ORDER_ACTION_CHECK_FULFILLMENT: ("CheckFulfillment", admin_pb.CheckFulfillmentRequest),
}


async def _pages(fetch: Callable[[str], Awaitable[T]], items: Callable[[T], Iterable]) -> list:
    """Up to LIST_LIMIT items from a paged list call (a page of LIST_LIMIT is one call)."""
    found: list = []
    token = ""
    while len(found) < LIST_LIMIT:
        reply = await fetch(token)
        found.extend(items(reply))
        token = reply.next_page_token  # type: ignore[attr-defined]
        if not token:
            break
    return found[:LIST_LIMIT]


def _kept(result, unreachable: dict[str, str]):
    """A gathered call's result; None for a ServiceError, noted in `unreachable` (the page names
    the service instead of failing whole). Any other exception is a bug and is raised."""
    if isinstance(result, ServiceError):
        unreachable[result.service] = result.message
        return None
    if isinstance(result, BaseException):
        raise result
    return result


def _timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def since_of(window: str, now: datetime | None = None) -> datetime | None:
    """The start of a failures view window ("24h", "7d", "30d"; anything else: no start)."""
    spans = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
    if window not in spans:
        return None
    return (now or datetime.now(UTC)) - spans[window]
