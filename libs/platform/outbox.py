"""Transactional outbox: events are written in the caller's transaction and published by a relay.

A state change and the event announcing it commit together or not at all. The relay publishes
in id order, in batches, and deletes what Kafka acknowledged; a crash between the two republishes
a batch, which consumers absorb because they deduplicate on event_id. One relay per schema
publishes at a time (a transaction-scoped advisory lock per batch), which keeps each key's
events in order; the other replicas' relays stand by and take over at once.

An event Kafka refuses for good moves to `dead_letters` with the reason, keeping what a replay
needs, so it cannot hold back the events after it. Everything else (the broker unreachable, a
leader moving) is retried with the whole batch until it succeeds. "Too large" is the refusal
that matters, and it has two sources: the producer refuses an event over its max_request_size
when it is sent; the broker refuses a record batch over the topic's max.message.bytes, but only
after it was sent, and aiokafka's idempotent producer cannot publish to that partition again
(OutOfOrderSequenceNumber). So the relay checks the topics' limits first (topic_limits.py): an
event larger than its topic accepts is dead-lettered without being sent, and events that would
add up to more than that in one batch are sent in separate batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from collections import defaultdict
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from asyncpg.pool import PoolConnectionProxy

from libs.platform.db import PgConnection
from libs.platform.events import OutgoingEvent, tenant_of
from libs.platform.metrics import DEAD_LETTERS_TOTAL
from libs.platform.outage import OutageLog
from libs.platform.topic_limits import TopicLimits, record_size

log = logging.getLogger(__name__)

# What AIOKafkaProducer.send() raises for an event that can never be published as it is (larger
# than max_request_size), before queuing it. Errors about the producer or the cluster (authorization,
# a missing topic) are not here: they refuse every event alike, and retrying until an operator
# fixes them loses nothing.
PERMANENT_ERRORS = (MessageSizeTooLargeError,)


async def write_events(conn: PgConnection, events: Sequence[OutgoingEvent]) -> None:
    """Insert `events` into the outbox inside the caller's open transaction (one round trip)."""
    if not events:
        return
    await conn.execute(
        "INSERT INTO outbox (topic, key, value, headers)"
        " SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::jsonb[])",
        [e.topic for e in events],
        [e.key for e in events],
        [e.value for e in events],
        [encode_headers(e.headers) for e in events],
    )


def encode_headers(headers: Sequence[tuple[str, bytes]] | None) -> str:
    """Kafka headers as the outbox and dead letters keep them: JSON pairs, values as latin-1."""
    return json.dumps([[k, v.decode("latin-1")] for k, v in headers or ()])


def decode_headers(stored: str) -> list[tuple[str, bytes]]:
    """The Kafka headers `encode_headers` kept."""
    return [(k, v.encode("latin-1")) for k, v in json.loads(stored)]


class OutboxRelay:
    """Publishes a schema's outbox to Kafka; start() and stop() it with the service."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        bootstrap: str,
        batch_size: int = 1000,
        idle_poll_s: float = 1.0,
    ):
        self._pool = pool
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listen_conn: PoolConnectionProxy | None = None
        self._limits = TopicLimits(bootstrap, fields={"schema": schema})
        self._lock_key = zlib.crc32(f"ordersync-outbox:{schema}".encode())
        self.published = 0
        self.dead_lettered = 0

    async def start(self) -> None:
        """Take the relay lock (waiting for another replica to let go) and start publishing."""
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        """Stop publishing; unpublished rows stay in the outbox for the next start. Safe twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> OutboxRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _run(self) -> None:
        # Notifications only speed the relay up; if the listening connection is lost, polling
        # every idle_poll_s still publishes everything.
        outage = OutageLog(log, "outbox relay", fields={"schema": self._schema})
        while True:
            try:
                self._listen_conn = await self._pool.acquire()
                await self._listen_conn.add_listener(f"{self._schema}_outbox", self._on_notify)
                outage.recovered()
                await self._publish_loop()
            except Exception as exc:  # noqa: BLE001 - the relay must outlive Postgres outages
                outage.failed(exc)
                await asyncio.sleep(1.0)
            finally:
                conn, self._listen_conn = self._listen_conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.remove_listener(f"{self._schema}_outbox", self._on_notify)
                    await self._pool.release(conn)

    def _on_notify(self, *_args) -> None:
        self._wakeup.set()

    async def _publish_loop(self) -> None:
        failures = 0
        outage = OutageLog(log, "outbox publishing", fields={"schema": self._schema})
        while True:
            self._wakeup.clear()
            try:
                count = await self._publish_batch()
                failures = 0
                outage.recovered()
            except Exception as exc:  # noqa: BLE001 - the relay must outlive Kafka and Postgres outages
                failures += 1
                outage.failed(exc)
                self._limits.expire()  # a topic's limit may have been lowered under the relay
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                continue
            if count < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_poll_s)

    async def _publish_batch(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            # One publisher per schema at a time keeps each key's events in order. The lock is
            # held only by this transaction, so a replica that loses its connection loses the lock.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                return 0
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1",
                self._batch_size,
            )
            if not rows:
                return 0
            await self._limits.refresh({r["topic"] for r in rows})
            refused = await self._publish(rows)
            if refused:
                await self._keep_dead_letters(conn, refused)
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.published += len(rows) - len(refused)
        self.dead_lettered += len(refused)
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> list[tuple[asyncpg.Record, str]]:
        """Publish `rows` in order; return those refused for good, with the reason.

        Raises the first error of a send Kafka did not acknowledge; nothing is deleted then, and
        the batch is tried again.
        """
        refused: list[tuple[asyncpg.Record, str]] = []
        pending: list[asyncio.Future] = []
        # Bytes sent per topic since the last flush: an upper bound of any batch the producer
        # can have built from them, since it never puts two topics in one batch.
        unflushed: defaultdict[str, int] = defaultdict(int)
        for row in rows:
            topic, size, limit = row["topic"], _size(row), self._limits.limit(row["topic"])
            if limit is not None and size > limit:
                refused.append((row, f"event of {size} bytes exceeds topic {topic}'s max.message.bytes {limit}"))
                continue
            if limit is not None and unflushed[topic] + size > limit:
                # The producer fills batches up to its own max_batch_size, more than this topic
                # accepts: let what is queued go out (and be acknowledged) before adding more.
                await asyncio.gather(*pending)
                pending.clear()
                unflushed.clear()
            try:
                pending.append(await self._send(row))
            except PERMANENT_ERRORS as exc:
                # Refused before it was queued (the producer's own size check), so the events
                # after it keep their order.
                refused.append((row, repr(exc)))
                continue
            unflushed[topic] += size
        await asyncio.gather(*pending)
        return refused

    async def _send(self, row: asyncpg.Record) -> asyncio.Future:
        return await self._producer.send(
            row["topic"],
            value=row["value"],
            key=row["key"],
            headers=_headers(row),
        )

    async def _keep_dead_letters(self, conn: PgConnection, refused: list[tuple[asyncpg.Record, str]]) -> None:
        for row, error in refused:
            log.error(
                "event refused by Kafka for good; kept in dead_letters",
                extra={
                    "fields": {
                        "outbox_id": row["id"],
                        "topic": row["topic"],
                        "bytes": len(row["value"]),
                        "error": error,
                    }
                },
            )
        await conn.executemany(
            "INSERT INTO dead_letters (source, outbox_id, topic, key, value, headers, error, tenant_id)"
            " VALUES ('outbox', $1, $2, $3, $4, $5, $6, $7)",
            [
                (r["id"], r["topic"], r["key"], r["value"], r["headers"], error, tenant_of(r["value"]))
                for r, error in refused
            ],
        )
        for row, _error in refused:
            DEAD_LETTERS_TOTAL.labels("outbox", row["topic"]).inc()


def _headers(row: asyncpg.Record) -> list[tuple[str, bytes]]:
    return decode_headers(row["headers"])


def _size(row: asyncpg.Record) -> int:
    return record_size(row["key"], row["value"], _headers(row))
