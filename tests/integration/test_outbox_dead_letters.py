"""An event Kafka refuses for good goes to dead_letters and the relay publishes the others, in order."""

import asyncio
import json
import re
from dataclasses import dataclass

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from deploy.local.create_topics import TopicSpec, create_topics
from libs.platform.events import new_event
from libs.platform.kafka import create_producer
from libs.platform.outbox import OutboxRelay, write_events
from libs.platform.topic_limits import TopicLimits
from tests.integration.test_outbox_and_consumer import SCHEMA, accepted, prepared_pool, read_all

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(120)]


def small_event(topic: str, order_id: str):
    return new_event(topic, accepted(order_id), aggregate_id="same-key", tenant_id="acme", producer="test")


def around(topic: str, size: int) -> list:
    """Three small events, one of `size` bytes of notes (the fourth), three small ones: one key."""
    before = [small_event(topic, f"before-{i}") for i in range(3)]
    after = [small_event(topic, f"after-{i}") for i in range(3)]
    return [*before, oversized_event(topic, size), *after]


def oversized_event(topic: str, size: int):
    """An OrderAccepted whose order carries `size` bytes of notes, under the same key as the others."""
    payload = accepted("huge")
    payload.order.external_id = "x" * size
    return new_event(topic, payload, aggregate_id="same-key", tenant_id="acme", producer="test")


async def relay_until_done(pool, producer, bootstrap: str, rows: int, batch_size: int = 50) -> OutboxRelay:
    """Run a relay until it has published or dead-lettered all `rows` (or 30 s passed).

    Its counters, not the outbox, say when: they move once the batch's transaction is over, a
    moment after the rows left the outbox, and a relay stopped in that moment counts nothing."""
    async with OutboxRelay(pool, producer, SCHEMA, bootstrap=bootstrap, batch_size=batch_size) as relay:
        for _ in range(300):
            if relay.published + relay.dead_lettered >= rows:
                break
            await asyncio.sleep(0.1)
    return relay


@dataclass
class Relayed:
    """What one relay run left behind: the relay, the records on the topic, dead letters, outbox rows."""

    relay: OutboxRelay
    published_values: list[bytes]  # in offset order
    dead: list
    left: int


async def relay_events(infra, database, topic_of, events_of, *, lookup=None, batch_size=50, expected: int):
    """Write the events to a fresh outbox in one transaction, relay until it is empty, and read back.

    `topic_of(bootstrap, prefix)` names (or creates) the topic; `events_of(topic)` builds the events.
    """
    pool = await prepared_pool(database)
    producer = create_producer(infra.kafka_bootstrap, "test")
    await producer.start()
    try:
        topic = await topic_of(infra.kafka_bootstrap)
        events = events_of(topic)
        async with pool.acquire() as conn, conn.transaction():
            await write_events(conn, events)
        relay = await relay_until_done(pool, producer, lookup or infra.kafka_bootstrap, len(events), batch_size)
        records = await read_all(infra.kafka_bootstrap, topic, expected=expected)
        dead = await pool.fetch("SELECT * FROM dead_letters")
        left = await pool.fetchval("SELECT count(*) FROM outbox")
    finally:
        await producer.stop()
        await pool.close()
    published = [r.value for r in sorted(records, key=lambda r: r.offset)]
    return topic, events, Relayed(relay, published, dead, left)


# Where the relay asks for the topics' limits when not the broker: nowhere that answers, so the
# relay relies on the producer's own size check.
UNREACHABLE = "127.0.0.1:1"


@pytest.mark.parametrize(
    ("limits_from", "reason"),
    [
        ("broker", r"event of \d+ bytes exceeds topic \S+'s max.message.bytes \d+"),
        ("unreachable", r"MessageSizeTooLargeError\(.*\)"),
    ],
)
async def test_event_over_the_message_size_limit_is_dead_lettered_and_the_others_are_published(
    infra, database, topics, limits_from, reason
):
    async def intake_topic(_bootstrap):
        return f"{topics}intake.orders.v1"

    lookup = infra.kafka_bootstrap if limits_from == "broker" else UNREACHABLE
    topic, events, out = await relay_events(
        infra, database, intake_topic, lambda topic: around(topic, 2 * 1024 * 1024), lookup=lookup, expected=6
    )
    huge = events[3]
    assert out.left == 0
    assert out.published_values == [e.value for e in events if e is not huge]
    assert out.relay.published == 6 and out.relay.dead_lettered == 1
    assert len(out.dead) == 1
    row = out.dead[0]
    assert row["source"] == "outbox" and row["outbox_id"] is not None
    assert (row["topic"], row["key"], row["value"]) == (topic, huge.key, huge.value)
    assert [tuple(h) for h in json.loads(row["headers"])] == [(k, v.decode("latin-1")) for k, v in huge.headers]
    assert re.fullmatch(reason, row["error"])


TOPIC_LIMIT = 100_000


async def limited_topic(bootstrap: str, prefix: str) -> str:
    """A topic that accepts record batches of at most TOPIC_LIMIT bytes, below the producer's 1 MiB."""
    spec = TopicSpec("limited.v1", 8, {"max.message.bytes": str(TOPIC_LIMIT)})
    await create_topics(bootstrap, [spec], prefix)
    return prefix + spec.name


async def test_event_over_the_topics_limit_is_dead_lettered_with_the_reason_and_the_others_are_published(
    infra, database, topics
):
    # Under the producer's limit, so only the broker would refuse it, refusing the request batch and
    # leaving the idempotent producer unable to publish to that partition again.
    topic, events, out = await relay_events(
        infra,
        database,
        lambda bootstrap: limited_topic(bootstrap, topics),
        lambda topic: around(topic, 200 * 1024),
        expected=6,
    )
    huge = events[3]
    dead = out.dead
    assert out.left == 0
    assert out.published_values == [e.value for e in events if e is not huge]
    assert out.relay.published == 6 and out.relay.dead_lettered == 1
    assert len(dead) == 1
    assert (dead[0]["source"], dead[0]["topic"], dead[0]["value"]) == ("outbox", topic, huge.value)
    assert re.fullmatch(
        rf"event of \d+ bytes exceeds topic {re.escape(topic)}'s max.message.bytes 100000", dead[0]["error"]
    )
    assert int(dead[0]["error"].split()[2]) > 200 * 1024


async def test_small_events_adding_up_to_more_than_the_topics_limit_are_all_published_in_order(infra, database, topics):
    # The producer gathers one partition's events into batches of up to 512 KiB; the broker refuses
    # a batch over the topic's limit even when every event in it is small.
    _, events, out = await relay_events(
        infra,
        database,
        lambda bootstrap: limited_topic(bootstrap, topics),
        lambda topic: [oversized_event(topic, 2000) for _ in range(300)],
        batch_size=1000,
        expected=300,
    )
    assert out.left == 0
    assert out.published_values == [e.value for e in events]
    assert out.relay.published == len(events) and out.relay.dead_lettered == 0


async def set_topic_limit(bootstrap: str, topic: str, limit: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)})])
    finally:
        await admin.close()


async def test_topic_limits_are_read_again_when_stale_or_expired(infra, topics):
    topic = await limited_topic(infra.kafka_bootstrap, topics)
    now = [0.0]
    limits = TopicLimits(infra.kafka_bootstrap, refresh_s=60.0, clock=lambda: now[0])
    await limits.refresh([topic, f"{topics}missing.v1"])
    assert (limits.limit(topic), limits.limit(f"{topics}missing.v1")) == (TOPIC_LIMIT, None)

    await set_topic_limit(infra.kafka_bootstrap, topic, 50_000)
    now[0] = 59.0
    await limits.refresh([topic])
    assert limits.limit(topic) == TOPIC_LIMIT  # still fresh: not asked again
    limits.expire()
    await limits.refresh([topic])
    assert limits.limit(topic) == 50_000

    await set_topic_limit(infra.kafka_bootstrap, topic, 70_000)
    now[0] = 59.0 + 60.0
    await limits.refresh([topic])
    assert limits.limit(topic) == 70_000
