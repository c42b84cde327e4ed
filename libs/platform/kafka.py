"""Kafka clients: an idempotent producer and a batch consumer that commits after the database.

The consumer hands each fetched batch to the service's handler and commits offsets only once the
handler returned, that is after the handler's database transaction committed (at-least-once).
Handlers make redelivery harmless with `claim_new_events`. A message that is not an envelope is
kept in `dead_letters`, never dropped silently, and never blocks the partition. A dead letter's
replay (libs/platform/dead_letters.py) is republished for one consumer group, named in its
REPLAY_FOR_HEADER: every other group of the topic passes it by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry import context as otel_context
from ordersync.common.v1 import event_pb2

from libs.platform.db import PgConnection
from libs.platform.events import EnvelopeError, parse_envelope
from libs.platform.metrics import DEAD_LETTERS_TOTAL, KAFKA_CONSUMER_LAG
from libs.platform.outage import OutageLog
from libs.platform.outbox import encode_headers
from libs.platform.telemetry import context_headers, extract_context

log = logging.getLogger(__name__)

# The Kafka header naming the one consumer group a replayed dead letter is for.
REPLAY_FOR_HEADER = "ordersync-replay-for"


def create_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """Return an unstarted producer: idempotent, acks from all replicas, small linger to batch."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
        compression_type=None,
    )


@dataclass(frozen=True)
class ConsumedEvent:
    """One decoded message: where it came from, its envelope and its producer's trace context."""

    topic: str
    partition: int
    offset: int
    envelope: event_pb2.EventEnvelope
    trace_context: otel_context.Context

    @property
    def event_id(self) -> str:
        return self.envelope.event_id


BatchHandler = Callable[[list[ConsumedEvent]], Awaitable[None]]


async def claim_new_events(conn: PgConnection, consumer_group: str, event_ids: Sequence[str]) -> set[str]:
    """Record `event_ids` as processed in the caller's transaction; return those not seen before.

    Call inside the transaction that applies the events, so "processed" and the effects commit
    together; a redelivered event is then not in the returned set and must be skipped.
    """
    rows = await conn.fetch(
        "INSERT INTO processed_events (consumer_group, event_id)"
        " SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
        consumer_group,
        list(event_ids),
    )
    return {r["event_id"] for r in rows}


async def claim_fresh(conn: PgConnection, consumer_group: str, events: Sequence[ConsumedEvent]) -> list[ConsumedEvent]:
    """Claim `events` (see claim_new_events) and return each one not processed before, once.

    A batch can hold the same event twice (a relay republished it), so duplicates inside the
    batch are dropped too, keeping the first copy.
    """
    fresh = await claim_new_events(conn, consumer_group, [e.event_id for e in events])
    kept = []
    for event in events:
        if event.event_id in fresh:
            fresh.discard(event.event_id)
            kept.append(event)
    return kept


class BatchConsumer:
    """Consumes topics as one group, handing batches to a handler; start() and stop() it."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        handler: BatchHandler,
        pool: asyncpg.Pool,
        max_batch: int = 500,
    ):
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_batch,
            fetch_max_wait_ms=100,
        )
        self._group_id = group_id
        self._handler = handler
        self._pool = pool
        self._max_batch = max_batch
        self._task: asyncio.Task | None = None
        self.handled = 0

    async def start(self) -> None:
        """Join the group and start consuming. The task is owned here and awaited by stop()."""
        if self._task is not None:
            return
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self._group_id}")

    async def stop(self) -> None:
        """Stop consuming; an unfinished batch is not committed and will be redelivered. Safe twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self._consumer.stop()

    async def __aenter__(self) -> BatchConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _run(self) -> None:
        # The loop outlives every failure: a commit refused during a rebalance only means the
        # batch is redelivered (harmless), and a database outage is waited out.
        failures = 0
        outage = OutageLog(log, "consumer pass", fields={"group": self._group_id})
        while True:
            try:
                await self._consume_once()
                failures = 0
                outage.recovered()
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning(
                    "offset commit refused; the batch will be redelivered", extra={"fields": {"error": repr(exc)}}
                )
            except Exception as exc:
                failures += 1
                outage.failed(exc)
                await asyncio.sleep(min(0.2 * 2**failures, 10.0))

    async def _consume_once(self) -> None:
        fetched = await self._consumer.getmany(timeout_ms=500, max_records=self._max_batch)
        records = [record for batch in fetched.values() for record in batch]
        if not records:
            await self._report_lag()
            return
        events = await self._decode(records)
        if events:
            await self._handle_until_done(events)
        await self._consumer.commit(_next_offsets(records))
        self.handled += len(events)
        await self._report_lag()

    async def _report_lag(self) -> None:
        """Set the lag gauge of each assigned partition: highwater (as of the last fetch) - position.

        Both are the client's own bookkeeping, no broker call; a partition not fetched yet has
        no highwater and is skipped.
        """
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            position = await self._consumer.position(tp)
            KAFKA_CONSUMER_LAG.labels(self._group_id, tp.topic, str(tp.partition)).set(max(0, highwater - position))

    async def _handle_until_done(self, events: list[ConsumedEvent]) -> None:
        # The handler fails as a whole only when its infrastructure does (database down): retry
        # the same batch rather than skip it, so nothing is lost.
        failures = 0
        outage = OutageLog(log, "batch handler", fields={"group": self._group_id, "events": len(events)})
        while True:
            try:
                await self._handler(events)
                outage.recovered()
                return
            except Exception as exc:
                failures += 1
                outage.failed(exc)
                await asyncio.sleep(min(0.2 * 2**failures, 10.0))

    async def _decode(self, records: list[ConsumerRecord]) -> list[ConsumedEvent]:
        events, rejected = [], []
        for record in records:
            if not self._is_for_this_group(record):
                continue
            try:
                envelope = parse_envelope(record.value or b"")
            except EnvelopeError as exc:
                rejected.append((record, str(exc)))
                continue
            events.append(
                ConsumedEvent(record.topic, record.partition, record.offset, envelope, extract_context(record.headers))
            )
        if rejected:
            await self._keep_dead_letters(rejected)
        return events

    def _is_for_this_group(self, record: ConsumerRecord) -> bool:
        """False for a replayed dead letter of another consumer group (see REPLAY_FOR_HEADER)."""
        for name, value in record.headers or ():
            if name == REPLAY_FOR_HEADER:
                return value == self._group_id.encode()
        return True

    async def _keep_dead_letters(self, rejected: list[tuple[ConsumerRecord, str]]) -> None:
        log.error("undecodable messages kept in dead_letters", extra={"fields": {"count": len(rejected)}})
        async with self._pool.acquire() as conn:
            await conn.executemany(
                'INSERT INTO dead_letters (consumer_group, topic, partition, "offset", key, value, headers, error)'
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                [
                    (self._group_id, r.topic, r.partition, r.offset, r.key, r.value, encode_headers(r.headers), error)
                    for r, error in rejected
                ],
            )
        for record, _error in rejected:  # a redelivered one is counted again: it was moved again
            DEAD_LETTERS_TOTAL.labels("consumer", record.topic).inc()


def service_consumer(settings, topic: str, handler: BatchHandler, pool: asyncpg.Pool) -> BatchConsumer:
    """The consumer of `topic` for a service: its group, its topic prefix, its pool for dead letters."""
    return BatchConsumer(
        bootstrap=settings.kafka_bootstrap,
        topics=[settings.topic(topic)],
        group_id=settings.consumer_group,
        handler=handler,
        pool=pool,
    )


def _next_offsets(records: list[ConsumerRecord]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


async def keep_dead_letter(conn: PgConnection, consumer_group: str, event: ConsumedEvent, error: str) -> None:
    """Keep an event the handler cannot use (wrong payload type) for inspection and replay."""
    log.error("event kept in dead_letters", extra={"fields": {"event_id": event.event_id, "error": error}})
    await conn.execute(
        'INSERT INTO dead_letters (consumer_group, topic, partition, "offset", key, value, headers, error, tenant_id)'
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        consumer_group,
        event.topic,
        event.partition,
        event.offset,
        event.envelope.aggregate_id.encode(),
        event.envelope.SerializeToString(),
        encode_headers(context_headers(event.trace_context)),
        error,
        event.envelope.tenant_id,
    )
    DEAD_LETTERS_TOTAL.labels("consumer", event.topic).inc()
