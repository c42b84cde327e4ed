"""TrackingWritebackService: writeback records as protos, callers checked; errors as gRPC status codes."""

from __future__ import annotations

import json

import grpc
from ordersync.common.v1 import shipment_pb2
from ordersync.tracking.v1 import tracking_service_pb2 as pb
from ordersync.tracking.v1 import tracking_service_pb2_grpc as pb_grpc

from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import abort
from tracking_writeback.domain.writeback import live_tracking
from tracking_writeback.storage.writebacks import get_writeback

_STATUS = {
    "pending": pb.WRITEBACK_STATUS_RETRY_WAIT,
    "retry_wait": pb.WRITEBACK_STATUS_RETRY_WAIT,
    "written": pb.WRITEBACK_STATUS_WRITTEN,
    "failed": pb.WRITEBACK_STATUS_FAILED,
    "blocked": pb.WRITEBACK_STATUS_BLOCKED,
}
_SHIPMENT = {
    "shipped": shipment_pb2.SHIPMENT_STATUS_SHIPPED,
    "delivered": shipment_pb2.SHIPMENT_STATUS_DELIVERED,
    "cancelled": shipment_pb2.SHIPMENT_STATUS_CANCELLED,
}


class TrackingWritebackServicer(pb_grpc.TrackingWritebackServiceServicer):
    """Read API over writebacks; every call is scoped by tenant_id, which the caller must be granted."""

    def __init__(self, pool, access: GrpcAccess):
        self._pool = pool
        self._access = access

    async def GetWriteback(self, request, context: grpc.aio.ServicerContext) -> pb.GetWritebackResponse:
        await self._access.require(context, request.tenant_id)
        if not request.order_id:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "order_id is required")
        row = await get_writeback(self._pool, request.tenant_id, request.order_id)
        if row is None:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"nothing written back yet for order {request.order_id!r} of tenant {request.tenant_id!r}",
            )
        shipment = shipment_pb2.Shipment()
        shipment.ParseFromString(row["shipment_proto"])
        in_progress = row["status"] in ("pending", "retry_wait", "blocked")
        written = row["status"] == "written" or (in_progress and row["written_status"])
        shown = row["written_status"] if written else row["target_status"]
        # What the channel shows as ordersync wrote it; rows from before that was kept show the
        # shipment's live numbers.
        tracking = json.loads(row["written_tracking"]) or live_tracking(
            shipment.tracking_numbers, shipment.voided_tracking_numbers
        )
        record = pb.WritebackRecord(
            order_id=row["order_id"],
            shipment_status=_SHIPMENT.get(shown, shipment_pb2.SHIPMENT_STATUS_UNSPECIFIED),
            status=_STATUS[row["status"]],
            reason=row["reason"],
            tracking_numbers=tracking,
            customer_notified=row["customer_notified"],
            attempts=row["attempts"],
        )
        record.updated_time.FromDatetime(row["updated_at"])
        return pb.GetWritebackResponse(record=record)
