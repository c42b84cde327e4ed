"""Connection health's shared machinery: how fresh and healthy each of a tenant's connector
accounts is as one service sees it, and the gRPC API serving it (`ordersync.ops.v1.ConnectionHealthService`).

Three services answer (order intake for the channel accounts it takes orders from, fulfillment
dispatch for the provider accounts it sends to, tracking writeback for the channel accounts it
writes shipments to), each from its own schema only; the operator console merges their rows per
account. Each service writes a `HealthSource` (a few tenant-scoped queries over its own tables);
this module holds the shapes, the servicer (caller check, window, answer codes) and the binding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
import grpc
from google.protobuf import timestamp_pb2
from ordersync.ops.v1 import connection_health_pb2 as pb
from ordersync.ops.v1 import connection_health_pb2_grpc as pb_grpc

from libs.platform.auth import READ, GrpcAccess
from libs.platform.grpc_server import ServiceBinding, abort, bind

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=30)

SKU = pb.UNMAPPED_KIND_SKU
SERVICE_CODE = pb.UNMAPPED_KIND_SERVICE_CODE
CARRIER_CODE = pb.UNMAPPED_KIND_CARRIER_CODE


@dataclass(frozen=True)
class Unmapped:
    """One code found with no mapping (UnmappedCode's fields; `kind` one of SKU, SERVICE_CODE, CARRIER_CODE)."""

    kind: int
    code: str
    orders: int
    last_seen: datetime
    example_order_id: str
    connector: str


@dataclass
class ConnectionHealth:
    """One account as one service sees it (ConnectionHealth's fields); None and 0 where unmeasured."""

    account: str
    connector: str
    last_poll: datetime | None = None
    last_received: datetime | None = None
    oldest_unsent: datetime | None = None
    unsent_count: int = 0
    oldest_unwritten: datetime | None = None
    unwritten_count: int = 0
    attempts: int = 0
    failures: int = 0
    last_error: str = ""
    unmapped: list[Unmapped] = field(default_factory=list)


class HealthSource(Protocol):
    """One service's reading of its own tables, every query scoped by the tenant."""

    async def connection_health(self, pool: asyncpg.Pool, tenant_id: str, since: datetime) -> list[ConnectionHealth]:
        """The tenant's accounts this service deals with; attempts and failures counted from `since`."""
        ...


class ConnectionHealthServicer(pb_grpc.ConnectionHealthServiceServicer):
    """ConnectionHealthService over one service's HealthSource; reading needs the tenant granted."""

    def __init__(self, pool: asyncpg.Pool, source: HealthSource, access: GrpcAccess, *, service: str):
        self._pool = pool
        self._source = source
        self._access = access
        self._service = service

    async def GetConnectionHealth(
        self, request: pb.GetConnectionHealthRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetConnectionHealthResponse:
        await self._access.require(context, request.tenant_id, READ)
        window = request.window.ToTimedelta() if request.HasField("window") else DEFAULT_WINDOW
        if not timedelta(0) <= window <= MAX_WINDOW:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"window must be 0 to {MAX_WINDOW.days} days")
        since = datetime.now(UTC) - window
        connections = await self._source.connection_health(self._pool, request.tenant_id, since)
        return pb.GetConnectionHealthResponse(
            service=self._service,
            connections=[_proto(c) for c in sorted(connections, key=lambda c: (c.account, c.connector))],
        )


def health_binding(pool: asyncpg.Pool, source: HealthSource, access: GrpcAccess, *, service: str) -> ServiceBinding:
    """ConnectionHealthService over `source`, to serve beside the service's other bindings."""
    return bind(pb, pb_grpc, "ConnectionHealthService", ConnectionHealthServicer(pool, source, access, service=service))


def most_orders_first(codes: list[Unmapped]) -> list[Unmapped]:
    """Unmapped codes as the API lists them: most orders held up first, then the latest seen."""
    return sorted(codes, key=lambda u: (-u.orders, -u.last_seen.timestamp(), u.code))


def _proto(health: ConnectionHealth) -> pb.ConnectionHealth:
    return pb.ConnectionHealth(
        account=health.account,
        connector=health.connector,
        last_poll_time=_stamp(health.last_poll),
        last_received_time=_stamp(health.last_received),
        oldest_unsent_time=_stamp(health.oldest_unsent),
        unsent_count=health.unsent_count,
        oldest_unwritten_time=_stamp(health.oldest_unwritten),
        unwritten_count=health.unwritten_count,
        attempts=health.attempts,
        failures=health.failures,
        last_error=health.last_error,
        unmapped=[
            pb.UnmappedCode(
                kind=u.kind,  # type: ignore[arg-type]
                code=u.code,
                orders=u.orders,
                last_seen_time=_stamp(u.last_seen),
                example_order_id=u.example_order_id,
                connector=u.connector,
            )
            for u in most_orders_first(health.unmapped)
        ],
    )


def _stamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
