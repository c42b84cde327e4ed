"""Compliance routing wiring: schema, pool, producer and relay, the orders consumer, gRPC."""

from __future__ import annotations

from pathlib import Path

from ordersync.compliance.v1 import compliance_service_pb2, compliance_service_pb2_grpc

from compliance_routing.api.grpc import ComplianceRoutingServicer
from compliance_routing.config import RoutingSettings
from compliance_routing.consumers.orders import DECISIONS_TOPIC, OrderAcceptedConsumer
from compliance_routing.history import RoutingHistory
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

MIGRATIONS = Path(__file__).parent / "migrations"
ORDERS_TOPIC = "intake.orders.v1"


async def build(settings: RoutingSettings) -> ComponentGroup:
    """Migrate the schema and return the service's components, in start order."""
    platform = settings.platform
    await prepare(platform, MIGRATIONS)
    registry = default_registry()
    tenants = TenantDirectory.load(platform.tenants_file, registry)
    watcher = TenantsWatcher(tenants).as_worker(platform.tenants_reload_s)
    pool, producer = PoolComponent(platform), ProducerComponent(platform)
    health = readiness(pool, producer)

    def consumer() -> BatchConsumer:
        handler = OrderAcceptedConsumer(
            pool.pool,
            tenants,
            group=platform.consumer_group,
            topic=platform.topic(DECISIONS_TOPIC),
            producer=platform.service_name,
        )
        return service_consumer(platform, ORDERS_TOPIC, handler.handle, pool.pool)

    def grpc_server() -> GrpcServer:
        binding = bind(
            compliance_service_pb2,
            compliance_service_pb2_grpc,
            "ComplianceRoutingService",
            ComplianceRoutingServicer(pool.pool, GrpcAccess(settings.callers)),
        )
        operations = operations_bindings(platform, pool.pool, GrpcAccess(settings.callers), RoutingHistory())
        return GrpcServer([binding, *operations], port=platform.grpc_port, health=health, tls=platform.grpc_server_tls)

    return ComponentGroup(
        [
            pool,
            *metrics.metrics_components(platform, pool),
            producer,
            RelayComponent(platform, pool, producer),
            health,
            Housekeeper(pool),
            watcher,
            LazyComponent(grpc_server),
            LazyComponent(consumer),
        ]
    )
