"""TrackingWritebackService: writeback records as protos, callers checked; errors as gRPC status codes."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import grpc
from ordersync.common.v1 import shipment_pb2
from ordersync.tracking.v1 import tracking_service_pb2 as pb
from ordersync.tracking.v1 import tracking_service_pb2_grpc as pb_grpc

from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import abort
from tracking_writeback.domain.writeback import live_tracking
from tracking_writeback.storage.writebacks import get_writeback, list_writebacks

_STATUS = {
    "pending": pb.WRITEBACK_STATUS_RETRY_WAIT,
    "retry_wait": pb.WRITEBACK_STATUS_RETRY_WAIT,
    "written": pb.WRITEBACK_STATUS_WRITTEN,
    "failed": pb.WRITEBACK_STATUS_FAILED,
    "blocked": pb.WRITEBACK_STATUS_BLOCKED,
}
# What ListWritebacks' statuses filter stands for in stored statuses (a pending write shows as RETRY_WAIT).
_STORED = {
    pb.WRITEBACK_STATUS_WRITTEN: ("written",),
    pb.WRITEBACK_STATUS_RETRY_WAIT: ("pending", "retry_wait"),
    pb.WRITEBACK_STATUS_FAILED: ("failed",),
    pb.WRITEBACK_STATUS_BLOCKED: ("blocked",),
}
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50
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
        return pb.GetWritebackResponse(record=_record(row))

    async def ListWritebacks(self, request, context: grpc.aio.ServicerContext) -> pb.ListWritebacksResponse:
        await self._access.require(context, request.tenant_id)
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"page_size must be 0..{MAX_PAGE_SIZE}")
        unknown = [s for s in request.statuses if s not in _STORED]
        if unknown:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"statuses: unknown value(s) {unknown}")
        after = await _page_position(request.page_token, request.tenant_id, context)
        size = request.page_size or DEFAULT_PAGE_SIZE
        statuses = sorted({stored for s in request.statuses for stored in _STORED[s]})
        rows = await list_writebacks(self._pool, request.tenant_id, statuses, after, size + 1)
        page, more = rows[:size], len(rows) > size
        return pb.ListWritebacksResponse(
            records=[_listed(row) for row in page],
            next_page_token=_page_token(request.tenant_id, page[-1]) if more else "",
        )


def _listed(row) -> pb.ListedWriteback:
    return pb.ListedWriteback(
        record=_record(row),
        channel_account=row["channel_account"],
        channel=row["channel"],
        order_number=row["external_number"],
    )


def _record(row) -> pb.WritebackRecord:
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
    return record


def _page_token(tenant_id: str, row) -> str:
    # Opaque to callers; it names the tenant so that it cannot page through another's list.
    position = {"tenant_id": tenant_id, "updated_at": row["updated_at"].isoformat(), "order_id": row["order_id"]}
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


async def _page_position(token: str, tenant_id: str, context) -> tuple[datetime, str] | None:
    """The listing position a page token stands for (None for the first page)."""
    if not token:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))
        updated_at = datetime.fromisoformat(position["updated_at"])
        if position["tenant_id"] == tenant_id and updated_at.tzinfo and isinstance(position["order_id"], str):
            return updated_at, position["order_id"]
    except (ValueError, KeyError, TypeError):
        pass
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this API returned for this tenant")
