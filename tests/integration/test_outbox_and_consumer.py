"""The platform's delivery guarantees on real Postgres and Kafka: outbox, relay, idempotent consumption."""

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import events_pb2

from libs.platform.db import migrate
from libs.platform.events import new_event, parse_envelope, unpack
from libs.platform.kafka import BatchConsumer, claim_fresh, create_producer
from libs.platform.outbox import OutboxRelay, write_events

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(120)]

SCHEMA = "platform_test"
NO_SERVICE_MIGRATIONS = Path(__file__).parent / "no-migrations"


def accepted(order_id: str):
    order = order_pb2.Order(order_id=order_id, tenant_id="acme", channel="commerce7", external_id=order_id)
    return events_pb2.OrderAccepted(order=order, first_revision=True)


async def prepared_pool(dsn: str) -> asyncpg.Pool:
    await migrate(dsn, SCHEMA, NO_SERVICE_MIGRATIONS)
    return await asyncpg.create_pool(dsn, server_settings={"search_path": SCHEMA})


async def read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return records


async def test_events_written_in_a_rolled_back_transaction_are_never_published(infra, database, topics):
    pool = await prepared_pool(database)
    producer = create_producer(infra.kafka_bootstrap, "test")
    await producer.start()
    topic = f"{topics}intake.orders.v1"
    try:
        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn, conn.transaction():
                await write_events(
                    conn,
                    [
                        new_event(
                            topic,
                            accepted("rolled-back"),
                            aggregate_id="rolled-back",
                            tenant_id="acme",
                            producer="test",
                        )
                    ],
                )
                raise RuntimeError("state change failed")
        async with pool.acquire() as conn, conn.transaction():
            await write_events(
                conn,
                [new_event(topic, accepted("committed"), aggregate_id="committed", tenant_id="acme", producer="test")],
            )
        async with OutboxRelay(pool, producer, SCHEMA, bootstrap=infra.kafka_bootstrap):
            records = await read_all(infra.kafka_bootstrap, topic, expected=1)
            await asyncio.sleep(1.0)  # a second, wrongly published event would show up by now
            records += await read_all(infra.kafka_bootstrap, topic, expected=2, timeout_s=1.0)
        keys = {r.key for r in records}
        assert keys == {b"committed"}
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await producer.stop()
        await pool.close()


async def test_relay_publishes_each_key_in_order_and_carries_trace_headers(infra, database, topics):
    pool = await prepared_pool(database)
    producer = create_producer(infra.kafka_bootstrap, "test")
    await producer.start()
    topic = f"{topics}intake.orders.v1"
    events = [
        new_event(topic, accepted(f"order-{i % 3}"), aggregate_id=f"order-{i % 3}", tenant_id="acme", producer="test")
        for i in range(300)
    ]
    try:
        async with pool.acquire() as conn, conn.transaction():
            await write_events(conn, events)
        async with OutboxRelay(pool, producer, SCHEMA, bootstrap=infra.kafka_bootstrap, batch_size=50):
            records = await read_all(infra.kafka_bootstrap, topic, expected=300)
    finally:
        await producer.stop()
        await pool.close()
    assert len(records) == 300
    by_key: dict[bytes, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(parse_envelope(record.value).event_id)
    for key, ids in by_key.items():
        expected = [e.event_id for e in events if e.key == key]
        assert ids == expected, f"events of {key!r} arrived out of order"
    assert all(dict(r.headers).get("event_type") == b"ordersync.intake.v1.OrderAccepted" for r in records)


async def test_redelivered_events_are_applied_once(infra, database, topics):
    """A consumer that dies before committing offsets gets the batch again; effects happen once."""
    pool = await prepared_pool(database)
    await pool.execute("CREATE TABLE applied (order_id text, event_id text)")
    topic = f"{topics}intake.orders.v1"
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    sent = [
        new_event(topic, accepted(f"o{i}"), aggregate_id=f"o{i}", tenant_id="acme", producer="t") for i in range(20)
    ]
    for event in sent:
        await producer.send_and_wait(topic, event.value, key=event.key)
    # The same events published twice, as a relay that crashed after sending would.
    for event in sent[:5]:
        await producer.send_and_wait(topic, event.value, key=event.key)
    await producer.stop()

    ledger = f"ledger-{uuid.uuid4().hex[:6]}"

    async def apply(events):
        async with pool.acquire() as conn, conn.transaction():
            for event in await claim_fresh(conn, ledger, events):
                order = unpack(event.envelope, events_pb2.OrderAccepted).order
                await conn.execute("INSERT INTO applied VALUES ($1, $2)", order.order_id, event.event_id)

    async def consume_everything(kafka_group: str):
        consumer = BatchConsumer(
            bootstrap=infra.kafka_bootstrap, topics=[topic], group_id=kafka_group, handler=apply, pool=pool
        )
        async with consumer:
            for _ in range(300):
                if consumer.handled >= 25:
                    break
                await asyncio.sleep(0.1)
        assert consumer.handled == 25

    try:
        await consume_everything(f"first-{ledger}")
        # A second group receives every message again, as after a crash before the offset commit.
        await consume_everything(f"second-{ledger}")
        rows = await pool.fetch("SELECT order_id, count(*) AS n FROM applied GROUP BY order_id")
    finally:
        await pool.close()
    assert len(rows) == 20
    assert all(r["n"] == 1 for r in rows)


async def test_undecodable_message_is_kept_as_a_dead_letter_and_does_not_block(infra, database, topics):
    pool = await prepared_pool(database)
    topic = f"{topics}intake.orders.v1"
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    await producer.send_and_wait(topic, b"\xff not an envelope", key=b"k", partition=0)
    good = new_event(topic, accepted("good"), aggregate_id="good", tenant_id="acme", producer="t")
    await producer.send_and_wait(topic, good.value, key=good.key, partition=0)
    await producer.stop()
    handled: list[str] = []

    async def handler(events):
        handled.extend(e.event_id for e in events)

    consumer = BatchConsumer(
        bootstrap=infra.kafka_bootstrap,
        topics=[topic],
        group_id=f"g-{uuid.uuid4().hex[:6]}",
        handler=handler,
        pool=pool,
    )
    try:
        async with consumer:
            for _ in range(100):
                if handled:
                    break
                await asyncio.sleep(0.1)
        dead = await pool.fetch("SELECT value, error FROM dead_letters")
    finally:
        await pool.close()
    assert handled == [good.event_id]
    assert len(dead) == 1 and dead[0]["value"] == b"\xff not an envelope"
    assert "not an EventEnvelope" in dead[0]["error"]
