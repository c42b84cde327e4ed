"""The dispatch webhook endpoint as tests run it: the real app over real HTTP, reading back from the
Vinoshipper simulator, on a database of its own."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from aiohttp.test_utils import TestServer

from fulfillment_dispatch.api.webhooks import ProviderWebhookHandler, build_web_app
from fulfillment_dispatch.app import MIGRATIONS
from fulfillment_dispatch.shipments import ShipmentRecorder
from libs.connectors.base.contract import ClientResources
from libs.connectors.registry import load
from libs.connectors.vinoshipper.client import VinoshipperClient
from libs.connectors.vinoshipper.connector import VinoshipperAccount
from libs.connectors.vinoshipper.orders import build_create_order_request
from libs.connectors.vinoshipper.settings import VinoshipperSettings
from libs.connectors.vinoshipper.tests.builders import valid_order
from libs.platform.accounts import AccountClients
from libs.platform.db import create_pool, migrate
from libs.platform.http_server import tracing_middleware
from libs.platform.tenants import Account, Tenant, TenantDirectory
from tests.databases import fresh_database
from tests.simulators import vinoshipper
from tests.simulators.common import SimulatorServer

TENANT, TOKEN = "acme", "s3cret-path-token"
KEY, SECRET = "vs-key", "vs-secret"
SENT = "ACME-1001"  # sent by dispatch, so dispatch knows it
STRANGER = "ACME-2002"  # at Vinoshipper, but not one dispatch sent


def webhook(sim: str, number: str, event: str = "TRACKING_NUMBER_ADDED", **changes: Any) -> dict[str, Any]:
    """The thin webhook Vinoshipper at `sim` sends about `number` (as the simulator builds it)."""
    body = {
        "identifier": number,
        "subject": "ORDER",
        "event": event,
        "href": f"{sim}/api/v2/p/orders/{number}",
        "hrefV3": f"{sim}/api/v3/p/orders/{number}",
    }
    return body | changes


@dataclass
class Endpoint:
    url: str
    sim: str
    http: httpx.AsyncClient
    pool: asyncpg.Pool

    async def post(self, body: bytes, *, content_type: str = "application/json", url: str | None = None):
        return await self.http.post(url or self.url, content=body, headers={"Content-Type": content_type})

    def hook(self, number: str, event: str = "TRACKING_NUMBER_ADDED", **changes: Any) -> bytes:
        return json.dumps(webhook(self.sim, number, event, **changes)).encode()

    async def sim_step(self, number: str, step: str, **body: Any) -> None:
        response = await self.http.post(f"{self.sim}/_sim/orders/{number}/{step}", json={"webhook": False, **body})
        response.raise_for_status()

    async def kept(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT id, outcome, detail, body FROM provider_webhooks ORDER BY id")


def tenants(sim_url: str) -> TenantDirectory:
    """Tenant acme with a Vinoshipper account on the simulator; a tenant with no provider account."""
    api = VinoshipperSettings(
        api_key=KEY, api_secret=SECRET, base_url=sim_url, order_number_prefix="ACME", timeout_s=5.0
    )
    account = Account("wine-shipping", "vinoshipper", VinoshipperAccount(api, webhook_token=TOKEN))
    return TenantDirectory(
        {
            TENANT: Tenant(TENANT, {account.name: account}),
            "channel-only": Tenant("channel-only", {}),
        }
    )


async def place_at_vinoshipper(sim_url: str, *numbers: str) -> None:
    settings = VinoshipperSettings(api_key=KEY, api_secret=SECRET, base_url=sim_url, order_number_prefix="ACME")
    async with VinoshipperClient(settings) as client:
        for number in numbers:
            await client.create_order(build_create_order_request(valid_order(), order_number=number, rate_code="03"))


@contextlib.asynccontextmanager
async def serve(admin_dsn: str) -> AsyncIterator[Endpoint]:
    producer = vinoshipper.VinoshipperProducer(
        producer_id=TENANT,
        api_key=KEY,
        api_secret=SECRET,
        products=["CAB-2019-750", "CHARD-2021-750"],
        licensed_states=["CA"],
    )
    config = vinoshipper.VinoshipperConfig(producers=[producer])
    async with fresh_database(admin_dsn) as dsn, SimulatorServer(vinoshipper.create_app(config)) as sim:
        await migrate(dsn, "fulfillment_dispatch", MIGRATIONS)
        pool = await create_pool(dsn, "fulfillment_dispatch", 4)
        registry = load()
        providers = AccountClients(tenants(sim.base_url), registry, ClientResources(max_concurrency=4))
        recorder = ShipmentRecorder(
            pool, registry, topic="dispatch.shipments.v1", producer="t", check_after=timedelta(hours=1)
        )
        handler = ProviderWebhookHandler(pool, providers, recorder)
        server = TestServer(build_web_app(handler, [tracing_middleware]), host="127.0.0.1")
        await server.start_server()
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
                url = f"http://127.0.0.1:{server.port}/webhooks/vinoshipper/{TENANT}/{TOKEN}"
                yield Endpoint(url, sim.base_url, http, pool)
        finally:
            await server.close()
            await providers.stop()
            await pool.close()
