"""The intake webhook endpoint as tests run it: the real app over real HTTP, on a database of its own."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from aiohttp.test_utils import TestServer

from libs.connectors.base.testing import load_vendor_json
from libs.platform.db import create_pool, migrate
from libs.platform.http_server import tracing_middleware
from libs.platform.tenants import Commerce7Channel, Secret, Tenant, TenantDirectory
from order_intake.api.webhooks import Commerce7WebhookHandler, build_web_app
from order_intake.app import MIGRATIONS
from order_intake.domain.intake import InputLimits
from order_intake.storage.orders import RevisionWriter

TENANT = "acme"
SLUG = "demo-winery"  # the tenantId of the vendor sample
USER, PASSWORD = "hook-user", "hook-pass"


def tenants() -> TenantDirectory:
    channel = Commerce7Channel(
        tenant_slug=SLUG,
        app_id="app",
        app_secret=Secret("app-secret"),
        webhook_user=USER,
        webhook_password=Secret(PASSWORD),
    )
    return TenantDirectory({TENANT: Tenant(TENANT, channel, None, frozenset({"CA"}))})


def webhook(**order_changes: Any) -> dict[str, Any]:
    """The vendor's sample Order Create webhook; keyword arguments replace order fields."""
    body = load_vendor_json("commerce7", "webhook_order_create_web_ship.json")
    body["payload"].update(order_changes)
    return body


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


@dataclass
class Endpoint:
    url: str
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    dsn: str

    async def post(self, body: bytes, *, content_type: str | None = "application/json", auth=(USER, PASSWORD), **kw):
        headers = {"Content-Type": content_type} if content_type is not None else {}
        return await self.http.post(self.url, content=body, headers=headers, auth=auth, **kw)

    async def receipt(self, receipt_id: int) -> asyncpg.Record:
        return await self.pool.fetchrow(
            "SELECT outcome, detail, body, order_id FROM webhook_receipts WHERE id = $1", receipt_id
        )

    async def count(self, table: str) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {table}")


@contextlib.asynccontextmanager
async def serve(dsn: str, limits: InputLimits) -> AsyncIterator[Endpoint]:
    await migrate(dsn, "order_intake", MIGRATIONS)
    pool = await create_pool(dsn, "order_intake", 4)
    writer = RevisionWriter(pool, max_batch=50)
    await writer.start()
    handler = Commerce7WebhookHandler(tenants(), writer, "intake.orders.v1", "order-intake", limits)
    server = TestServer(build_web_app(handler, [tracing_middleware]), host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
            yield Endpoint(f"http://127.0.0.1:{server.port}/webhooks/commerce7/{TENANT}", http, pool, dsn)
    finally:
        await server.close()
        await writer.stop()
        await pool.close()
