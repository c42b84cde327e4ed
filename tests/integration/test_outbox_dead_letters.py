"""An event Kafka refuses for good goes to dead_letters and the relay publishes the others, in order."""

import asyncio
import json

import pytest

from libs.platform.events import new_event
from libs.platform.kafka import create_producer
from libs.platform.outbox import OutboxRelay, write_events
from tests.integration.test_outbox_and_consumer import SCHEMA, accepted, prepared_pool, read_all

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(120)]


def small_event(topic: str, order_id: str):
    return new_event(topic, accepted(order_id), aggregate_id="same-key", tenant_id="acme", producer="test")


def oversized_event(topic: str, size: int):
    """An OrderAccepted whose order carries `size` bytes of notes, under the same key as the others."""
    payload = accepted("huge")
    payload.order.external_id = "x" * size
    return new_event(topic, payload, aggregate_id="same-key", tenant_id="acme", producer="test")


async def relay_until_outbox_is_empty(pool, producer) -> OutboxRelay:
    async with OutboxRelay(pool, producer, SCHEMA, batch_size=50) as relay:
        for _ in range(300):
            if await pool.fetchval("SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.1)
    return relay


async def test_event_over_the_message_size_limit_is_dead_lettered_and_the_others_are_published(infra, database, topics):
    pool = await prepared_pool(database)
    producer = create_producer(infra.kafka_bootstrap, "test")
    await producer.start()
    topic = f"{topics}intake.orders.v1"
    before = [small_event(topic, f"before-{i}") for i in range(3)]
    huge = oversized_event(topic, 2 * 1024 * 1024)
    after = [small_event(topic, f"after-{i}") for i in range(3)]
    try:
        async with pool.acquire() as conn, conn.transaction():
            await write_events(conn, [*before, huge, *after])
        relay = await relay_until_outbox_is_empty(pool, producer)
        records = await read_all(infra.kafka_bootstrap, topic, expected=6)
        dead = await pool.fetch("SELECT * FROM dead_letters")
        left = await pool.fetchval("SELECT count(*) FROM outbox")
    finally:
        await producer.stop()
        await pool.close()
    assert left == 0
    assert [r.value for r in sorted(records, key=lambda r: r.offset)] == [e.value for e in [*before, *after]]
    assert relay.published == 6 and relay.dead_lettered == 1
    assert len(dead) == 1
    row = dead[0]
    assert row["source"] == "outbox" and row["outbox_id"] is not None
    assert (row["topic"], row["key"], row["value"]) == (topic, huge.key, huge.value)
    assert [tuple(h) for h in json.loads(row["headers"])] == [(k, v.decode("latin-1")) for k, v in huge.headers]
    assert "MessageSizeTooLargeError" in row["error"]
