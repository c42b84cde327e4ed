"""The provider webhook endpoint for a provider authenticating its notices by header, over real
HTTP and real Postgres: found through the registry, answered on /webhooks/{provider}/{tenant_id}
(no token in the path), and refused with the same 404 for any provider or account that is not
the tenant's or does not push notices."""

from __future__ import annotations

import json

import httpx
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.api.webhooks import ProviderWebhookHandler, build_web_app
from fulfillment_dispatch.app import MIGRATIONS
from fulfillment_dispatch.storage.dispatches import AttemptResult, claim_due, record_results
from libs.platform.db import create_pool, migrate
from libs.platform.events import parse_envelope
from services.fulfillment_dispatch.tests.fake_provider import NOTICE_TOKEN, TENANT, queue, recorder, world

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
NOT_FOUND = {"error": "NOT_FOUND", "message": "no such webhook endpoint"}


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "fulfillment_dispatch", MIGRATIONS)
    pool = await create_pool(database, "fulfillment_dispatch", 4)
    await queue(pool, "1001", account="notices", provider="noticeship")
    [row] = await claim_due(pool, 10, lease_s=30)
    async with pool.acquire() as conn:
        await record_results(
            conn, [AttemptResult(row["order_id"], TENANT, "sent", "", "", None, "sent", 1)], first_check_after=None
        )
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def http(pool):
    hub = world()
    handler = ProviderWebhookHandler(pool, hub.accounts, recorder(pool, hub.registry))
    server = TestServer(build_web_app(handler, []), host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client:
            yield client
    finally:
        await server.close()
        await hub.accounts.stop()


def notice(**news) -> bytes:
    return json.dumps(news).encode()


async def post(http, path: str, body: bytes, token: str | None = NOTICE_TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | ({"X-Notice-Token": token} if token else {})
    return await http.post(path, content=body, headers=headers)


async def test_a_notice_authenticated_by_header_is_resolved_applied_and_kept(http, pool):
    response = await post(http, f"/webhooks/noticeship/{TENANT}", notice(order="N-1001", tracking="1Z77"))

    assert response.status_code == 200
    assert response.json()["status"] == "applied"
    kept = await pool.fetchrow("SELECT provider, outcome, detail FROM provider_webhooks")
    assert tuple(kept) == ("noticeship", "applied", "SHIPPED")
    assert await pool.fetchval("SELECT shipment_status FROM dispatches") == "shipped"
    [value] = [r["value"] for r in await pool.fetch("SELECT value FROM outbox")]
    updated = events_pb2.ShipmentUpdated()
    assert parse_envelope(value).payload.Unpack(updated)
    assert (updated.provider_account, updated.channel_ref.account) == ("notices", "store")


async def test_a_notice_the_connector_does_not_keep_is_202_ignored_and_not_stored(http, pool):
    response = await post(http, f"/webhooks/noticeship/{TENANT}", notice(order="N-1001"))

    assert (response.status_code, response.json()) == (202, {"status": "ignored"})
    assert await pool.fetchval("SELECT count(*) FROM provider_webhooks") == 0


@pytest.mark.parametrize(
    ("path", "token"),
    [
        (f"/webhooks/noticeship/{TENANT}", "wrong-token"),
        (f"/webhooks/noticeship/{TENANT}", None),
        ("/webhooks/noticeship/nobody", NOTICE_TOKEN),
        (f"/webhooks/batchship/{TENANT}", NOTICE_TOKEN),
        (f"/webhooks/nosuchvendor/{TENANT}", NOTICE_TOKEN),
    ],
    ids=["wrong header", "no header", "unknown tenant", "provider that pushes no notices", "unknown provider"],
)
async def test_anything_but_the_tenants_account_of_a_notifying_provider_is_the_same_404(http, pool, path, token):
    response = await post(http, path, notice(order="N-1001", tracking="1Z77"), token)

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert await pool.fetchval("SELECT count(*) FROM provider_webhooks") == 0
