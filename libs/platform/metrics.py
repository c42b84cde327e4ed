"""Prometheus metrics: the catalogue every service exposes, its /metrics server, the gauge sampler.

Every metric is defined here, once, on prometheus_client's default registry (which also carries
the process and Python collectors), so the alert rules and the dashboard have one place to read
names and labels from. Label values are bounded by configuration, never by traffic: connectors,
services, outcomes and reason codes are constants of the code; topics, partitions and groups are
the deployment's; tenant and account appear only on the per-connection gauges, bounded by the
tenants file. No order id, customer or message text is ever a label.

Counters and histograms are updated where things happen (one `inc` per order or call: cheap).
Gauges that need a database read come from one `MetricsSampler` per service that runs a few cheap
queries every ORDERSYNC_METRICS_SAMPLE_S; a scrape never touches the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase

from libs.platform.outage import OutageLog
from libs.platform.worker import PollingWorker

log = logging.getLogger(__name__)

# Seconds to hours: an order normally crosses in seconds, a held or retried one in hours.
END_TO_END_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, float("inf"))
# External calls: tens of milliseconds to the 10 s read timeout and a little beyond.
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf"))

KAFKA_CONSUMER_LAG = Gauge(
    "ordersync_kafka_consumer_lag",
    "Messages a consumer group has still to read on a partition (highwater - position), per batch."
    " Bounded: the deployment's groups, topics and partitions.",
    ["group", "topic", "partition"],
)
OUTBOX_BACKLOG = Gauge(
    "ordersync_outbox_backlog_events", "Events written to this service's outbox and not yet published to Kafka."
)
OUTBOX_OLDEST_AGE = Gauge(
    "ordersync_outbox_oldest_event_age_seconds", "Age of the oldest unpublished outbox event (0 when none)."
)
WORK_QUEUE_ITEMS = Gauge(
    "ordersync_work_queue_items",
    "Rows of a leased work queue per status still to act on (queue: dispatches, writebacks, import_mails)."
    " Bounded: the code's queues and statuses.",
    ["queue", "status"],
)
ORDER_OUTCOMES = Counter(
    "ordersync_order_outcomes",
    "What a service did with an order (intake: accepted/invalid/not_imported/duplicate; routing: route/"
    "not_required/not_sent; dispatch: sent/failed/retry; writeback: written/failed/blocked)."
    " Bounded: services, connectors, outcomes and reason codes are constants of the code.",
    ["service", "connector", "outcome", "reason_code"],
)
EXTERNAL_REQUEST_DURATION = Histogram(
    "ordersync_external_request_duration_seconds",
    "Every HTTP attempt to a channel or provider, by connector, method and status class"
    " (2xx..5xx, or error when no answer came). Bounded: connectors and HTTP methods.",
    ["connector", "method", "status_class"],
    buckets=REQUEST_BUCKETS,
)
EXTERNAL_RATE_LIMITED = Counter(
    "ordersync_external_rate_limited", "HTTP 429 answers from a channel or provider.", ["connector"]
)
RATE_BUDGET_REMAINING = Gauge(
    "ordersync_rate_budget_remaining",
    "Tokens left in a shared request budget after the last take (budget: the vendor scope, the"
    " bucket last used). Bounded: vendors.",
    ["budget"],
)
WEBHOOKS = Counter(
    "ordersync_webhooks",
    "Webhooks and provider notices received, by outcome (accepted, duplicate, unauthenticated, malformed,"
    " too_large, invalid, ...). Bounded: connectors and the code's refusal reasons.",
    ["connector", "outcome"],
)


class _KeptGauge:
    """A labelled gauge registered without describing itself.

    `ordersync_dead_letters` (gauge) and `ordersync_dead_letters_total` (counter) are both in the
    catalogue; prometheus_client's registry reserves a counter's base name too, so a plain Gauge
    of that name is refused. This collector exposes the gauge family all the same (the text
    format has no clash: the counter's TYPE line is ordersync_dead_letters_total).
    """

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]):
        self._name = name
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        REGISTRY.register(self)

    def describe(self) -> list:
        return []  # nothing reserved in the registry: see the class docstring

    def labels(self, *values: str) -> _KeptGaugeChild:
        return _KeptGaugeChild(self._values, tuple(values))

    def value(self, *labels: str) -> float | None:
        """The series' value, or None when it was never set (tests)."""
        return self._values.get(tuple(labels))

    def collect(self):
        family = GaugeMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for labels, value in list(self._values.items()):
            family.add_metric(list(labels), value)
        yield family


@dataclass(frozen=True)
class _KeptGaugeChild:
    values: dict[tuple[str, ...], float]
    key: tuple[str, ...]

    def set(self, value: float) -> None:
        self.values[self.key] = value


DEAD_LETTERS = _KeptGauge(
    "ordersync_dead_letters", "Dead letters kept and not yet replayed, by source (consumer, outbox).", ["source"]
)
DEAD_LETTERS_TOTAL = Counter(
    "ordersync_dead_letters", "Messages moved to dead_letters, by source and topic.", ["source", "topic"]
)
DEAD_LETTER_REPLAYS = Counter(
    "ordersync_dead_letter_replays",
    "Dead letters an operator asked to replay, by outcome (replayed, already_replayed, not_replayable).",
    ["outcome"],
)
ORDER_HANDOVER = Histogram(
    "ordersync_order_handover_seconds",
    "From the order's acceptance to the provider accepting it, observed in dispatch. Bounded: providers.",
    ["provider"],
    buckets=END_TO_END_BUCKETS,
)
SHIPMENT_WRITEBACK = Histogram(
    "ordersync_shipment_writeback_seconds",
    "From the shipment at the provider to its writeback to the channel, observed in writeback. Bounded: channels.",
    ["channel"],
    buckets=END_TO_END_BUCKETS,
)
OLDEST_UNSENT_ORDER_AGE = Gauge(
    "ordersync_oldest_unsent_order_age_seconds",
    "Age of the oldest routed order not yet at its provider, per provider account (0 when none)."
    " Bounded: the tenants file's accounts.",
    ["tenant", "provider_account"],
)
OLDEST_UNWRITTEN_SHIPMENT_AGE = Gauge(
    "ordersync_oldest_unwritten_shipment_age_seconds",
    "Age of the oldest shipment not yet written back, per channel account (0 when none)."
    " Bounded: the tenants file's accounts.",
    ["tenant", "channel_account"],
)
POLL_CURSOR_AGE = Gauge(
    "ordersync_poll_cursor_age_seconds",
    "Time since a pulled channel account was last polled successfully. Bounded: the tenants file's accounts.",
    ["tenant", "account"],
)
CONNECTION_CONSECUTIVE_FAILURES = Gauge(
    "ordersync_connection_consecutive_failures",
    "Consecutive failed attempts of a connection (a pulled channel, a provider or channel account); the"
    " connection is never disabled and its backlog is kept. Bounded: the tenants file's accounts.",
    ["tenant", "account"],
)
RECONCILE_FINDINGS = Counter(
    "ordersync_reconcile_findings",
    "Reconciliation findings, by kind and outcome (healed, reported).",
    ["kind", "outcome"],
)
RECONCILE_LAST_RUN = Gauge(
    "ordersync_reconcile_last_run_timestamp_seconds",
    "When reconciliation last finished for an account (Unix time). Bounded: the tenants file's accounts.",
    ["tenant", "account"],
)
CARRIER_TRANSLATIONS = Counter(
    "ordersync_carrier_translations",
    "Carrier codes translated by carrier mapping, by RPC (TranslateCode, BatchTranslateCodes).",
    ["rpc"],
)

# A failing connection is logged at ERROR when its count reaches one of these, then every 100.
FAILURE_LOG_THRESHOLDS = (3, 10, 50, 100)


def status_class(status: int | None) -> str:
    """'2xx' .. '5xx' for an HTTP status, 'error' when no answer came (timeout, broken connection)."""
    return "error" if status is None else f"{status // 100}xx"


def report_connection_failures(logger: logging.Logger, tenant: str, account: str, failures: int) -> None:
    """Set the connection's failure gauge and, at the thresholds, log loudly naming it.

    A connection that keeps failing is never disabled: its work stays queued and is retried, so
    the operator must be told, once per threshold (not once per attempt, which would flood logs).
    """
    CONNECTION_CONSECUTIVE_FAILURES.labels(tenant, account).set(failures)
    if failures in FAILURE_LOG_THRESHOLDS or (failures > 100 and failures % 100 == 0):
        logger.error(
            "connection keeps failing; it stays enabled and its backlog is kept",
            extra={"fields": {"tenant": tenant, "account": account, "consecutive_failures": failures}},
        )


class ConnectionFailures:
    """Counts each connection's failed attempts in a row, in this process, and reports them.

    For connections whose failures are not counted in the database (provider accounts at
    dispatch, channel accounts at writeback); a success resets the count and the gauge. A
    connection's series appears at its first attempt, so a dashboard shows it before trouble.
    """

    def __init__(self, logger: logging.Logger):
        self._logger = logger
        self._counts: dict[tuple[str, str], int] = {}

    def failed(self, tenant: str, account: str) -> None:
        count = self._counts.get((tenant, account), 0) + 1
        self._counts[(tenant, account)] = count
        report_connection_failures(self._logger, tenant, account, count)

    def succeeded(self, tenant: str, account: str) -> None:
        if self._counts.get((tenant, account)) != 0:
            self._counts[(tenant, account)] = 0
            CONNECTION_CONSECUTIVE_FAILURES.labels(tenant, account).set(0)


class MetricsServer:
    """Serves GET /metrics (prometheus_client's exposition of the default registry) on its own port."""

    def __init__(self, *, port: int, host: str = "0.0.0.0"):
        self._host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self._host, self.port).start()
        self.port = runner.addresses[0][1]
        self._runner = runner
        log.info("metrics serving", extra={"fields": {"port": self.port}})

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


@dataclass
class SampledGauge:
    """One cheap query whose rows set a gauge: label values first, the value last.

    A series the query no longer returns (a queue drained, a connection caught up) is set to 0
    rather than left at its last value; `known` names series that must exist even before any
    row does (the tenants file's connections), so a dashboard sees them from the start.
    """

    gauge: Gauge | _KeptGauge
    sql: str
    known: Callable[[], Iterable[tuple[str, ...]]] | None = None
    _seen: set[tuple[str, ...]] = field(default_factory=set)

    def apply(self, rows: Sequence[Any]) -> None:
        values = {tuple(str(v) for v in row[:-1]): float(row[-1] or 0) for row in rows}
        if self.known is not None:
            for labels in self.known():
                values.setdefault(tuple(labels), 0.0)
        for labels in self._seen - values.keys():
            values[labels] = 0.0
        for labels, value in values.items():
            if labels:
                self.gauge.labels(*labels).set(value)
            else:
                assert isinstance(self.gauge, Gauge), "an unlabelled sample needs a plain Gauge"
                self.gauge.set(value)
        self._seen = set(values)


class MetricsSampler:
    """Runs each sample's query every `interval_s` and sets its gauge.

    A failing query is logged once (OutageLog) and its gauge keeps its last values, so an outage
    of the database shows as stale gauges, not as a flood of logs or a crash; other queries go on.
    """

    def __init__(self, pool: Callable[[], asyncpg.Pool], samples: Sequence[SampledGauge], *, interval_s: float):
        self._pool = pool
        self._samples = list(samples)
        self._outages = [OutageLog(log, "metrics sample", fields={"metric": s.gauge._name}) for s in self._samples]
        self._worker = PollingWorker("metrics-sampler", self._sample_all_once, idle_s=interval_s)

    async def sample_once(self) -> None:
        """Run every query once (the worker does this every interval; tests call it directly)."""
        await self._sample_all_once()

    async def _sample_all_once(self) -> int:
        for sample, outage in zip(self._samples, self._outages, strict=True):
            try:
                async with self._pool().acquire() as conn:
                    rows = await conn.fetch(sample.sql)
                sample.apply(rows)
                outage.recovered()
            except Exception as exc:
                outage.failed(exc)
        return 0  # never "busy": the worker waits the full interval between passes

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()


def platform_samples() -> list[SampledGauge]:
    """The gauges every service's schema answers: outbox backlog and age, dead letters kept."""
    return [
        SampledGauge(OUTBOX_BACKLOG, "SELECT count(*) FROM outbox"),
        SampledGauge(OUTBOX_OLDEST_AGE, "SELECT extract(epoch FROM now() - min(created_at)) FROM outbox"),
        # A replayed dead letter no longer counts (libs/platform/dead_letters.py marks it).
        SampledGauge(
            DEAD_LETTERS,
            "SELECT s.source, count(d.id) FROM (VALUES ('consumer'), ('outbox')) AS s(source)"
            " LEFT JOIN dead_letters d ON d.source = s.source AND d.replayed_at IS NULL GROUP BY s.source",
        ),
    ]


def work_queue_sample(queue: str, statuses: Sequence[str]) -> SampledGauge:
    """Rows of `queue` (a table name, a constant of the code) in each of `statuses` (still to act on)."""
    in_list = ", ".join(f"'{s}'" for s in statuses)  # constants of the code, as in work_queue.QueueTable
    return SampledGauge(
        WORK_QUEUE_ITEMS,
        f"SELECT '{queue}', status, count(*) FROM {queue} WHERE status IN ({in_list}) GROUP BY status",
        known=lambda: [(queue, s) for s in statuses],
    )


def metrics_components(settings, pool, samples: Sequence[SampledGauge] = ()) -> list:
    """The /metrics server and the sampler (platform gauges plus the service's `samples`) for a
    service's ComponentGroup; place them after its PoolComponent `pool`."""
    sampler = MetricsSampler(lambda: pool.pool, [*platform_samples(), *samples], interval_s=settings.metrics_sample_s)
    return [MetricsServer(port=settings.metrics_port), sampler]


def tenant_accounts(tenants, connector_kind: Callable[[str], bool]) -> Callable[[], list[tuple[str, str]]]:
    """The (tenant, account) pairs of the tenants file whose connector `connector_kind` accepts,
    read at each sample (the file reloads): the series a per-connection gauge always has."""

    def known() -> list[tuple[str, str]]:
        return [
            (tenant.tenant_id, account.name)
            for tenant in tenants
            for account in tenant.accounts.values()
            if connector_kind(account.connector)
        ]

    return known


def record_reconcile_run(tenant_id: str, account: str, finished_at: float, outcomes: list[tuple[str, str]]) -> None:
    """Count a real reconciliation run's findings, as (kind, outcome) pairs, and stamp its account's last run."""
    for kind, outcome in outcomes:
        RECONCILE_FINDINGS.labels(kind=kind, outcome=outcome).inc()
    RECONCILE_LAST_RUN.labels(tenant=tenant_id, account=account).set(finished_at)


def catalogue() -> frozenset[str]:
    """The names of every metric this module defines, as exported (counters with _total)."""
    names = set()
    for value in globals().values():
        if isinstance(value, MetricWrapperBase | _KeptGauge):
            for family in value.collect():
                names.add(family.name + ("_total" if family.type == "counter" else ""))
    return frozenset(names)
