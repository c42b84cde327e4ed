"""Fulfillment dispatch wiring: schema, pool, producer and relay, the connector registry and the
tenants' provider accounts, carrier mapping, the decisions consumer, the sender and status-check
workers, the provider webhook listener, and gRPC (the dispatch read API and the operators' admin
API)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from pathlib import Path

from ordersync.admin.v1 import order_admin_service_pb2, order_admin_service_pb2_grpc
from ordersync.dispatch.v1 import dispatch_service_pb2, dispatch_service_pb2_grpc
from ordersync.ops.v1 import reconciliation_pb2, reconciliation_pb2_grpc

from fulfillment_dispatch.api.admin import OrderAdminServicer
from fulfillment_dispatch.api.custom_store import CustomStoreHandler, add_store_routes
from fulfillment_dispatch.api.directory_admin import directory_admin_binding
from fulfillment_dispatch.api.grpc import FulfillmentDispatchServicer
from fulfillment_dispatch.api.peers import PeerViews
from fulfillment_dispatch.api.product_map import product_map_binding
from fulfillment_dispatch.api.rates import rate_quote_binding
from fulfillment_dispatch.api.webhooks import ProviderWebhookHandler, build_web_app
from fulfillment_dispatch.config import DispatchSettings
from fulfillment_dispatch.connection_health import DispatchHealth
from fulfillment_dispatch.consumers.decisions import RoutingDecidedConsumer
from fulfillment_dispatch.custom_store import Exporter
from fulfillment_dispatch.directory.cache import DirectoryCache
from fulfillment_dispatch.directory.invalidation import DirectoryChangeListener, announce_directory_change
from fulfillment_dispatch.directory.lookups import CustomerLookups
from fulfillment_dispatch.directory.servicer import DIRECTORY_SERVICE, directory_binding
from fulfillment_dispatch.history import DispatchHistory
from fulfillment_dispatch.invite_lists import InviteListMirror, InviteListScheduler
from fulfillment_dispatch.operator_actions import OperatorActions
from fulfillment_dispatch.product_sync import ProductSync, ProductSyncScheduler
from fulfillment_dispatch.reconcile import DispatchReconciler
from fulfillment_dispatch.sender import ORDERS_TOPIC, Sender
from fulfillment_dispatch.shipment_polling import PollSettings, ShipmentPoller
from fulfillment_dispatch.shipments import SHIPMENTS_TOPIC, ShipmentRecorder
from fulfillment_dispatch.status_checks import StatusChecker
from libs.clients.carrier_mapping import CarrierMappingClient
from libs.connectors.base.contract import ClientResources
from libs.connectors.registry import default_registry
from libs.platform import metrics
from libs.platform.accounts import AccountClients
from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import GrpcServer, bind
from libs.platform.housekeeping import Housekeeper
from libs.platform.http_server import HttpServer, tracing_middleware
from libs.platform.kafka import BatchConsumer, service_consumer
from libs.platform.rate_budgets import SharedRateLimiter
from libs.platform.reconciliation import ReconcileScheduler, ReconciliationServicer
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

MIGRATIONS = Path(__file__).parent / "migrations"
DECISIONS_TOPIC = "compliance.decisions.v1"


def _samples(tenants: TenantDirectory, registry) -> list[metrics.SampledGauge]:
    """Dispatch's sampled gauges: the send queue, and each provider account's oldest unsent order."""
    unsent = "('sending', 'retry_wait', 'failed', 'awaiting_pull')"
    return [
        metrics.work_queue_sample("dispatches", ("sending", "retry_wait", "awaiting_pull", "failed")),
        metrics.SampledGauge(
            metrics.OLDEST_UNSENT_ORDER_AGE,
            "SELECT tenant_id, provider_account, extract(epoch FROM now() - min(created_at))"
            f" FROM dispatches WHERE status IN {unsent} GROUP BY tenant_id, provider_account",
            known=metrics.tenant_accounts(tenants, lambda c: c in registry and _is_provider(registry, c)),
        ),
    ]


def _is_provider(registry, connector_id: str) -> bool:
    try:
        registry.provider(connector_id)
    except LookupError:
        return False
    return True


async def build(settings: DispatchSettings) -> ComponentGroup:
    """Migrate the schema and return the service's components, in start order."""
    platform = settings.platform
    # Customer look-ups come from booking engines at page-view rates and are answered from the
    # cache: no server span each (the interceptor cost ~40% of their throughput; benchmarks.md).
    # A miss's VinSuite call is still traced by the httpx instrumentation, callers' spans time all.
    await prepare(platform, MIGRATIONS, untraced_grpc_services=(DIRECTORY_SERVICE,))
    registry = default_registry()
    tenants = TenantDirectory.load(platform.tenants_file, registry)
    watcher = TenantsWatcher(tenants).as_worker(platform.tenants_reload_s)
    pool, producer = PoolComponent(platform), ProducerComponent(platform)
    health = readiness(pool, producer)
    # Providers' clients, paced by a budget every replica shares (e.g. ShipStation's 40 a minute).
    budget = ClientResources(
        max_concurrency=settings.provider_concurrency,
        rate_limiter=lambda scope, per_minute, burst: SharedRateLimiter(
            lambda: pool.pool, scope=scope, rate_per_minute=per_minute, burst=burst
        ),
    )
    accounts = AccountClients(tenants, registry, budget)
    carriers = CarrierMappingClient(
        settings.carrier_mapping_addr, token=settings.carrier_mapping_token, tls=platform.grpc_client_tls
    )
    first_check = timedelta(seconds=settings.status_check_s)
    sender = LazyComponent(
        lambda: PollingWorker(
            "dispatch-sender",
            Sender(
                pool.pool,
                accounts,
                carriers,
                topic=platform.topic(ORDERS_TOPIC),
                producer=platform.service_name,
                lease_s=settings.lease_s,
                batch=settings.claim_batch,
                max_attempts=settings.max_attempts,
                concurrency=settings.provider_concurrency,
                first_check_after=first_check,
                linger_s=settings.batch_linger_s,
            ).run_once,
            idle_s=1.0,
        )
    )
    peers = PeerViews(settings.peer_addrs, settings.peers_token, platform.grpc_client_tls)
    # Customer look-ups: one cache per process, emptied of a tenant by any replica's NOTIFY.
    directory_cache = DirectoryCache(
        ttl_s=settings.directory_cache_ttl_s,
        negative_ttl_s=settings.directory_negative_ttl_s,
        max_entries=settings.directory_cache_size,
    )
    directory_changes = LazyComponent(lambda: DirectoryChangeListener(pool.pool, platform.db_schema, directory_cache))

    def recorder() -> ShipmentRecorder:
        topic = platform.topic(SHIPMENTS_TOPIC)
        return ShipmentRecorder(
            pool.pool, registry, topic=topic, producer=platform.service_name, check_after=first_check
        )

    status_checker = LazyComponent(
        lambda: PollingWorker(
            "dispatch-status-checks",
            StatusChecker(
                pool.pool,
                accounts,
                recorder(),
                batch=settings.claim_batch,
                base_s=settings.status_check_s,
                max_s=settings.status_check_max_s,
            ).run_once,
            idle_s=min(settings.status_check_s, 30.0),
        )
    )

    owner = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"  # this replica, in leases
    poll = PollSettings(interval_s=settings.shipment_poll_s)
    shipment_poller = LazyComponent(
        lambda: PollingWorker(
            "dispatch-shipment-poller",
            ShipmentPoller(pool.pool, tenants, accounts, recorder(), owner=owner, settings=poll).run_once,
            idle_s=min(settings.shipment_poll_s, 5.0),
        )
    )

    # Periodic product sync of warehouse accounts, off unless ORDERSYNC_DISPATCH_PRODUCT_SYNC_S > 0.
    product_syncs = []
    if settings.product_sync_s > 0:
        product_syncs.append(
            LazyComponent(
                lambda: PollingWorker(
                    "dispatch-product-sync",
                    ProductSyncScheduler(
                        pool.pool,
                        tenants,
                        ProductSync(pool.pool, accounts),
                        registry,
                        interval_s=settings.product_sync_s,
                        owner=owner,
                    ).run_once,
                    idle_s=min(settings.product_sync_s, 60.0),
                )
            )
        )

    # Member types -> invite lists, every ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S (0: only on demand).
    invite_lists = []
    if settings.invite_list_sync_s > 0:
        invite_lists.append(
            LazyComponent(
                lambda: PollingWorker(
                    "dispatch-invite-lists",
                    InviteListScheduler(
                        pool.pool,
                        tenants,
                        InviteListMirror(pool.pool, platform.db_schema, accounts),
                        registry,
                        interval_s=settings.invite_list_sync_s,
                        owner=owner,
                    ).run_once,
                    idle_s=min(settings.invite_list_sync_s, 60.0),
                )
            )
        )

    def consumer() -> BatchConsumer:
        handler = RoutingDecidedConsumer(
            pool.pool,
            accounts,
            group=platform.consumer_group,
            on_queued=lambda: sender.component.wake(),
            topic=platform.topic(ORDERS_TOPIC),
            producer=platform.service_name,
        )
        return service_consumer(platform, DECISIONS_TOPIC, handler.handle, pool.pool)

    def http_server() -> HttpServer:
        handler = ProviderWebhookHandler(pool.pool, accounts, recorder())
        web_app = build_web_app(handler, [tracing_middleware])
        add_store_routes(web_app, CustomStoreHandler(accounts, exporter(), recorder()))  # pull-mode providers
        return HttpServer(web_app, port=settings.http_port, health=health)

    def exporter() -> Exporter:
        topic, page_size = platform.topic(ORDERS_TOPIC), settings.store_page_size
        return Exporter(
            pool.pool, topic=topic, producer=platform.service_name, first_check_after=first_check, page_size=page_size
        )

    def reconciler() -> DispatchReconciler:
        return DispatchReconciler(pool.pool, tenants, accounts, recorder(), on_requeued=lambda: sender.component.wake())

    def grpc_server() -> GrpcServer:
        access = GrpcAccess(settings.callers)
        reads = bind(
            dispatch_service_pb2,
            dispatch_service_pb2_grpc,
            "FulfillmentDispatchService",
            FulfillmentDispatchServicer(pool.pool, access),
        )
        actions = OperatorActions(
            pool.pool, accounts, recorder(), registry=registry, on_requeued=lambda: sender.component.wake()
        )
        admin = bind(
            order_admin_service_pb2,
            order_admin_service_pb2_grpc,
            "OrderAdminService",
            OrderAdminServicer(pool.pool, actions, peers, access, registry=registry),
        )
        rates = rate_quote_binding(pool.pool, accounts, access)
        products = product_map_binding(pool.pool, accounts, access)
        lookups = CustomerLookups(
            accounts,
            directory_cache,
            announce=lambda tenant_id: announce_directory_change(pool.pool, platform.db_schema, tenant_id),
            timeout_s=settings.directory_timeout_s,
        )
        directory = directory_binding(lookups, access)
        directory_admin = directory_admin_binding(pool.pool, platform.db_schema, accounts, access)
        reconciliation = bind(
            reconciliation_pb2,
            reconciliation_pb2_grpc,
            "ReconciliationService",
            ReconciliationServicer(pool.pool, reconciler(), access, settings.reconcile),
        )
        operations = operations_bindings(platform, pool.pool, access, DispatchHistory(), DispatchHealth())
        return GrpcServer(
            [reads, admin, rates, products, directory, directory_admin, reconciliation, *operations],
            port=platform.grpc_port,
            health=health,
            tls=platform.grpc_server_tls,
        )

    return ComponentGroup(
        [
            pool,
            *metrics.metrics_components(platform, pool, _samples(tenants, registry)),
            producer,
            RelayComponent(platform, pool, producer),
            health,
            Housekeeper(pool),
            watcher,
            accounts,
            carriers,
            peers,
            directory_changes,
            sender,
            status_checker,
            shipment_poller,
            LazyComponent(
                lambda: ReconcileScheduler(pool.pool, reconciler(), owner=owner, settings=settings.reconcile)
            ),
            *product_syncs,
            *invite_lists,
            LazyComponent(grpc_server),
            LazyComponent(http_server),
            LazyComponent(consumer),
        ]
    )
