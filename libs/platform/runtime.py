"""Runtime: the shared parts a service's app.py wires together (pool, producer, outbox relay)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from libs.platform.auth import GrpcAccess
from libs.platform.config import PlatformSettings
from libs.platform.connection_health import HealthSource, health_binding
from libs.platform.db import SchemaBehindError, create_pool, migrate, require_migrated
from libs.platform.dead_letters import dead_letter_binding
from libs.platform.grpc_server import ServiceBinding
from libs.platform.health import HealthMonitor, kafka_probe, postgres_probe
from libs.platform.kafka import create_producer
from libs.platform.order_history import HistoryReader, history_binding
from libs.platform.outbox import OutboxRelay
from libs.platform.telemetry import setup_logging, setup_telemetry

log = logging.getLogger(__name__)

POOL_CLOSE_TIMEOUT_S = 10.0


class PoolComponent:
    """Owns an asyncpg pool as a component (open on start, close on stop, safe twice)."""

    def __init__(self, settings: PlatformSettings):
        self._settings = settings
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool; only while started (components built after this one use it)."""
        if self._pool is None:
            raise RuntimeError("the Postgres pool is not started")
        return self._pool

    async def start(self) -> None:
        if self._pool is None:
            s = self._settings
            self._pool = await create_pool(s.pg_dsn, s.db_schema, s.pg_pool_size)

    async def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # close() waits for every connection to come back; one held by a stuck task (or
        # waiting on a cancel Postgres never acknowledges) would hold it forever.
        try:
            await asyncio.wait_for(pool.close(), POOL_CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "pool close timed out; terminating its connections", extra={"fields": {"after_s": POOL_CLOSE_TIMEOUT_S}}
            )
            pool.terminate()


class ProducerComponent:
    """Owns a Kafka producer as a component."""

    def __init__(self, settings: PlatformSettings):
        self.producer: AIOKafkaProducer = create_producer(settings.kafka_bootstrap, settings.service_name)
        self._started = False

    async def start(self) -> None:
        if not self._started:
            await self.producer.start()
            self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self.producer.stop()


async def prepare(
    settings: PlatformSettings,
    migrations_dir: Path,
    *,
    grpc_server_spans: bool = True,
    untraced_grpc_services: Sequence[str] = (),
) -> None:
    """Set up logging and tracing (see setup_telemetry), then bring the service's schema up to date.

    With ORDERSYNC_MIGRATE=off the schema is only checked: a schema behind its migration files
    stops the process (SystemExit) with a message naming the command that applies them.
    """
    setup_logging(settings.service_name)
    setup_telemetry(settings, grpc_server_spans=grpc_server_spans, untraced_grpc_services=untraced_grpc_services)
    if settings.migrate_on_start:
        await migrate(settings.pg_dsn, settings.db_schema, migrations_dir)
        return
    try:
        await require_migrated(settings.pg_dsn, settings.db_schema, migrations_dir)
    except SchemaBehindError as behind:
        log.error("schema not migrated", extra={"fields": {"schema": behind.schema, "pending": behind.pending}})
        raise SystemExit(f"{settings.service_name}: {behind}") from None


class RelayComponent:
    """Starts the outbox relay once the pool and producer are up."""

    def __init__(self, settings: PlatformSettings, pool: PoolComponent, producer: ProducerComponent):
        self._settings = settings
        self._pool = pool
        self._producer = producer
        self.relay: OutboxRelay | None = None

    async def start(self) -> None:
        if self.relay is None:
            self.relay = OutboxRelay(
                self._pool.pool,
                self._producer.producer,
                self._settings.db_schema,
                bootstrap=self._settings.kafka_bootstrap,
            )
            await self.relay.start()

    async def stop(self) -> None:
        relay, self.relay = self.relay, None
        if relay is not None:
            await relay.stop()


def readiness(pool: PoolComponent, producer: ProducerComponent | None = None) -> HealthMonitor:
    """The service's health: its Postgres pool and, when it has one, its Kafka producer (see health.py).

    Place it after the pool and producer among the components, and hand it to the servers.
    """
    probes = [postgres_probe(lambda: pool.pool)]
    if producer is not None:
        probes.append(kafka_probe(lambda: producer.producer))
    return HealthMonitor(probes)


def operations_bindings(
    platform: PlatformSettings,
    pool: asyncpg.Pool,
    access: GrpcAccess,
    history: HistoryReader,
    health: HealthSource | None = None,
) -> list[ServiceBinding]:
    """What every pipeline service serves operators beside its own API: its part of an order's
    history, its dead letters to read and replay, and (a service dealing with connector accounts:
    `health`) how healthy each of a tenant's accounts is."""
    bindings = [
        history_binding(pool, history, access),
        dead_letter_binding(pool, access, service=platform.service_name, topic=platform.topic),
    ]
    if health is not None:
        bindings.append(health_binding(pool, health, access, service=platform.service_name))
    return bindings
