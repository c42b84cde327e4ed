"""Periodic product sync on real Postgres with a fake warehouse: off by default; when on, every
warehouse account synced once per interval however many replicas run, a failing catalog backed
off with its error kept, and products the provider refused said without a faster retry."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from fulfillment_dispatch.config import DispatchSettings
from fulfillment_dispatch.domain.product_map import Component, ProductMapping
from fulfillment_dispatch.product_sync import ProductSync, ProductSyncScheduler
from fulfillment_dispatch.storage.product_map import put_mapping
from services.fulfillment_dispatch.tests.fake_warehouse import REFUSED_SKU, world
from services.fulfillment_dispatch.tests.test_config import env  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
HOUR = 3600.0


@pytest_asyncio.fixture
async def shop():
    built = world()
    yield built
    await built.accounts.stop()


def scheduler(pool, shop, owner: str) -> ProductSyncScheduler:
    return ProductSyncScheduler(
        pool, shop.tenants, ProductSync(pool, shop.accounts), shop.registry, interval_s=HOUR, owner=owner
    )


async def schedules(pool) -> dict[str, tuple]:
    rows = await pool.fetch(
        "SELECT tenant_id, provider_account, failures, last_error, last_synced_at IS NOT NULL AS synced,"
        " next_sync_at > now() + interval '50 minutes' AS next_in_an_hour FROM product_sync_schedules"
    )
    return {
        f"{r['tenant_id']}/{r['provider_account']}": (r["failures"], r["last_error"], r["synced"], r["next_in_an_hour"])
        for r in rows
    }


async def test_periodic_sync_is_off_unless_its_interval_is_set(env):  # noqa: F811
    assert DispatchSettings.from_env().product_sync_s == 0.0
    env.setenv("ORDERSYNC_DISPATCH_PRODUCT_SYNC_S", "3600")
    assert DispatchSettings.from_env().product_sync_s == 3600.0


@pytest.mark.integration
async def test_two_replicas_sync_each_warehouse_account_once_and_back_off_a_failing_one(pool, shop):
    await put_mapping(pool, "acme", ProductMapping("GRP-SET", (Component("MUG", 1, "Mug"),)), "test")
    await put_mapping(pool, "globex", ProductMapping("GRP-TOWEL", (Component("TOWEL", 2, "Towel"),)), "test")

    passes = await asyncio.gather(scheduler(pool, shop, "r1").run_once(), scheduler(pool, shop, "r2").run_once())

    # acme/warehouse, acme/down and globex/warehouse; the 'plain' accounts map no products.
    assert sum(passes) == 3
    assert sorted(p.sku for p in shop.warehouse.creates) == ["MUG", "TOWEL"]
    assert shop.warehouse.catalog == {"MUG": "Mug", "TOWEL": "Towel"}
    found = await schedules(pool)
    assert found["acme/warehouse"] == (0, "", True, True)
    assert found["globex/warehouse"] == (0, "", True, True)
    failures, error, synced, next_in_an_hour = found["acme/down"]
    assert (failures, synced, next_in_an_hour) == (1, False, False)
    assert error == "PROVIDER_UNAVAILABLE: the warehouse answered 503"

    assert await scheduler(pool, shop, "r1").run_once() == 0  # nothing is due again before the interval
    assert len(shop.warehouse.creates) == 2


@pytest.mark.integration
async def test_a_product_the_provider_refuses_is_kept_as_the_accounts_last_error(pool, shop):
    await put_mapping(pool, "acme", ProductMapping("GRP-ODD", (Component(REFUSED_SKU),)), "test")
    await pool.execute(
        "INSERT INTO product_sync_schedules (tenant_id, provider_account, provider, next_sync_at)"
        " VALUES ('acme', 'down', 'warehouse', now() + interval '1 day'),"
        " ('globex', 'warehouse', 'warehouse', now() + interval '1 day')"
    )

    assert await scheduler(pool, shop, "r1").run_once() == 1

    failures, error, synced, next_in_an_hour = (await schedules(pool))["acme/warehouse"]
    assert (failures, synced, next_in_an_hour) == (0, True, True)
    assert error == f"{REFUSED_SKU}: INVALID_REQUEST: the warehouse refused the product: SKU may not hold spaces"
