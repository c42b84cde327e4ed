"""Test and benchmark helper: the real service in a schema of its own, on a port the OS picks.

Used by this service's tests, the client library's tests and the mapping benchmark, so all of
them run the same components the process runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from unittest import mock

import asyncpg
import grpc
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from carrier_mapping.app import CarrierMappingApp, build
from carrier_mapping.config import CarrierMappingSettings
from libs.platform.auth import DELEGATE, WRITE, Caller, CallerDirectory, bearer
from libs.platform.config import PlatformSettings


@dataclass
class RunningService:
    """A started service: its app, address, schema, and the DSN to reach that schema."""

    app: CarrierMappingApp
    address: str
    dsn: str
    schema: str


def _platform_settings(dsn: str, schema: str) -> PlatformSettings:
    """The platform settings a process would read, for `schema`; Kafka and tenants go unused."""
    environment = {
        "ORDERSYNC_PG_DSN": dsn,
        "ORDERSYNC_DB_SCHEMA": schema,
        "ORDERSYNC_GRPC_PORT": "0",
        "ORDERSYNC_KAFKA_BOOTSTRAP": os.environ.get("ORDERSYNC_KAFKA_BOOTSTRAP") or "127.0.0.1:9",
        "ORDERSYNC_TENANTS_FILE": os.environ.get("ORDERSYNC_TENANTS_FILE") or "unused.toml",
        "ORDERSYNC_PG_POOL_SIZE": "4",
    }
    with mock.patch.dict(os.environ, environment):
        return PlatformSettings.from_env("carrier-mapping", "carrier_mapping", 0)


@asynccontextmanager
async def running_service(
    dsn: str, callers: dict[str, Caller], *, refresh_s: float = 5.0
) -> AsyncIterator[RunningService]:
    """Migrate a fresh schema, start the service with `callers` (token -> Caller), yield it;
    stop it and drop the schema afterwards, even on failure."""
    schema = f"carrier_mapping_test_{secrets.token_hex(6)}"
    platform = _platform_settings(dsn, schema)
    settings = CarrierMappingSettings(platform, refresh_s, CallerDirectory(callers.items()))
    try:
        app = await build(settings)
        async with app:
            yield RunningService(app, f"127.0.0.1:{app.grpc_port}", dsn, schema)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


# Tokens of the callers every test service knows.
ADMIN = "admin-token"  # every tenant, may write
ACME_WRITER = "acme-writer-token"  # tenant acme only, may write
ACME_READER = "acme-reader-token"  # tenant acme only, read only
CONSOLE = "console-token"  # every tenant, may write and act on behalf of its staff
CALLERS = {
    ADMIN: Caller("operator", frozenset({"*"}), frozenset({WRITE})),
    ACME_WRITER: Caller("acme-admin", frozenset({"acme"}), frozenset({WRITE})),
    ACME_READER: Caller("acme-dispatch", frozenset({"acme"})),
    CONSOLE: Caller("operator-console", frozenset({"*"}), frozenset({WRITE, DELEGATE})),
}


class Stubs:
    """A stub per caller token; `as_(token)` calls with that token, `anonymous` with none."""

    def __init__(self, channel: grpc.aio.Channel):
        self._stub = pb_grpc.CarrierMappingServiceStub(channel)

    def as_(self, token: str | None, delegation: tuple[tuple[str, str], ...] = ()):
        """Call with `token`, plus the on-behalf-of metadata `delegation` (see auth.on_behalf_of)."""
        return _WithToken(self._stub, (*bearer(token), *delegation))


class _WithToken:
    def __init__(self, stub, metadata):
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, name):
        method = getattr(self._stub, name)

        def call(request, **kwargs):
            kwargs.setdefault("timeout", 5)
            return method(request, metadata=self._metadata, **kwargs)

        return call
