"""ComplianceRoutingService: decisions as protos, callers checked; errors as gRPC status codes."""

from __future__ import annotations

import grpc
from ordersync.compliance.v1 import compliance_service_pb2 as pb
from ordersync.compliance.v1 import compliance_service_pb2_grpc as pb_grpc
from ordersync.compliance.v1 import routing_pb2

from compliance_routing.storage.decisions import get_decision
from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import abort

_OUTCOME = {
    "route": routing_pb2.ROUTING_OUTCOME_ROUTE,
    "not_required": routing_pb2.ROUTING_OUTCOME_NOT_REQUIRED,
    "not_sent": routing_pb2.ROUTING_OUTCOME_NOT_SENT,
}


class ComplianceRoutingServicer(pb_grpc.ComplianceRoutingServiceServicer):
    """Read API over routing decisions; every call is scoped by tenant_id, which the caller must be granted."""

    def __init__(self, pool, access: GrpcAccess):
        self._pool = pool
        self._access = access

    async def GetRoutingDecision(self, request, context: grpc.aio.ServicerContext) -> pb.GetRoutingDecisionResponse:
        await self._access.require(context, request.tenant_id)
        if not request.order_id:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "order_id is required")
        row = await get_decision(self._pool, request.tenant_id, request.order_id)
        if row is None:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no routing decision for order {request.order_id!r} of tenant {request.tenant_id!r} yet",
            )
        decision = routing_pb2.RoutingDecision(
            outcome=_OUTCOME[row["outcome"]],
            provider=row["provider"],
            reason_code=row["reason_code"],
            reason=row["reason"],
            route=row["route"],
            rule=row["rule"],
            provider_account=row["provider_account"],
        )
        decision.decided_time.FromDatetime(row["decided_at"])
        return pb.GetRoutingDecisionResponse(decision=decision)
