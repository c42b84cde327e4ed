"""Helpers for testing consumers (ConsumedEvents as the BatchConsumer would hand them over) and
gRPC APIs (a servicer served on a free port, callers of two tenants, the codes strangers get, and
a service's OrderHistoryService on its own migrated schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from ordersync.ops.v1 import order_history_pb2_grpc

from libs.platform.auth import DELEGATE, OPERATOR, Caller, CallerDirectory, GrpcAccess, bearer
from libs.platform.db import create_pool, migrate
from libs.platform.events import new_event, parse_envelope
from libs.platform.grpc_server import GrpcServer, ServiceBinding, insecure_channel
from libs.platform.kafka import ConsumedEvent
from libs.platform.order_history import HistoryReader, history_binding

# Tokens of the callers `access_for_tests()` knows: tenant "acme" has a reader and an operator,
# tenant "globex" an operator, and one reader sees every tenant; the operator console, an
# operator of every tenant, acts on behalf of its staff (auth.on_behalf_of).
ACME_READER = "acme-reader-token"
ACME_OPERATOR = "acme-operator-token"
GLOBEX_OPERATOR = "globex-operator-token"
ALL_READER = "all-tenants-reader-token"
CONSOLE = "operator-console-token"
TEST_CALLERS = {
    ALL_READER: Caller("all-tenants-viewer", frozenset({"*"})),
    ACME_READER: Caller("acme-viewer", frozenset({"acme"})),
    ACME_OPERATOR: Caller("jane@acme.example", frozenset({"acme"}), frozenset({OPERATOR})),
    GLOBEX_OPERATOR: Caller("ops@globex.example", frozenset({"globex"}), frozenset({OPERATOR})),
    CONSOLE: Caller("operator-console", frozenset({"*"}), frozenset({OPERATOR, DELEGATE})),
}


def access_for_tests() -> GrpcAccess:
    """The caller check of a servicer under test, admitting TEST_CALLERS."""
    return GrpcAccess(CallerDirectory(TEST_CALLERS.items()))


def authorized(stub, token: str):
    """`stub` with `authorization: Bearer <token>` on every call (and a 30 s default timeout)."""
    return _Authorized(stub, bearer(token))


class _Authorized:
    def __init__(self, stub, metadata):
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, name):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            kwargs.setdefault("timeout", 30)
            return method(request, metadata=self._metadata, **kwargs)

        return call


@asynccontextmanager
async def serving(*bindings: ServiceBinding) -> AsyncIterator[grpc.aio.Channel]:
    """Serve `bindings` on a free loopback port; yield a channel to it; stop both afterwards."""
    server = GrpcServer(bindings, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel
    finally:
        await server.stop(0)


async def refused(call: Awaitable[Any]) -> grpc.StatusCode:
    """The code `call` is refused with; an AssertionError when it is answered."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    raise AssertionError("the call was answered, not refused")


async def refusals(stub, method: str, request: Message) -> tuple[grpc.StatusCode, grpc.StatusCode]:
    """What `method` of `stub` answers `request` (one of tenant "acme") for a caller with no token
    and for globex's operator: (UNAUTHENTICATED, PERMISSION_DENIED) where the caller is checked."""
    anonymous = await refused(getattr(stub, method)(request, timeout=5))
    stranger = await refused(getattr(authorized(stub, GLOBEX_OPERATOR), method)(request))
    return anonymous, stranger


@asynccontextmanager
async def serving_history(
    database: str, schema: str, migrations: Path, reader: HistoryReader
) -> AsyncIterator[tuple[asyncpg.Pool, order_history_pb2_grpc.OrderHistoryServiceStub]]:
    """A service's OrderHistoryService over `reader` as its tests need it: `schema` migrated on
    `database`, a pool of it to seed the tables, and a stub with no token (see `authorized`)."""
    await migrate(database, schema, migrations)
    pool = await create_pool(database, schema, 2)
    try:
        async with serving(history_binding(pool, reader, access_for_tests())) as channel:
            yield pool, order_history_pb2_grpc.OrderHistoryServiceStub(channel)
    finally:
        await pool.close()


def consumed(topic: str, payload: Message, *, aggregate_id: str, tenant_id: str, offset: int = 0) -> ConsumedEvent:
    """Wrap `payload` in an envelope and return it as a consumed Kafka message."""
    event = new_event(topic, payload, aggregate_id=aggregate_id, tenant_id=tenant_id, producer="test")
    return ConsumedEvent(topic, 0, offset, parse_envelope(event.value), otel_context.Context())
