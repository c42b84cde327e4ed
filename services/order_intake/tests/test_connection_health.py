"""Intake's connection health on real Postgres: per channel account its last committed poll, its
latest revision taken in (however long ago), the window's receipts that were news and how many
were refused, the latest error without a refused body's words; another tenant's never count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from libs.platform.db import create_pool, migrate
from order_intake.app import MIGRATIONS
from order_intake.connection_health import IntakeHealth

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
NOW = datetime.now(UTC)
DAY = NOW - timedelta(hours=24)


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 2)
    yield pool
    await pool.close()


async def receipt(pool, account: str, outcome: str, ago: timedelta, *, tenant="acme", channel="commerce7", detail=""):
    return await pool.fetchval(
        "INSERT INTO webhook_receipts (tenant_id, channel, account, body, outcome, detail, received_at)"
        " VALUES ($1, $2, $3, '', $4, $5, $6) RETURNING id",
        tenant,
        channel,
        account,
        outcome,
        detail,
        NOW - ago,
    )


async def test_each_channel_account_with_its_polls_revisions_and_refusals(pool):
    hour = timedelta(hours=1)
    await receipt(pool, "store", "accepted", 5 * hour)
    await receipt(pool, "store", "not_imported", 3 * hour)
    await receipt(pool, "store", "duplicate", 2 * hour)  # no news: not an attempt
    await receipt(pool, "store", "invalid", 4 * hour, detail="no ship-to address")
    malformed = await receipt(pool, "store", "malformed", hour, detail="unexpected token near 'Jane Doe'")
    await receipt(pool, "quiet", "accepted", timedelta(days=40), channel="groupon")  # silent since
    await receipt(pool, "cellar", "accepted", 2 * hour, channel="vinsuite")
    await receipt(pool, "store", "accepted", timedelta(minutes=1), tenant="globex")
    await receipt(pool, "theirs", "malformed", hour, tenant="globex")
    await pool.execute(
        "INSERT INTO pull_cursors (tenant_id, account, connector, last_polled_at, last_error) VALUES"
        " ('acme', 'cellar', 'vinsuite', $1, 'VinSuite answered 503'), ('acme', 'new', 'cellarpass', NULL, ''),"
        " ('globex', 'gx', 'vinsuite', $1, 'theirs')",
        NOW - timedelta(minutes=2),
    )

    health = await IntakeHealth().connection_health(pool, "acme", DAY)

    by_account = {h.account: h for h in health}
    assert set(by_account) == {"store", "quiet", "cellar", "new"}
    store, quiet, cellar, new = (by_account[name] for name in ("store", "quiet", "cellar", "new"))
    assert (store.connector, store.last_poll, store.last_received) == ("commerce7", None, NOW - 3 * hour)
    assert (store.attempts, store.failures) == (4, 2)
    assert store.last_error == f"webhook refused as malformed (receipt {malformed})"  # not the body's words
    assert (quiet.connector, quiet.last_received, quiet.attempts) == ("groupon", NOW - timedelta(days=40), 0)
    assert (cellar.connector, cellar.last_poll, cellar.last_received) == (
        "vinsuite",
        NOW - timedelta(minutes=2),
        NOW - 2 * hour,
    )
    assert cellar.last_error == "VinSuite answered 503"
    assert (new.connector, new.last_poll, new.last_received, new.attempts) == ("cellarpass", None, None, 0)


async def test_an_invalid_order_is_the_last_error_with_its_reason_and_the_window_bounds_the_counts(pool):
    await receipt(pool, "store", "malformed", timedelta(hours=3))
    await receipt(pool, "store", "invalid", timedelta(hours=2), detail="no ship-to address")
    await receipt(pool, "store", "accepted", timedelta(minutes=30))

    [store] = await IntakeHealth().connection_health(pool, "acme", DAY)
    assert (store.attempts, store.failures) == (3, 2)
    assert store.last_error.startswith("order invalid (receipt ") and store.last_error.endswith(": no ship-to address")
    [recent] = await IntakeHealth().connection_health(pool, "acme", NOW - timedelta(hours=1))
    assert (recent.attempts, recent.failures, recent.last_error) == (1, 0, "")
    assert await IntakeHealth().connection_health(pool, "globex", DAY) == []
