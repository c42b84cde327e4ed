"""Fixtures most of dispatch's tests share: its migrated schema's pool, and the fake-provider hub."""

import pytest_asyncio

from fulfillment_dispatch.app import MIGRATIONS
from libs.platform.db import create_pool, migrate
from services.fulfillment_dispatch.tests.fake_provider import world


@pytest_asyncio.fixture
async def pool(database):
    """A pool on a freshly migrated dispatch schema (tests needing seeded rows define their own)."""
    await migrate(database, "fulfillment_dispatch", MIGRATIONS)
    pool = await create_pool(database, "fulfillment_dispatch", 4)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def hub():
    """The fake providers' registry, tenants and account clients (fake_provider.world)."""
    built = world()
    yield built
    await built.accounts.stop()
