"""Fulfillment dispatch wiring: schema, pool, producer and relay, provider clients, carrier
mapping, the decisions consumer, the sender worker, the provider webhook listener and gRPC."""

from __future__ import annotations

from pathlib import Path

from ordersync.dispatch.v1 import dispatch_service_pb2, dispatch_service_pb2_grpc

from fulfillment_dispatch.api.grpc import FulfillmentDispatchServicer
from fulfillment_dispatch.api.webhooks import VinoshipperWebhookHandler, build_web_app
from fulfillment_dispatch.config import DispatchSettings
from fulfillment_dispatch.consumers.decisions import RoutingDecidedConsumer
from fulfillment_dispatch.providers import ProviderClients
from fulfillment_dispatch.sender import ORDERS_TOPIC, Sender
from fulfillment_dispatch.shipments import SHIPMENTS_TOPIC, ShipmentRecorder
from libs.clients.carrier_mapping import CarrierMappingClient
from libs.platform.grpc_server import GrpcServer, bind
from libs.platform.housekeeping import Housekeeper
from libs.platform.http_server import HttpServer, tracing_middleware
from libs.platform.kafka import BatchConsumer, service_consumer
from libs.platform.runtime import PoolComponent, ProducerComponent, RelayComponent, prepare
from libs.platform.service import ComponentGroup, LazyComponent
from libs.platform.tenants import TenantDirectory
from libs.platform.worker import PollingWorker

MIGRATIONS = Path(__file__).parent / "migrations"
DECISIONS_TOPIC = "compliance.decisions.v1"


async def build(settings: DispatchSettings) -> ComponentGroup:
    """Migrate the schema and return the service's components, in start order."""
    platform = settings.platform
    await prepare(platform, MIGRATIONS)
    tenants = TenantDirectory.load(platform.tenants_file)
    pool, producer = PoolComponent(platform), ProducerComponent(platform)
    providers = ProviderClients(tenants, max_concurrency=settings.provider_concurrency)
    carriers = CarrierMappingClient(settings.carrier_mapping_addr)
    sender = LazyComponent(
        lambda: PollingWorker(
            "dispatch-sender",
            Sender(
                pool.pool,
                providers,
                carriers,
                topic=platform.topic(ORDERS_TOPIC),
                producer=platform.service_name,
                lease_s=settings.lease_s,
                batch=settings.claim_batch,
                max_attempts=settings.max_attempts,
                concurrency=settings.provider_concurrency,
            ).run_once,
            idle_s=1.0,
        )
    )

    def consumer() -> BatchConsumer:
        handler = RoutingDecidedConsumer(
            pool.pool, tenants, group=platform.consumer_group, on_queued=lambda: sender.component.wake()
        )
        return service_consumer(platform, DECISIONS_TOPIC, handler.handle, pool.pool)

    def http_server() -> HttpServer:
        recorder = ShipmentRecorder(pool.pool, topic=platform.topic(SHIPMENTS_TOPIC), producer=platform.service_name)
        handler = VinoshipperWebhookHandler(pool.pool, tenants, providers, recorder)
        return HttpServer(build_web_app(handler, [tracing_middleware]), port=settings.http_port)

    def grpc_server() -> GrpcServer:
        binding = bind(
            dispatch_service_pb2,
            dispatch_service_pb2_grpc,
            "FulfillmentDispatchService",
            FulfillmentDispatchServicer(pool.pool),
        )
        return GrpcServer([binding], port=platform.grpc_port)

    return ComponentGroup(
        [
            pool,
            producer,
            RelayComponent(platform, pool, producer),
            Housekeeper(pool),
            providers,
            carriers,
            sender,
            LazyComponent(grpc_server),
            LazyComponent(http_server),
            LazyComponent(consumer),
        ]
    )
