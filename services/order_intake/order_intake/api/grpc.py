"""OrderIntakeService: proto <-> storage rows, callers checked; errors as gRPC status codes."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import grpc
from google.protobuf import timestamp_pb2
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.platform.auth import GrpcAccess
from order_intake.storage import orders as storage
from order_intake.storage import pulls

_STATUS = {
    "accepted": pb.INTAKE_STATUS_ACCEPTED,
    "invalid": pb.INTAKE_STATUS_INVALID,
    "not_imported": pb.INTAKE_STATUS_NOT_IMPORTED,
}
_STATUS_NAMES = {value: name for name, value in _STATUS.items()}


class OrderIntakeServicer(pb_grpc.OrderIntakeServiceServicer):
    """Read API over intake's records (customer details included); every call is scoped by
    tenant_id, which the caller must be granted."""

    def __init__(self, pool, access: GrpcAccess):
        self._pool = pool
        self._access = access

    async def GetOrder(self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext) -> pb.GetOrderResponse:
        await self._access.require(context, request.tenant_id)
        if request.order_id:
            row = await storage.get_order(self._pool, request.tenant_id, request.order_id)
        elif request.channel_ref.channel and request.channel_ref.external_id:
            ref = request.channel_ref
            row = await storage.get_order_by_channel_ref(self._pool, request.tenant_id, ref.channel, ref.external_id)
        else:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "give order_id, or channel_ref with channel and external_id"
            )
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"tenant {request.tenant_id!r} has no such order")
        return pb.GetOrderResponse(record=_record(row))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrdersResponse:
        await self._access.require(context, request.tenant_id)
        if not 0 <= request.page_size <= 500:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be between 0 and 500")
        limit = request.page_size or 100
        try:
            after = _decode_token(request.page_token) if request.page_token else None
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this API issued")
        if request.status and request.status not in _STATUS_NAMES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "status is not one intake stores")
        rows = await storage.list_orders(
            self._pool,
            request.tenant_id,
            limit,
            after,
            status=_STATUS_NAMES.get(request.status, ""),
            rule_code=request.rule_code,
        )
        token = _encode_token(rows[-1]) if len(rows) == limit else ""
        return pb.ListOrdersResponse(records=[_record(r) for r in rows], next_page_token=token)

    async def ListPullCursors(
        self, request: pb.ListPullCursorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPullCursorsResponse:
        await self._access.require(context, request.tenant_id)
        rows = await pulls.list_cursors(self._pool, request.tenant_id)
        return pb.ListPullCursorsResponse(cursors=[_cursor(r) for r in rows])


def _cursor(row) -> pb.PullCursor:
    cursor = pb.PullCursor(
        account=row["account"],
        connector=row["connector"],
        cursor=row["cursor"],
        lease_owner=row["lease_owner"] or "",
        failures=row["failures"],
        last_error=row["last_error"],
        orders_pulled=row["orders_pulled"],
        unacknowledged_count=row["unacknowledged_count"],
        awaiting_handover_count=row["awaiting_handover_count"],
        handed_over_unacknowledged_count=row["handed_over_unacknowledged_count"],
    )
    for field, column in (
        ("lease_expire_time", "lease_until"),
        ("next_poll_time", "next_poll_at"),
        ("last_poll_time", "last_polled_at"),
    ):
        if row[column] is not None:
            getattr(cursor, field).FromDatetime(row[column])
    return cursor


def _record(row) -> pb.IntakeRecord:
    order = order_pb2.Order()
    order.ParseFromString(row["order_proto"])
    received = timestamp_pb2.Timestamp()
    received.FromDatetime(row["received_at"])
    return pb.IntakeRecord(
        order=order,
        status=_STATUS.get(row["status"], pb.INTAKE_STATUS_UNSPECIFIED),
        status_reason=row["status_reason"],
        revision_count=row["revision_count"],
        received_time=received,
        trace_id=row["trace_id"],
        rule_failures=[
            pb.RuleFailure(code=f["code"], field=f["field"], sentence=f["sentence"])
            for f in json.loads(row["rule_failures"])
        ],
    )


def _encode_token(row) -> str:
    raw = json.dumps([row["received_at"].isoformat(), row["order_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple:
    try:
        received_at, order_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(received_at), order_id
    except Exception as exc:
        raise ValueError("bad page token") from exc
