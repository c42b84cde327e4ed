"""Helpers for testing consumers (ConsumedEvents as the BatchConsumer would hand them over) and
gRPC APIs (a servicer served on a free port, and callers of two tenants)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from google.protobuf.message import Message
from opentelemetry import context as otel_context

from libs.platform.auth import OPERATOR, Caller, CallerDirectory, GrpcAccess, bearer
from libs.platform.events import new_event, parse_envelope
from libs.platform.grpc_server import GrpcServer, ServiceBinding, insecure_channel
from libs.platform.kafka import ConsumedEvent

# Tokens of the callers `access_for_tests()` knows: tenant "acme" has a reader and an operator,
# tenant "globex" an operator, and one reader sees every tenant.
ACME_READER = "acme-reader-token"
ACME_OPERATOR = "acme-operator-token"
GLOBEX_OPERATOR = "globex-operator-token"
ALL_READER = "all-tenants-reader-token"
TEST_CALLERS = {
    ALL_READER: Caller("all-tenants-viewer", frozenset({"*"})),
    ACME_READER: Caller("acme-viewer", frozenset({"acme"})),
    ACME_OPERATOR: Caller("jane@acme.example", frozenset({"acme"}), frozenset({OPERATOR})),
    GLOBEX_OPERATOR: Caller("ops@globex.example", frozenset({"globex"}), frozenset({OPERATOR})),
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


def consumed(topic: str, payload: Message, *, aggregate_id: str, tenant_id: str, offset: int = 0) -> ConsumedEvent:
    """Wrap `payload` in an envelope and return it as a consumed Kafka message."""
    event = new_event(topic, payload, aggregate_id=aggregate_id, tenant_id=tenant_id, producer="test")
    return ConsumedEvent(topic, 0, offset, parse_envelope(event.value), otel_context.Context())
