"""Reconciliation's shared machinery: findings and runs, their tables, the schedule and the gRPC API.

Two services reconcile, each its own side of a connection: order intake the channel accounts
(orders the channel has that intake never received), fulfillment dispatch the provider accounts
(orders sent but missing at the provider, shipments there never recorded). Each implements a
`Reconciler` (what its accounts are, and one run over one account) as an `AccountReconciler`
(which connectors it reconciles, how an account opens, the comparison); this module holds what
both need:

- `Finding` and `RunReport`, stored in the service's `reconcile_runs` table (migration intake 0006,
  dispatch 0010, the same shape in each schema) and counted in libs.platform.metrics;
- `ReconcileScheduler`: one row per (tenant, account) in `reconcile_schedules`, leased by one
  replica at a time (`FOR UPDATE SKIP LOCKED`, as pull cursors and account schedules are), run every
  `ReconcileSettings.interval_s` over the last `window_s`;
- `ReconciliationServicer`: `ordersync.ops.v1.ReconciliationService` over a Reconciler.

Healing is re-driving through the path the lost message would have taken (intake's revision
writer, dispatch's send queue and shipment recorder), each deduplicated there, so two runs at once
(a scheduled one and an operator's) or a run repeated change nothing the first did not.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
import grpc
from google.protobuf import timestamp_pb2
from ordersync.ops.v1 import reconciliation_pb2 as pb
from ordersync.ops.v1 import reconciliation_pb2_grpc as pb_grpc

from libs.platform import metrics
from libs.platform.accounts import AccountClients, AccountNotConfigured, OpenAccount
from libs.platform.auth import OPERATOR, READ, GrpcAccess
from libs.platform.config import env_float
from libs.platform.tenants import TenantDirectory
from libs.platform.worker import PollingWorker

log = logging.getLogger(__name__)

HEALED, REPORTED, WOULD_HEAL = "healed", "reported", "would_heal"
UNREACHABLE = "unreachable"  # the finding kind of an account that could not be read
MIN_WINDOW_S = 60.0
MAX_WINDOW_S = 31 * 24 * 3600.0
_OUTCOMES = {
    HEALED: pb.FINDING_OUTCOME_HEALED,
    REPORTED: pb.FINDING_OUTCOME_REPORTED,
    WOULD_HEAL: pb.FINDING_OUTCOME_WOULD_HEAL,
}


@dataclass(frozen=True)
class ReconcileSettings:
    """How often each account is reconciled, over how long a window, and the lease of a run."""

    interval_s: float = 3600.0
    window_s: float = 48 * 3600.0
    lease_s: float = 900.0
    scan_s: float = 30.0

    @classmethod
    def from_env(cls, prefix: str) -> ReconcileSettings:
        """`{prefix}_RECONCILE_S` (e.g. ORDERSYNC_INTAKE_RECONCILE_S) and the shared
        ORDERSYNC_RECONCILE_WINDOW_H."""
        return cls(
            interval_s=env_float(f"{prefix}_RECONCILE_S", cls.interval_s),
            window_s=env_float("ORDERSYNC_RECONCILE_WINDOW_H", cls.window_s / 3600.0) * 3600.0,
        )


@dataclass(frozen=True)
class Window:
    """The span of time compared: orders changed (channel) or sent (provider) in [since, until]."""

    since: datetime
    until: datetime

    @classmethod
    def last(cls, seconds: float) -> Window:
        until = datetime.now(UTC)
        return cls(until - timedelta(seconds=seconds), until)


@dataclass(frozen=True)
class Finding:
    """One difference found and what was done: `outcome` healed, reported or would_heal (dry run)."""

    kind: str
    outcome: str
    reason: str
    order_id: str = ""
    channel_order_id: str = ""
    order_number: str = ""


@dataclass
class RunReport:
    """One run over one account."""

    tenant_id: str
    account: str
    service: str
    trigger: str  # scheduled | on_demand
    dry_run: bool
    window: Window
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    compared: int = 0
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    @property
    def unhealed(self) -> int:
        return sum(1 for f in self.findings if f.outcome == REPORTED)


class Reconciler(Protocol):
    """One service's side of reconciliation."""

    service: str

    def accounts(self, tenant_id: str) -> list[str]:
        """The tenant's accounts this service reconciles (none for an unknown tenant)."""
        ...

    def schedule(self) -> list[tuple[str, str, str]]:
        """Every (tenant, account, connector) to reconcile on the schedule."""
        ...

    async def run(self, report: RunReport) -> None:
        """Compare the report's account over its window, heal unless a dry run, add findings.
        An account that cannot be read adds an UNREACHABLE finding rather than raising."""
        ...


class AccountReconciler(ABC):
    """A Reconciler over the tenants' connector accounts, what intake's and dispatch's share: the
    accounts reconciled are those whose connector `reconciles` accepts, and a run opens the
    report's account (one not configured is an UNREACHABLE finding) and hands it to `compare`."""

    service: str

    def __init__(self, pool: asyncpg.Pool, tenants: TenantDirectory, accounts: AccountClients):
        self._pool = pool
        self._tenants = tenants
        self._accounts = accounts

    def accounts(self, tenant_id: str) -> list[str]:
        return accounts_of(self.schedule(), tenant_id)

    def schedule(self) -> list[tuple[str, str, str]]:
        return reconcilable_accounts(self._tenants, self._accounts.registry, self.reconciles)

    async def run(self, report: RunReport) -> None:
        try:
            opened = await self.open(report.tenant_id, report.account)
        except AccountNotConfigured as exc:
            report.add(Finding(UNREACHABLE, REPORTED, f"account not configured: {exc}"))
            return
        await self.compare(report, opened)

    @abstractmethod
    def reconciles(self, connector: object) -> bool:
        """Whether this service reconciles accounts of `connector` (its kind and capability)."""

    @abstractmethod
    async def open(self, tenant_id: str, account: str) -> OpenAccount:
        """The tenant's account with its client; AccountNotConfigured when there is none."""

    @abstractmethod
    async def compare(self, report: RunReport, opened: OpenAccount) -> None:
        """Compare the opened account over the report's window, heal unless a dry run, add findings."""


async def reconcile(pool: asyncpg.Pool, reconciler: Reconciler, report: RunReport) -> RunReport:
    """Run one account, then store the run and, for a real run, count it in the metrics."""
    await reconciler.run(report)
    report.finished_at = datetime.now(UTC)
    await store_run(pool, report)
    if not report.dry_run:
        metrics.record_reconcile_run(
            report.tenant_id,
            report.account,
            report.finished_at.timestamp(),
            [(f.kind, f.outcome) for f in report.findings],
        )
    if report.findings:
        log.info(
            "reconciliation found differences",
            extra={
                "fields": {
                    "tenant_id": report.tenant_id,
                    "account": report.account,
                    "findings": len(report.findings),
                    "unhealed": report.unhealed,
                    "dry_run": report.dry_run,
                }
            },
        )
    return report


# ---- storage (the same tables in each reconciling service's schema) ----------------------------


async def store_run(pool: asyncpg.Pool, report: RunReport) -> None:
    await pool.execute(
        "INSERT INTO reconcile_runs (tenant_id, account, trigger, dry_run, window_start, window_end,"
        " started_at, finished_at, compared, findings) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)",
        report.tenant_id,
        report.account,
        report.trigger,
        report.dry_run,
        report.window.since,
        report.window.until,
        report.started_at,
        report.finished_at,
        report.compared,
        json.dumps([asdict(f) for f in report.findings]),
    )


async def list_runs(pool: asyncpg.Pool, service: str, tenant_id: str, limit: int) -> list[RunReport]:
    rows = await pool.fetch(
        "SELECT * FROM reconcile_runs WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2", tenant_id, limit
    )
    return [
        RunReport(
            tenant_id=row["tenant_id"],
            account=row["account"],
            service=service,
            trigger=row["trigger"],
            dry_run=row["dry_run"],
            window=Window(row["window_start"], row["window_end"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            compared=row["compared"],
            findings=[Finding(**f) for f in json.loads(row["findings"])],
        )
        for row in rows
    ]


async def ensure_rows(pool: asyncpg.Pool, accounts: Sequence[tuple[str, str, str]], first_in_s: float) -> None:
    """A schedule row for every configured (tenant, account, connector) without one, first due
    in `first_in_s`: a new account has no past to compare yet."""
    if accounts:
        await pool.executemany(
            "INSERT INTO reconcile_schedules (tenant_id, account, connector, next_run_at)"
            " VALUES ($1, $2, $3, now() + make_interval(secs => $4)) ON CONFLICT (tenant_id, account) DO NOTHING",
            [(*account, first_in_s) for account in accounts],
        )


async def claim_due(
    pool: asyncpg.Pool, owner: str, lease_s: float, limit: int, accounts: Sequence[tuple[str, str, str]]
) -> list[tuple[str, str]]:
    """Lease up to `limit` due rows of the configured accounts that nobody holds."""
    if limit <= 0 or not accounts:
        return []
    tenants, names, _ = (list(column) for column in zip(*accounts, strict=True))
    rows = await pool.fetch(
        """
        UPDATE reconcile_schedules s
           SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
          FROM (SELECT tenant_id, account FROM reconcile_schedules
                 WHERE next_run_at <= now() AND (lease_until IS NULL OR lease_until < now())
                   AND (tenant_id, account) IN (SELECT * FROM unnest($4::text[], $5::text[]))
                 ORDER BY next_run_at LIMIT $3
                 FOR UPDATE SKIP LOCKED) due
         WHERE s.tenant_id = due.tenant_id AND s.account = due.account
        RETURNING s.tenant_id, s.account
        """,
        owner,
        lease_s,
        limit,
        tenants,
        names,
    )
    return [(row["tenant_id"], row["account"]) for row in rows]


async def release(pool: asyncpg.Pool, key: tuple[str, str], owner: str, next_in_s: float, error: str) -> None:
    """Give back a lease, next due in `next_in_s`; fenced, so a replica that lost it changes nothing."""
    await pool.execute(
        "UPDATE reconcile_schedules SET lease_owner = NULL, lease_until = NULL,"
        " next_run_at = now() + make_interval(secs => $4), last_run_at = now(), last_error = $5"
        " WHERE tenant_id = $1 AND account = $2 AND lease_owner = $3",
        *key,
        owner,
        next_in_s,
        error,
    )


# ---- the schedule ------------------------------------------------------------------------------


def reconcilable_accounts(tenants: Iterable, registry, accepts: Callable[[object], bool]) -> list[tuple[str, str, str]]:
    """Every (tenant, account, connector) of the tenants file whose registered connector `accepts`
    says this service reconciles (a Reconciler's schedule)."""
    found = []
    for tenant in tenants:
        for account in tenant.accounts.values():
            connector = registry.get(account.connector) if account.connector in registry else None
            if connector is not None and accepts(connector):
                found.append((tenant.tenant_id, account.name, account.connector))
    return found


def accounts_of(schedule: Sequence[tuple[str, str, str]], tenant_id: str) -> list[str]:
    """The accounts of `tenant_id` in a schedule of (tenant, account, connector)."""
    return [account for tenant, account, _ in schedule if tenant == tenant_id]


class ReconcileScheduler:
    """Runs each account's reconciliation every `interval_s`, one replica at a time; a component.

    A run is short next to its lease (a window's orders, paced by the account's rate budget); a
    run outliving its lease may overlap another replica's, which is harmless (healing dedupes).
    """

    def __init__(
        self, pool: asyncpg.Pool, reconciler: Reconciler, *, owner: str, settings: ReconcileSettings | None = None
    ):
        self._pool = pool
        self._reconciler = reconciler
        self._owner = owner
        self._settings = settings or ReconcileSettings()
        self._worker = PollingWorker(f"{reconciler.service}-reconciler", self.run_once, idle_s=self._settings.scan_s)

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    async def run_once(self) -> int:
        """Lease the due accounts and reconcile each; return how many ran."""
        configured = self._reconciler.schedule()
        await ensure_rows(self._pool, configured, self._settings.interval_s)
        due = await claim_due(self._pool, self._owner, self._settings.lease_s, 4, configured)
        for key in due:
            error = ""
            started = time.monotonic()
            try:
                report = RunReport(
                    *key, self._reconciler.service, "scheduled", False, Window.last(self._settings.window_s)
                )
                await reconcile(self._pool, self._reconciler, report)
                error = "; ".join(f.reason for f in report.findings if f.kind == UNREACHABLE)
            except Exception as exc:  # the next run tries again; the row shows why
                log.warning("reconciliation run failed", exc_info=True, extra={"fields": {"account": key[1]}})
                error = f"{type(exc).__name__}"
            log.info(
                "reconciliation run done",
                extra={"fields": {"tenant_id": key[0], "account": key[1], "s": round(time.monotonic() - started, 2)}},
            )
            await release(self._pool, key, self._owner, self._settings.interval_s, error)
        return 0  # scanning again after scan_s is soon enough for an hourly schedule


# ---- the gRPC API ------------------------------------------------------------------------------


class ReconciliationServicer(pb_grpc.ReconciliationServiceServicer):
    """ReconciliationService over one service's Reconciler: a dry run needs the tenant granted,
    a run that heals the operator role."""

    def __init__(self, pool: asyncpg.Pool, reconciler: Reconciler, access: GrpcAccess, settings: ReconcileSettings):
        self._pool = pool
        self._reconciler = reconciler
        self._access = access
        self._settings = settings

    async def Reconcile(self, request: pb.ReconcileRequest, context: grpc.aio.ServicerContext) -> pb.ReconcileResponse:
        await self._access.require(context, request.tenant_id, READ if request.dry_run else OPERATOR)
        window_s = self._settings.window_s
        if request.HasField("window"):
            window_s = request.window.ToTimedelta().total_seconds()
            if not MIN_WINDOW_S <= window_s <= MAX_WINDOW_S:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"window must be between {MIN_WINDOW_S:.0f} s and {MAX_WINDOW_S / 86400:.0f} days",
                )
        accounts = self._reconciler.accounts(request.tenant_id)
        if request.account:
            if request.account not in accounts:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"tenant {request.tenant_id!r} has no account {request.account!r} that"
                    f" {self._reconciler.service} reconciles",
                )
            accounts = [request.account]
        window = Window.last(window_s)
        runs = []
        for account in accounts:
            report = RunReport(
                request.tenant_id, account, self._reconciler.service, "on_demand", request.dry_run, window
            )
            runs.append(run_to_proto(await reconcile(self._pool, self._reconciler, report)))
        return pb.ReconcileResponse(runs=runs)

    async def ListReconciliationRuns(
        self, request: pb.ListReconciliationRunsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListReconciliationRunsResponse:
        await self._access.require(context, request.tenant_id)
        if not 0 <= request.page_size <= 200:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be between 0 and 200")
        runs = await list_runs(self._pool, self._reconciler.service, request.tenant_id, request.page_size or 20)
        return pb.ListReconciliationRunsResponse(runs=[run_to_proto(r) for r in runs])


def run_to_proto(report: RunReport) -> pb.ReconciliationRun:
    return pb.ReconciliationRun(
        tenant_id=report.tenant_id,
        account=report.account,
        service=report.service,
        trigger=report.trigger,
        dry_run=report.dry_run,
        window_start=_timestamp(report.window.since),
        window_end=_timestamp(report.window.until),
        started_at=_timestamp(report.started_at),
        finished_at=_timestamp(report.finished_at) if report.finished_at else None,
        compared=report.compared,
        findings=[
            pb.Finding(
                kind=f.kind,
                order_id=f.order_id,
                channel_order_id=f.channel_order_id,
                order_number=f.order_number,
                outcome=_OUTCOMES[f.outcome],
                reason=f.reason,
                account=report.account,
            )
            for f in report.findings
        ],
    )


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
