"""Order intake wiring: schema, pool, producer and relay, the revision writer, HTTP, gRPC (orders,
reconciliation, order history, kept webhook receipts), pulls, the consumer of dispatch's handovers
and the failed-import mail sender."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from ordersync.intake.v1 import (
    intake_service_pb2,
    intake_service_pb2_grpc,
    webhook_receipts_pb2,
    webhook_receipts_pb2_grpc,
)
from ordersync.ops.v1 import reconciliation_pb2, reconciliation_pb2_grpc

from libs.connectors.base.contract import Capability, ClientResources
from libs.connectors.registry import default_registry
from libs.platform import metrics
from libs.platform.accounts import AccountClients
from libs.platform.auth import GrpcAccess
from libs.platform.grpc_server import GrpcServer, bind
from libs.platform.housekeeping import Housekeeper
from libs.platform.http_server import HttpServer, tracing_middleware
from libs.platform.kafka import BatchConsumer, service_consumer
from libs.platform.mail import SmtpMailer
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
from order_intake.api.grpc import OrderIntakeServicer
from order_intake.api.webhook_receipts import WebhookReceiptServicer
from order_intake.api.webhooks import WebhookHandler, WebhookIngest, build_web_app
from order_intake.config import IntakeSettings
from order_intake.connection_health import IntakeHealth
from order_intake.consumers.handovers import DISPATCH_TOPIC, OrderDispatchedConsumer
from order_intake.history import IntakeHistory
from order_intake.mail import ImportMailSender
from order_intake.pulling import PullScheduler
from order_intake.reconcile import IntakeReconciler
from order_intake.revisions import ORDERS_TOPIC, RevisionBuilder
from order_intake.storage.orders import RevisionWriter

MIGRATIONS = Path(__file__).parent / "migrations"


def _samples(tenants: TenantDirectory, registry) -> list[metrics.SampledGauge]:
    """Intake's sampled gauges: the mail queue, and each pulled channel account's poll state."""
    pulled = metrics.tenant_accounts(
        tenants, lambda c: c in registry and registry.get(c).info.can(Capability.PULL_ORDERS)
    )
    return [
        metrics.work_queue_sample("import_mails", ("pending", "retry_wait")),
        metrics.SampledGauge(
            metrics.POLL_CURSOR_AGE,
            "SELECT tenant_id, account, extract(epoch FROM now() - last_polled_at) FROM pull_cursors",
            known=pulled,
        ),
        metrics.SampledGauge(
            metrics.CONNECTION_CONSECUTIVE_FAILURES,
            "SELECT tenant_id, account, failures FROM pull_cursors",
            known=pulled,
        ),
    ]


async def build(settings: IntakeSettings) -> ComponentGroup:
    """Migrate the schema and return the service's components, in start order."""
    platform = settings.platform
    await prepare(platform, MIGRATIONS)
    registry = default_registry()
    tenants = TenantDirectory.load(platform.tenants_file, registry)
    watcher = TenantsWatcher(tenants).as_worker(platform.tenants_reload_s)
    pool, producer = PoolComponent(platform), ProducerComponent(platform)
    relay = RelayComponent(platform, pool, producer)
    health = readiness(pool, producer)
    writer = LazyComponent(lambda: RevisionWriter(pool.pool, max_batch=settings.max_commit_batch))
    builder = RevisionBuilder(platform.topic(ORDERS_TOPIC), platform.service_name, settings.limits)
    # Pulled channels' clients, paced by a budget every replica shares.
    accounts = AccountClients(
        tenants,
        registry,
        ClientResources(
            rate_limiter=lambda scope, per_minute, burst: SharedRateLimiter(
                lambda: pool.pool, scope=scope, rate_per_minute=per_minute, burst=burst
            )
        ),
    )

    owner = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"  # this replica, in leases

    def reconciler() -> IntakeReconciler:
        return IntakeReconciler(pool.pool, tenants, accounts, writer.component, builder)

    def http_server() -> HttpServer:
        handler = WebhookHandler(tenants, registry, writer.component, builder)
        return HttpServer(build_web_app(handler, [tracing_middleware]), port=settings.http_port, health=health)

    def grpc_server() -> GrpcServer:
        servicer = OrderIntakeServicer(pool.pool, GrpcAccess(settings.callers), accounts=accounts, builder=builder)
        binding = bind(intake_service_pb2, intake_service_pb2_grpc, "OrderIntakeService", servicer)
        reconciliation = bind(
            reconciliation_pb2,
            reconciliation_pb2_grpc,
            "ReconciliationService",
            ReconciliationServicer(pool.pool, reconciler(), GrpcAccess(settings.callers), settings.reconcile),
        )
        operations = operations_bindings(
            platform, pool.pool, GrpcAccess(settings.callers), IntakeHistory(), IntakeHealth()
        )
        # Resubmitted bodies take the webhook's own ingest path, with the webhook's writer.
        ingest = WebhookIngest(tenants, writer.component, builder)
        receipts = bind(
            webhook_receipts_pb2,
            webhook_receipts_pb2_grpc,
            "WebhookReceiptService",
            WebhookReceiptServicer(pool.pool, GrpcAccess(settings.callers), registry, ingest),
        )
        return GrpcServer(
            [binding, reconciliation, receipts, *operations],
            port=platform.grpc_port,
            health=health,
            tls=platform.grpc_server_tls,
        )

    def pull_scheduler() -> PullScheduler:
        return PullScheduler(
            pool.pool, tenants, accounts, writer.component, builder, owner=owner, settings=settings.pull
        )

    def handover_consumer() -> BatchConsumer:
        handler = OrderDispatchedConsumer(pool.pool, group=platform.consumer_group)
        return service_consumer(platform, DISPATCH_TOPIC, handler.handle, pool.pool)

    # Failed-import mails are queued whatever the SMTP settings; sent only when a server is set.
    mail_sender = []
    if settings.smtp is not None:
        mailer = SmtpMailer(settings.smtp)
        mail_sender.append(LazyComponent(lambda: ImportMailSender(lambda: pool.pool, mailer, registry, settings.mail)))

    return ComponentGroup(
        [
            pool,
            *metrics.metrics_components(platform, pool, _samples(tenants, registry)),
            producer,
            relay,
            health,
            Housekeeper(pool),
            watcher,
            writer,
            accounts,
            LazyComponent(pull_scheduler),
            LazyComponent(
                lambda: ReconcileScheduler(pool.pool, reconciler(), owner=owner, settings=settings.reconcile)
            ),
            LazyComponent(handover_consumer),
            *mail_sender,
            LazyComponent(grpc_server),
            LazyComponent(http_server),
        ]
    )
