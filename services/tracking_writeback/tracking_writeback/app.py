"""Tracking writeback wiring: schema, pool, producer and relay, channel account clients, the
shipments consumer, the writer worker and gRPC."""

from __future__ import annotations

from pathlib import Path

from ordersync.tracking.v1 import tracking_service_pb2, tracking_service_pb2_grpc

from libs.clients.carrier_mapping import CarrierMappingClient
from libs.connectors.base.contract import Capability
from libs.connectors.registry import default_registry
from libs.platform import metrics
from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import GrpcServer, bind
from libs.platform.housekeeping import Housekeeper
from libs.platform.kafka import BatchConsumer, service_consumer
from libs.platform.runtime import (
    PoolComponent,
    ProducerComponent,
    RelayComponent,
    operations_bindings,
    prepare,
    readiness,
)
from libs.platform.service import ComponentGroup, LazyComponent
from libs.platform.tenants import TenantDirectory, TenantsWatcher
from libs.platform.worker import PollingWorker
from tracking_writeback.api.grpc import TrackingWritebackServicer
from tracking_writeback.channels import channel_accounts
from tracking_writeback.config import WritebackSettings
from tracking_writeback.connection_health import WritebackHealth
from tracking_writeback.consumers.shipments import ShipmentUpdatedConsumer
from tracking_writeback.history import WritebackHistory
from tracking_writeback.writer import WRITEBACKS_TOPIC, Writer

MIGRATIONS = Path(__file__).parent / "migrations"
SHIPMENTS_TOPIC = "dispatch.shipments.v1"


def _samples(tenants: TenantDirectory, registry) -> list[metrics.SampledGauge]:
    """Writeback's sampled gauges: the write queue, and each channel account's oldest unwritten shipment.

    A row has no creation time: its age counts from its last change or attempt (updated_at).
    """
    return [
        metrics.work_queue_sample("writebacks", ("pending", "retry_wait", "blocked", "failed")),
        metrics.SampledGauge(
            metrics.OLDEST_UNWRITTEN_SHIPMENT_AGE,
            "SELECT tenant_id, channel_account, extract(epoch FROM now() - min(updated_at)) FROM writebacks"
            " WHERE status IN ('pending', 'retry_wait', 'blocked', 'failed') GROUP BY tenant_id, channel_account",
            known=metrics.tenant_accounts(
                tenants, lambda c: c in registry and registry.get(c).info.can(Capability.WRITE_BACK)
            ),
        ),
    ]


async def build(settings: WritebackSettings) -> ComponentGroup:
    """Migrate the schema and return the service's components, in start order."""
    platform = settings.platform
    await prepare(platform, MIGRATIONS)
    registry = default_registry()
    tenants = TenantDirectory.load(platform.tenants_file, registry)
    watcher = TenantsWatcher(tenants).as_worker(platform.tenants_reload_s)
    pool, producer = PoolComponent(platform), ProducerComponent(platform)
    health = readiness(pool, producer)
    channels = channel_accounts(tenants, registry, lambda: pool.pool)
    carriers = CarrierMappingClient(
        settings.carrier_mapping_addr, token=settings.carrier_mapping_token, tls=platform.grpc_client_tls
    )

    def writer_worker() -> PollingWorker:
        writer = Writer(
            pool.pool,
            channels,
            carriers,
            topic=platform.topic(WRITEBACKS_TOPIC),
            producer=platform.service_name,
            lease_s=settings.lease_s,
            batch=settings.claim_batch,
            max_attempts=settings.max_attempts,
            blocked_recheck_s=settings.blocked_recheck_s,
        )
        worker = PollingWorker("writeback-writer", writer.run_once)

        def mappings_changed(tenant_id: str | None) -> None:
            # Writes blocked for want of a carrier code may be writable now.
            writer.mappings_changed(tenant_id)
            worker.wake()

        carriers.on_change(mappings_changed)
        return worker

    writer = LazyComponent(writer_worker)

    def consumer() -> BatchConsumer:
        handler = ShipmentUpdatedConsumer(
            pool.pool, group=platform.consumer_group, on_wanted=lambda: writer.component.wake()
        )
        return service_consumer(platform, SHIPMENTS_TOPIC, handler.handle, pool.pool)

    def grpc_server() -> GrpcServer:
        binding = bind(
            tracking_service_pb2,
            tracking_service_pb2_grpc,
            "TrackingWritebackService",
            TrackingWritebackServicer(pool.pool, GrpcAccess(settings.callers)),
        )
        operations = operations_bindings(
            platform, pool.pool, GrpcAccess(settings.callers), WritebackHistory(), WritebackHealth()
        )
        return GrpcServer([binding, *operations], port=platform.grpc_port, health=health, tls=platform.grpc_server_tls)

    return ComponentGroup(
        [
            pool,
            *metrics.metrics_components(platform, pool, _samples(tenants, registry)),
            producer,
            RelayComponent(platform, pool, producer),
            health,
            Housekeeper(pool),
            watcher,
            channels,
            carriers,
            writer,
            LazyComponent(grpc_server),
            LazyComponent(consumer),
        ]
    )
