"""Housekeeping on real Postgres: expired processed-event records go, recent ones stay."""

from pathlib import Path

import asyncpg
import pytest

from libs.platform.db import migrate
from libs.platform.housekeeping import Housekeeper

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


async def test_only_records_past_the_retention_window_are_pruned(database):
    await migrate(database, "housekeeping_test", Path(__file__).parent / "no-migrations")
    pool = await asyncpg.create_pool(database, server_settings={"search_path": "housekeeping_test"})
    try:
        await pool.execute(
            "INSERT INTO processed_events (consumer_group, event_id, processed_at)"
            " SELECT 'g', 'old-' || i, now() - interval '9 days' FROM generate_series(1, 25) i"
        )
        await pool.execute("INSERT INTO processed_events (consumer_group, event_id) VALUES ('g', 'recent')")
        removed = await Housekeeper(None, retention_days=8, batch=10).prune(pool)
        left = await pool.fetch("SELECT event_id FROM processed_events")
    finally:
        await pool.close()
    assert removed == 25
    assert [r["event_id"] for r in left] == ["recent"]
