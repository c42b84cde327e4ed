"""Order intake wiring: schema, pool, producer and relay, the revision writer, HTTP and gRPC."""

from __future__ import annotations

from pathlib import Path

from ordersync.intake.v1 import intake_service_pb2, intake_service_pb2_grpc

from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import GrpcServer, bind
from libs.platform.housekeeping import Housekeeper
from libs.platform.http_server import HttpServer, tracing_middleware
from libs.platform.runtime import PoolComponent, ProducerComponent, RelayComponent, prepare, readiness
from libs.platform.service import ComponentGroup, LazyComponent
from libs.platform.tenants import TenantDirectory, TenantsWatcher
from order_intake.api.grpc import OrderIntakeServicer
from order_intake.api.webhooks import ORDERS_TOPIC, Commerce7WebhookHandler, build_web_app
from order_intake.config import IntakeSettings
from order_intake.storage.orders import RevisionWriter

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(settings: IntakeSettings) -> ComponentGroup:
    """Migrate the schema and return the service's components, in start order."""
    platform = settings.platform
    await prepare(platform, MIGRATIONS)
    tenants = TenantDirectory.load(platform.tenants_file)
    watcher = TenantsWatcher(tenants).as_worker(platform.tenants_reload_s)
    pool, producer = PoolComponent(platform), ProducerComponent(platform)
    relay = RelayComponent(platform, pool, producer)
    health = readiness(pool, producer)
    writer = LazyComponent(lambda: RevisionWriter(pool.pool, max_batch=settings.max_commit_batch))

    def http_server() -> HttpServer:
        handler = Commerce7WebhookHandler(
            tenants,
            writer.component,
            platform.topic(ORDERS_TOPIC),
            platform.service_name,
            limits=settings.limits,
        )
        return HttpServer(build_web_app(handler, [tracing_middleware]), port=settings.http_port, health=health)

    def grpc_server() -> GrpcServer:
        servicer = OrderIntakeServicer(pool.pool, GrpcAccess(settings.callers))
        binding = bind(intake_service_pb2, intake_service_pb2_grpc, "OrderIntakeService", servicer)
        return GrpcServer([binding], port=platform.grpc_port, health=health, tls=platform.grpc_server_tls)

    return ComponentGroup(
        [
            pool,
            producer,
            relay,
            health,
            Housekeeper(pool),
            watcher,
            writer,
            LazyComponent(grpc_server),
            LazyComponent(http_server),
        ]
    )
