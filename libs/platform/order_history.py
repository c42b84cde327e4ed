"""Order history's shared machinery: one service's steps of an order, and the gRPC API serving them.

Four services tell their part of an order's journey over `ordersync.ops.v1.OrderHistoryService`
(order intake, compliance routing, fulfillment dispatch, tracking writeback), each from its own
schema only; `ordersync trace` (libs/cli/trace.py) merges them. Each service writes a
`HistoryReader` (how its tables become `Step`s); this module holds what all four need: the step
and history shapes, the servicer (caller check, tenant isolation, answer codes), dead letters of
the order as steps (every schema has a `dead_letters` table keyed by the order id), and the trace
id of a stored W3C traceparent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import grpc
from google.protobuf import timestamp_pb2
from ordersync.ops.v1 import order_history_pb2 as pb
from ordersync.ops.v1 import order_history_pb2_grpc as pb_grpc

from libs.platform.auth import READ, GrpcAccess
from libs.platform.db import PgConnection
from libs.platform.grpc_server import ServiceBinding, bind

DEAD_LETTER = "dead_letter"
MAX_STEPS = 2000  # per service and order: a long history stays one quick answer


@dataclass(frozen=True)
class Step:
    """One thing that happened to the order at one service (fields as OrderStep's, the time as a
    datetime): what a service serves and what `ordersync trace` merges and shows."""

    time: datetime
    service: str
    kind: str
    status: str
    reason_code: str = ""
    message: str = ""
    trace_id: str = ""
    failed: bool = False
    action: str = ""

    @classmethod
    def of(cls, step: pb.OrderStep) -> Step:
        """The step an OrderStep tells (`step_to_proto` the other way)."""
        plain = {f.name: getattr(step, f.name) for f in fields(cls) if f.name != "time"}
        return cls(time=step.time.ToDatetime(tzinfo=UTC), **plain)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time.isoformat()}


@dataclass
class History:
    """The order as one service knows it: its id, number, steps (any order) and whether done."""

    order_id: str
    order_number: str = ""
    steps: list[Step] = field(default_factory=list)
    complete: bool = False


class HistoryReader(Protocol):
    """One service's reading of its own tables."""

    service: str
    # True at order intake: it resolves the operator's `order` and an unknown one is NOT_FOUND.
    resolves: bool

    async def read(self, conn: PgConnection, tenant_id: str, order: str) -> History | None:
        """The tenant's order as this service recorded it; None when it has no such order."""
        ...


class OrderHistoryServicer(pb_grpc.OrderHistoryServiceServicer):
    """OrderHistoryService over one service's HistoryReader; reading needs the tenant granted."""

    def __init__(self, pool: asyncpg.Pool, reader: HistoryReader, access: GrpcAccess):
        self._pool = pool
        self._reader = reader
        self._access = access

    async def GetOrderHistory(
        self, request: pb.GetOrderHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetOrderHistoryResponse:
        await self._access.require(context, request.tenant_id, READ)
        order = request.order.strip()
        if not order:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order is required")
        # One snapshot for every table read, so the steps agree with each other.
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            history = await self._reader.read(conn, request.tenant_id, order)
        if history is None:
            if self._reader.resolves:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"tenant {request.tenant_id!r} has no order {order!r} (give ordersync's id, or the"
                    " channel's order id or number)",
                )
            return pb.GetOrderHistoryResponse()
        steps = sorted(history.steps, key=lambda s: s.time)[-MAX_STEPS:]
        return pb.GetOrderHistoryResponse(
            order_id=history.order_id,
            order_number=history.order_number,
            steps=[step_to_proto(s) for s in steps],
            complete=history.complete,
        )


def history_binding(pool: asyncpg.Pool, reader: HistoryReader, access: GrpcAccess) -> ServiceBinding:
    """OrderHistoryService over `reader`, to serve beside the service's other bindings."""
    return bind(pb, pb_grpc, "OrderHistoryService", OrderHistoryServicer(pool, reader, access))


def step_to_proto(step: Step) -> pb.OrderStep:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(step.time)
    return pb.OrderStep(**{**asdict(step), "time": stamp})


def trace_id_of(traceparent: str) -> str:
    """The trace id of a W3C traceparent (`00-<32 hex>-<16 hex>-<flags>`); "" when there is none."""
    parts = traceparent.split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return ""


async def dead_letter_steps(conn: PgConnection, service: str, order_ids: Sequence[str]) -> list[Step]:
    """The service's dead letters of these orders (Kafka key = the order id), one step each; a
    replayed one is no longer a failure (the replay's own steps follow it).

    Only call it for orders the service has already tied to the tenant."""
    if not order_ids:
        return []
    rows = await conn.fetch(
        "SELECT id, topic, error, received_at, source, replayed_at, replayed_by,"
        " (SELECT h->>1 FROM jsonb_array_elements(headers) AS h WHERE h->>0 = 'traceparent' LIMIT 1) AS traceparent"
        " FROM dead_letters"
        " WHERE key = ANY(SELECT convert_to(o, 'UTF8') FROM unnest($1::text[]) AS o)"
        " ORDER BY id LIMIT $2",
        list(order_ids),
        MAX_STEPS,
    )
    return [_dead_letter_step(service, row) for row in rows]


def _dead_letter_step(service: str, row: asyncpg.Record) -> Step:
    kept = f"{row['source']} message on {row['topic']} set aside (dead letter {row['id']}): {row['error']}"
    if row["replayed_at"] is not None:
        when = row["replayed_at"].isoformat(timespec="seconds")
        return Step(
            time=row["received_at"],
            service=service,
            kind=DEAD_LETTER,
            status="replayed",
            message=f"{kept}; replayed by {row['replayed_by']} at {when}",
            trace_id=trace_id_of(row["traceparent"] or ""),
        )
    return Step(
        time=row["received_at"],
        service=service,
        kind=DEAD_LETTER,
        status="dead_lettered",
        message=kept,
        trace_id=trace_id_of(row["traceparent"] or ""),
        failed=True,
        action=f"fix the cause, then replay it: ordersync dead-letters replay TENANT {service} {row['id']} --reason WHY",
    )
