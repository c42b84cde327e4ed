"""What the other services say of an order, for the admin API's GetOrder.

Each peer is asked through its own gRPC read API, all at once, within the caller's deadline. A
peer that is not configured, does not know the order, or does not answer says so in its line;
the operator still gets dispatch's own view.
"""

from __future__ import annotations

import asyncio

import grpc
from ordersync.common.v1 import shipment_pb2
from ordersync.compliance.v1 import compliance_service_pb2, compliance_service_pb2_grpc, routing_pb2
from ordersync.intake.v1 import intake_service_pb2, intake_service_pb2_grpc
from ordersync.tracking.v1 import tracking_service_pb2, tracking_service_pb2_grpc

from libs.platform.auth import bearer
from libs.platform.config import GrpcClientTls
from libs.platform.grpc_server import client_channel

PEER_TIMEOUT_S = 2.0
_ROUTES = {
    routing_pb2.ROUTING_OUTCOME_ROUTE: "routed",
    routing_pb2.ROUTING_OUTCOME_NOT_REQUIRED: "not required",
    routing_pb2.ROUTING_OUTCOME_NOT_SENT: "not sent",
}

View = tuple[str, str, str]  # (service, status, reason)


class PeerViews:
    """Holds one channel per configured peer and asks with `token`; a component (start/stop)."""

    def __init__(self, addresses: dict[str, str], token: str | None = None, tls: GrpcClientTls | None = None):
        self._addresses = addresses
        self._metadata = bearer(token)
        self._tls = tls
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def start(self) -> None:
        for name, address in self._addresses.items():
            self._channels.setdefault(name, client_channel(address, self._tls))

    async def stop(self) -> None:
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            await channel.close()

    async def views(self, tenant_id: str, order_id: str, time_remaining: float | None) -> list[View]:
        deadline_s = min(PEER_TIMEOUT_S, time_remaining) if time_remaining else PEER_TIMEOUT_S
        asks = [
            ("order-intake", self._intake),
            ("compliance-routing", self._routing),
            ("tracking-writeback", self._writeback),
        ]
        return list(
            await asyncio.gather(*(self._ask(name, ask, tenant_id, order_id, deadline_s) for name, ask in asks))
        )

    async def _ask(self, name: str, ask, tenant_id: str, order_id: str, deadline_s: float) -> View:
        channel = self._channels.get(name)
        if channel is None:
            return name, "not configured", "set its address to include it"
        try:
            status, reason = await ask(channel, tenant_id, order_id, deadline_s, self._metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return name, "nothing recorded", exc.details() or ""
            return name, "unavailable", f"{exc.code().name}: {exc.details()}"
        return name, status, reason

    @staticmethod
    async def _intake(channel, tenant_id: str, order_id: str, deadline_s: float, metadata) -> tuple[str, str]:
        stub = intake_service_pb2_grpc.OrderIntakeServiceStub(channel)
        request = intake_service_pb2.GetOrderRequest(tenant_id=tenant_id, order_id=order_id)
        record = (await stub.GetOrder(request, timeout=deadline_s, metadata=metadata)).record
        status = intake_service_pb2.IntakeStatus.Name(record.status).removeprefix("INTAKE_STATUS_").lower()
        return f"{status} ({record.revision_count} revision(s))", record.status_reason

    @staticmethod
    async def _routing(channel, tenant_id: str, order_id: str, deadline_s: float, metadata) -> tuple[str, str]:
        stub = compliance_service_pb2_grpc.ComplianceRoutingServiceStub(channel)
        request = compliance_service_pb2.GetRoutingDecisionRequest(tenant_id=tenant_id, order_id=order_id)
        decision = (await stub.GetRoutingDecision(request, timeout=deadline_s, metadata=metadata)).decision
        return _ROUTES.get(decision.outcome, "?"), f"{decision.reason_code}: {decision.reason}"

    @staticmethod
    async def _writeback(channel, tenant_id: str, order_id: str, deadline_s: float, metadata) -> tuple[str, str]:
        stub = tracking_service_pb2_grpc.TrackingWritebackServiceStub(channel)
        request = tracking_service_pb2.GetWritebackRequest(tenant_id=tenant_id, order_id=order_id)
        record = (await stub.GetWriteback(request, timeout=deadline_s, metadata=metadata)).record
        status = tracking_service_pb2.WritebackStatus.Name(record.status).removeprefix("WRITEBACK_STATUS_").lower()
        shipment = record.shipment_status and _shipment_name(record.shipment_status)
        detail = record.reason
        if record.customer_notified:
            detail = (detail + "; " if detail else "") + "customer notified by the channel"
        return f"{status}: {shipment}" if shipment else status, detail


def _shipment_name(status: int) -> str:
    return shipment_pb2.ShipmentStatus.Name(status).removeprefix("SHIPMENT_STATUS_").lower()
