"""Two writeback replicas calling one Commerce7 tenant keep to its limit together, not each."""

import asyncio
import contextlib
from pathlib import Path
from typing import cast

import asyncpg
import httpx
import pytest
import pytest_asyncio

from libs.connectors.base.errors import NotFound
from libs.connectors.commerce7.client import Commerce7Client
from libs.connectors.registry import default_registry
from libs.platform.accounts import AccountClients
from libs.platform.db import create_pool, migrate
from libs.platform.tenants import TenantDirectory
from tests.simulators import commerce7
from tests.simulators.common import SimulatorServer
from tracking_writeback.app import MIGRATIONS
from tracking_writeback.channels import channel_accounts

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

LIMIT_PER_MINUTE = 10  # Commerce7's limit for this tenant, in the simulator and in our settings
CALLS_PER_REPLICA = 8


@pytest_asyncio.fixture
async def channel():
    tenant = commerce7.Commerce7Tenant(tenant_id="napa", app_id="app", app_secret="app-secret")
    config = commerce7.Commerce7Config(tenants=[tenant], rate_limit_per_minute=LIMIT_PER_MINUTE)
    async with SimulatorServer(commerce7.create_app(config)) as server:
        yield server


@pytest_asyncio.fixture
async def tenants(channel, tmp_path: Path, monkeypatch) -> TenantDirectory:
    monkeypatch.setenv("C7_SECRET", "app-secret")
    path = tmp_path / "tenants.toml"
    path.write_text(
        f"""
[tenants.napa.accounts.store]
connector = "commerce7"
tenant_slug = "napa"
app_id = "app"
app_secret = "env:C7_SECRET"
webhook_user = "hook"
webhook_password = "env:C7_SECRET"
base_url = "{channel.base_url}/v1"
rate_limit_per_minute = {LIMIT_PER_MINUTE}
"""
    )
    return TenantDirectory.load(path, default_registry())


@pytest_asyncio.fixture
async def replicas(database, tenants):
    """Two writebacks' channel accounts, each with its own pool, on one writeback schema: two replicas."""
    await migrate(database, "tracking_writeback", MIGRATIONS)
    pools = [await create_pool(database, "tracking_writeback", 2) for _ in range(2)]
    clients = [channel_accounts(tenants, default_registry(), _source(pool)) for pool in pools]
    yield clients
    for clients_of_replica, pool in zip(clients, pools, strict=True):
        await clients_of_replica.stop()
        await pool.close()


def _source(pool: asyncpg.Pool):
    return lambda: pool


async def read_orders(replica: AccountClients, answered: list[str]) -> None:
    client = cast(Commerce7Client, (await replica.channel("napa", "store")).client)
    for number in range(CALLS_PER_REPLICA):
        with contextlib.suppress(NotFound):
            await client.get_order(f"missing-{number}")
        answered.append(f"missing-{number}")


async def test_two_replicas_share_the_tenants_budget_and_draw_no_429(channel, replicas):
    answered: list[list[str]] = [[], []]
    calls = [asyncio.create_task(read_orders(r, a)) for r, a in zip(replicas, answered, strict=True)]
    # The budget's burst lets ten calls through at once; the next would wait six seconds.
    await asyncio.sleep(3)
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)

    stats = await channel_stats(channel)
    assert stats["rate_limited"] == 0, "together the replicas stayed within the tenant's limit"
    assert all(answered), f"both replicas made progress: {[len(a) for a in answered]}"


async def channel_stats(channel: SimulatorServer) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{channel.base_url}/_sim/stats")).json()
