"""The metrics sampler's platform queries on real Postgres: outbox backlog and age, dead letters kept."""

import logging

import pytest

from libs.platform import metrics
from libs.platform.events import new_event
from libs.platform.outbox import write_events
from tests.integration.test_outbox_and_consumer import accepted, prepared_pool

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


async def test_platform_gauges_follow_the_schema_and_a_failing_query_keeps_the_last_values(database, caplog):
    pool = await prepared_pool(database)
    try:
        async with pool.acquire() as conn:
            await write_events(
                conn,
                [
                    new_event("t", accepted(f"o-{i}"), aggregate_id=f"o-{i}", tenant_id="acme", producer="test")
                    for i in range(3)
                ],
            )
            await conn.execute("UPDATE outbox SET created_at = now() - interval '90 seconds'")
            await conn.execute(
                "INSERT INTO dead_letters (consumer_group, topic, partition, \"offset\", error) VALUES ('g', 't', 0, 1, 'bad')"
            )
        broken = metrics.SampledGauge(metrics.OUTBOX_BACKLOG, "SELECT count(*) FROM no_such_table")
        sampler = metrics.MetricsSampler(lambda: pool, metrics.platform_samples(), interval_s=60)
        await sampler.sample_once()
        assert metrics.OUTBOX_BACKLOG._value.get() == 3
        assert metrics.OUTBOX_OLDEST_AGE._value.get() >= 90
        assert metrics.DEAD_LETTERS.value("consumer") == 1
        assert metrics.DEAD_LETTERS.value("outbox") == 0

        with caplog.at_level(logging.WARNING):
            await metrics.MetricsSampler(lambda: pool, [broken], interval_s=60).sample_once()
        assert metrics.OUTBOX_BACKLOG._value.get() == 3, "a failing query keeps the gauge's last value"
        assert any("metrics sample" in r.getMessage() for r in caplog.records)
    finally:
        await pool.close()
