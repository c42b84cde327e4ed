"""The intake webhook endpoint as tests run it: the real app over real HTTP, on a database of its own."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiohttp.test_utils import TestServer

from libs.connectors.base.testing import load_vendor_json
from libs.connectors.registry import Registry, load
from libs.platform.db import create_pool, migrate
from libs.platform.http_server import tracing_middleware
from libs.platform.tenants import TenantDirectory
from order_intake.api.webhooks import WebhookHandler, build_web_app
from order_intake.app import MIGRATIONS
from order_intake.domain.intake import InputLimits
from order_intake.revisions import ORDERS_TOPIC, RevisionBuilder
from order_intake.storage.orders import RevisionWriter

TENANT = "acme"
SLUG = "demo-winery"  # the tenantId of the vendor sample
USER, PASSWORD = "hook-user", "hook-pass"


# The tenants file as operators write it (see deploy/demo/tenants.toml); secrets are file: references.
TENANTS_TOML = """
[tenants.{tenant}.accounts.store]
connector = "commerce7"
tenant_slug = "{slug}"
app_id = "app"
app_secret = "file:{secrets}/app-secret"
webhook_user = "{user}"
webhook_password = "file:{secrets}/webhook-password"

[tenants.{tenant}.accounts.wine-shipping]
connector = "vinoshipper"
api_key = "key"
api_secret = "file:{secrets}/app-secret"
order_number_prefix = "ACME"
webhook_token = "file:{secrets}/app-secret"

[[tenants.{tenant}.routes]]
name = "web"
channel = "store"
provider = "wine-shipping"
ship_to_states = ["CA"]
"""


def tenants(registry: Registry, folder: Path, extra_toml: str = "") -> TenantDirectory:
    """Tenant `acme` with its Commerce7 store (and `extra_toml` appended), loaded from a file
    written, with its secrets, into `folder`."""
    (folder / "app-secret").write_text("app-secret")
    (folder / "webhook-password").write_text(PASSWORD)
    text = TENANTS_TOML.format(tenant=TENANT, slug=SLUG, user=USER, secrets=folder) + extra_toml
    (folder / "tenants.toml").write_text(text.replace("{secrets}", str(folder)))
    return TenantDirectory.load(folder / "tenants.toml", registry)


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
    handler: WebhookHandler  # its `ingest` is what resubmissions take (WebhookReceiptService)
    registry: Registry

    async def post(self, body: bytes, *, content_type: str | None = "application/json", auth=(USER, PASSWORD), **kw):
        headers = {"Content-Type": content_type} if content_type is not None else {}
        return await self.http.post(self.url, content=body, headers=headers, auth=auth, **kw)

    async def receipt(self, receipt_id: int) -> asyncpg.Record:
        row = await self.pool.fetchrow(
            "SELECT outcome, detail, body, order_id FROM webhook_receipts WHERE id = $1", receipt_id
        )
        assert row is not None, f"no receipt {receipt_id}"
        return row

    async def count(self, table: str) -> int:
        return await self.pool.fetchval(f"SELECT count(*) FROM {table}")


@contextlib.asynccontextmanager
async def serve(
    dsn: str, limits: InputLimits, *, registry: Registry | None = None, extra_toml: str = ""
) -> AsyncIterator[Endpoint]:
    """Serve the webhook routes with the built-in connectors (or `registry`) and tenant `acme`."""
    registry = registry or load()
    await migrate(dsn, "order_intake", MIGRATIONS)
    pool = await create_pool(dsn, "order_intake", 4)
    writer = RevisionWriter(pool, max_batch=50)
    await writer.start()
    builder = RevisionBuilder(ORDERS_TOPIC, "order-intake", limits)
    folder = tempfile.TemporaryDirectory(prefix="intake-tenants-")
    handler = WebhookHandler(tenants(registry, Path(folder.name), extra_toml), registry, writer, builder)
    server = TestServer(build_web_app(handler, [tracing_middleware]), host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
            url = f"http://127.0.0.1:{server.port}/webhooks/commerce7/{TENANT}"
            yield Endpoint(url, http, pool, dsn, handler, registry)
    finally:
        await server.close()
        await writer.stop()
        await pool.close()
        folder.cleanup()
