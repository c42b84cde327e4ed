"""Reads one order's journey from the services' gRPC APIs and the channel simulator, and runs
`ordersync` commands on it as an operator would (ordersync, ordersync_trace)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.compliance.v1 import compliance_service_pb2, compliance_service_pb2_grpc, routing_pb2
from ordersync.dispatch.v1 import dispatch_pb2, dispatch_service_pb2, dispatch_service_pb2_grpc
from ordersync.intake.v1 import intake_service_pb2, intake_service_pb2_grpc
from ordersync.tracking.v1 import tracking_service_pb2, tracking_service_pb2_grpc

from libs.platform.testing import authorized

ROUTE_NAMES = {
    routing_pb2.ROUTING_OUTCOME_ROUTE: "route",
    routing_pb2.ROUTING_OUTCOME_NOT_REQUIRED: "not required",
    routing_pb2.ROUTING_OUTCOME_NOT_SENT: "not sent",
}
DISPATCH_NAMES = {
    dispatch_pb2.DISPATCH_STATUS_SENDING: "sending",
    dispatch_pb2.DISPATCH_STATUS_RETRY_WAIT: "retry wait",
    dispatch_pb2.DISPATCH_STATUS_SENT: "sent",
    dispatch_pb2.DISPATCH_STATUS_FAILED: "failed",
    dispatch_pb2.DISPATCH_STATUS_NOT_REQUIRED: "not required",
    dispatch_pb2.DISPATCH_STATUS_VOIDED: "voided",
    dispatch_pb2.DISPATCH_STATUS_AWAITING_PULL: "awaiting pull",
}
REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 60.0


async def ordersync_trace(
    env: Mapping[str, str], tenant_id: str, order: str, *args: str, capture: bool = True
) -> tuple[int, str, str]:
    """Run `ordersync trace TENANT ORDER ARGS...` (see `ordersync`)."""
    return await ordersync(env, "trace", tenant_id, order, *args, capture=capture)


async def ordersync(env: Mapping[str, str], *args: str, capture: bool = True) -> tuple[int, str, str]:
    """Run `python -m libs.cli ARGS...` with `env` (Stack.operator_env()) and return its exit code,
    standard output and error (both "" when not captured: printed as is). A subprocess the event
    loop awaits: the stack's simulators run on the caller's loop."""
    pipe = asyncio.subprocess.PIPE if capture else None
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "libs.cli", *args, cwd=REPO, env={**os.environ, **env}, stdout=pipe, stderr=pipe
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=CLI_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, (out or b"").decode(), (err or b"").decode()


SHIPMENT_NAMES = {
    shipment_pb2.SHIPMENT_STATUS_FULFILLED: "fulfilled",
    shipment_pb2.SHIPMENT_STATUS_SHIPPED: "shipped",
    shipment_pb2.SHIPMENT_STATUS_DELIVERED: "delivered",
    shipment_pb2.SHIPMENT_STATUS_CANCELLED: "cancelled",
}


@dataclass
class Journey:
    """What each service says of one order; empty strings where a service has nothing yet."""

    order_id: str = ""
    channel_account: str = ""  # the tenant's channel account that sold it, e.g. "store"
    intake: str = ""
    intake_reason: str = ""
    trace_id: str = ""
    route: str = ""
    route_reason: str = ""
    route_code: str = ""
    route_name: str = ""  # the tenant's route that decided, e.g. "wine-clubs-and-web"
    route_rule: str = ""  # which of its rules decided
    provider: str = ""  # the provider connector chosen, e.g. "vinoshipper"
    provider_account: str = ""  # the tenant's account at that provider, e.g. "wine-shipping"
    dispatch: str = ""
    dispatch_reason: str = ""
    dispatch_code: str = ""
    provider_order_number: str = ""
    shipment: str = ""
    tracking: tuple[str, ...] = ()
    written_back: str = ""
    customer_notified: bool = False


class JourneyReader:
    """Holds one channel per service and calls with `token` (a reader of the tenants it reads);
    use as an async context manager."""

    def __init__(self, addresses: dict[str, str], token: str):
        self._channels = {name: grpc.aio.insecure_channel(address) for name, address in addresses.items()}
        channels = self._channels
        self._intake = authorized(intake_service_pb2_grpc.OrderIntakeServiceStub(channels["order_intake"]), token)
        self._routing = authorized(
            compliance_service_pb2_grpc.ComplianceRoutingServiceStub(channels["compliance_routing"]), token
        )
        self._dispatch = authorized(
            dispatch_service_pb2_grpc.FulfillmentDispatchServiceStub(channels["fulfillment_dispatch"]), token
        )
        self._writeback = authorized(
            tracking_service_pb2_grpc.TrackingWritebackServiceStub(channels["tracking_writeback"]), token
        )

    async def __aenter__(self) -> JourneyReader:
        return self

    async def __aexit__(self, *exc) -> None:
        for channel in self._channels.values():
            await channel.close()

    async def read(self, tenant_id: str, channel: str, external_id: str, account: str = "") -> Journey:
        """The journey of the order `external_id` of `channel` (a connector id); `account` names the
        tenant's channel account when it has several of that connector."""
        journey = Journey()
        ref = order_pb2.ChannelOrderRef(channel=channel, external_id=external_id, account=account)
        intake = await _maybe(
            self._intake.GetOrder(intake_service_pb2.GetOrderRequest(tenant_id=tenant_id, channel_ref=ref))
        )
        if intake is None:
            return journey
        record = intake.record
        journey.order_id = record.order.order_id
        journey.channel_account = record.order.channel_account
        journey.intake = intake_service_pb2.IntakeStatus.Name(record.status).removeprefix("INTAKE_STATUS_").lower()
        journey.intake_reason = record.status_reason
        journey.trace_id = record.trace_id
        key = {"tenant_id": tenant_id, "order_id": journey.order_id}
        routing = await _maybe(
            self._routing.GetRoutingDecision(compliance_service_pb2.GetRoutingDecisionRequest(**key))
        )
        if routing is not None:
            journey.route = ROUTE_NAMES.get(routing.decision.outcome, "?")
            journey.route_reason = routing.decision.reason
            journey.route_code = routing.decision.reason_code
            journey.route_name = routing.decision.route
            journey.route_rule = routing.decision.rule
            journey.provider = routing.decision.provider
            journey.provider_account = routing.decision.provider_account
        dispatch = await _maybe(self._dispatch.GetDispatch(dispatch_service_pb2.GetDispatchRequest(**key)))
        if dispatch is not None:
            journey.dispatch = DISPATCH_NAMES.get(dispatch.record.status, "?")
            journey.dispatch_reason = dispatch.record.reason
            journey.dispatch_code = dispatch.record.reason_code
            journey.provider_order_number = dispatch.record.provider_order_number
            journey.shipment = SHIPMENT_NAMES.get(dispatch.record.shipment.status, "")
            journey.tracking = tuple(dispatch.record.shipment.tracking_numbers)
        writeback = await _maybe(self._writeback.GetWriteback(tracking_service_pb2.GetWritebackRequest(**key)))
        if writeback is not None and writeback.record.status == tracking_service_pb2.WRITEBACK_STATUS_WRITTEN:
            journey.written_back = SHIPMENT_NAMES.get(writeback.record.shipment_status, "")
            journey.customer_notified = writeback.record.customer_notified
        return journey


async def _maybe(call):
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
