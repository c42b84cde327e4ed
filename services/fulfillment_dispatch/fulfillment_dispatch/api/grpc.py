"""FulfillmentDispatchService: dispatch records as protos, callers checked; errors as gRPC status codes."""

from __future__ import annotations

import grpc
from ordersync.common.v1 import order_pb2
from ordersync.dispatch.v1 import dispatch_pb2
from ordersync.dispatch.v1 import dispatch_service_pb2 as pb
from ordersync.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.storage.dispatches import get_dispatch
from libs.platform.auth import GrpcAccess

_STATUS = {
    "sending": dispatch_pb2.DISPATCH_STATUS_SENDING,
    "retry_wait": dispatch_pb2.DISPATCH_STATUS_RETRY_WAIT,
    "sent": dispatch_pb2.DISPATCH_STATUS_SENT,
    "failed": dispatch_pb2.DISPATCH_STATUS_FAILED,
    "not_required": dispatch_pb2.DISPATCH_STATUS_NOT_REQUIRED,
    "voided": dispatch_pb2.DISPATCH_STATUS_VOIDED,
    "awaiting_pull": dispatch_pb2.DISPATCH_STATUS_AWAITING_PULL,
}


class FulfillmentDispatchServicer(pb_grpc.FulfillmentDispatchServiceServicer):
    """Read API over dispatch records; every call is scoped by tenant_id, which the caller must be granted."""

    def __init__(self, pool, access: GrpcAccess):
        self._pool = pool
        self._access = access

    async def GetDispatch(self, request, context: grpc.aio.ServicerContext) -> pb.GetDispatchResponse:
        await self._access.require(context, request.tenant_id)
        if not request.order_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order_id is required")
        row = await get_dispatch(self._pool, request.tenant_id, request.order_id)
        if row is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"order {request.order_id!r} of tenant {request.tenant_id!r} has no sync status yet",
            )
        return pb.GetDispatchResponse(record=_record(row))


def _record(row) -> dispatch_pb2.DispatchRecord:
    record = dispatch_pb2.DispatchRecord(
        order_id=row["order_id"],
        tenant_id=row["tenant_id"],
        channel_ref=order_pb2.ChannelOrderRef(
            channel=row["channel"], external_id=row["external_id"], external_number=row["external_number"]
        ),
        provider=row["provider"],
        status=_STATUS[row["status"]],
        reason_code=row["reason_code"],
        reason=row["reason"],
        provider_order_number=row["provider_order_number"],
        provider_reference=row["provider_reference"],
        attempts=row["attempts"],
    )
    record.updated_time.FromDatetime(row["updated_at"])
    if row["status"] == "retry_wait":
        record.next_attempt_time.FromDatetime(row["next_attempt_at"])
    if row["shipment_proto"]:
        record.shipment.ParseFromString(row["shipment_proto"])
    return record
