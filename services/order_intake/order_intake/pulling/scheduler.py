"""Pull intake: polls every pulled channel account, one replica at a time, page by page from a cursor.

Each (tenant, account) whose connector has Capability.PULL_ORDERS has a row in `pull_cursors`.
The PullScheduler of every replica looks for due rows and leases the ones nobody holds
(`FOR UPDATE SKIP LOCKED`, so replicas never wait on each other); the holder polls the account
and releases the row with its next poll time. A lease row rather than a Postgres advisory lock,
because:
- the lease fences writes, not just polling: each page commits inside a transaction that first
  locks the row *if this replica still holds the lease* (`storage.pulls.hold`), so a replica that
  stalled past its lease and was taken over cannot move the cursor or record the page;
- an advisory lock lives as long as one database session: it would pin a pooled connection per
  account for the whole poll, and would vanish silently with that connection while the poller
  went on fetching;
- the row is what operators look at anyway: who polls, until when, the cursor, the failures, the
  last error, the next poll.

One poll, for a leased account:
1. acknowledge what earlier polls committed but could not acknowledge (`unacknowledged`);
2. fetch the page after the cursor (`connector.fetch_page`);
3. build each record's revision as a webhook's is built (order_intake.revisions), and commit the
   revisions, their outbox events and the new cursor in one transaction (RevisionWriter.commit_page);
4. only then acknowledge the page's committed orders (Capability.ACKNOWLEDGE). Their
   (order_id, ack_token) were queued in `unacknowledged` in the same transaction; a failed
   acknowledgement is logged, shown in `last_error`, and repeated at the start of the next poll,
   so a channel may hear of an order twice (acknowledging is idempotent at the channel);
5. `page.more`: fetch the next page at once; otherwise release with the next poll in
   `Account.poll_interval_s`. An error releases with an exponential backoff with jitter, counted
   in `failures`, the error in `last_error`.

When an account is acknowledged is its connector's choice (`acknowledge_when(settings)`):
- AckMoment.ON_COMMIT: as above.
- AckMoment.ON_HANDOVER: for a channel that stops listing an acknowledged order (CommerceInterface's
  mark_exported), so it is told only once the provider accepted the order. The page's transaction
  records each order's (order_id, ack_token) in `handover_acks` instead (one row per order; a newer
  revision's token replaces the old one); intake's consumer of dispatch.orders.v1 marks a row handed
  over at OrderDispatched (consumers/handovers.py) and brings the account's poll forward; the poller
  acknowledges the handed-over rows at the start of each poll and after each page. A failed
  create is never acknowledged. A crash anywhere between the provider's create and the
  acknowledgement loses nothing: until acknowledged the channel keeps listing the order, which
  dedupes as the same revision, and the handed-over row is acknowledged by the next poll.
- AckMoment.NEVER: nothing is queued or sent; the orders keep coming back and dedupe.

Sync results (Capability.SYNC_RESULTS): the channel wants the provider's answer for each order.
The same handover row is written with the page (`report_results`); the consumer records
OrderDispatched as accepted with the provider's reference and OrderDispatchFailed as refused
with its reason (a later acceptance replaces a refusal and is told again). The poller reports
the results the channel has not been told (`connector.report_sync_results`) at the start of each
poll and after each page, as it acknowledges; a failure is logged, shown in `last_error` and
retried at the next poll, and a crash between the report and its bookkeeping reports it again
(the connector's report is safe to repeat).

Locked after sync (ConnectorInfo.locked_after_handover): each revision carries the channel's
SyncLock, so the writer records a change of an order the provider already accepted as
`locked_after_sync`, with the operator's message, instead of publishing it (storage.orders).

Import delay (`Account.import_delay_s`): an order placed less than that long ago is left out of
the commit, and the cursor does not move past the page holding it (the cursor is the channel's,
opaque, so it cannot stop midway); the page's older orders are committed, and fetched again
next time they dedupe as duplicates. The account is polled again when the youngest held order is
old enough (or at its poll interval, if sooner). An order without a placed time is not held.

A lease is renewed while its poll runs (every third of `lease_s`); a poll whose lease is lost
stops. A replica that stops or dies mid-page commits nothing; another replica resumes from the
committed cursor once the lease has expired, and the dedupe key makes a page fetched twice
harmless.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg
from google.protobuf import json_format
from opentelemetry import trace
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import (
    AckMoment,
    Capability,
    ChannelConnector,
    Ignored,
    OrderPage,
    ParsedOrder,
    SyncResult,
)
from libs.connectors.base.errors import ConnectorError, redact
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients, AccountNotConfigured, OpenAccount
from libs.platform.db import PgConnection
from libs.platform.tenants import Account, TenantDirectory
from libs.platform.worker import PollingWorker
from order_intake.domain.intake import SyncLock
from order_intake.revisions import RevisionBuilder
from order_intake.storage import pulls
from order_intake.storage.orders import Recorded, Revision, RevisionWriter
from order_intake.storage.pulls import AccountKey, Lease, LeaseLost, PendingAck, PendingResult

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

# Revisions the channel may be told are committed; refused ones (malformed, too_large) are kept
# as receipts only, so the channel keeps them as not taken.
_COMMITTED = frozenset({"accepted", "invalid", "unchanged", "duplicate", "stale", "locked_after_sync"})
# Outcomes of a revision taken for the first time, counted in orders_pulled.
_NEW = frozenset({"accepted", "invalid", "unchanged", "stale", "locked_after_sync"})
_ENSURE_EVERY_S = 60.0
# Handed-over orders acknowledged (or sync results reported) per call to the channel.
_HANDOVER_ACK_BATCH = 100


@dataclass(frozen=True)
class PullSettings:
    """How the scheduler leases, polls and backs off.

    Attributes:
        lease_s: how long a lease lasts unrenewed: how soon another replica takes over an account
            whose poller died or stopped.
        scan_s: how often the scheduler looks for due accounts.
        max_pollers: accounts this replica polls at once.
        backoff_base_s / backoff_max_s: the first and the longest wait after failed polls.
    """

    lease_s: float = 30.0
    scan_s: float = 1.0
    max_pollers: int = 8
    backoff_base_s: float = 5.0
    backoff_max_s: float = 600.0

    def backoff(self, failures_before: int) -> float:
        """The wait after a failed poll: doubling with each failure in a row, capped, jittered
        (so accounts failing together, at a vendor outage, do not retry together)."""
        delay = min(self.backoff_base_s * 2 ** min(failures_before, 30), self.backoff_max_s)
        return delay * random.uniform(0.5, 1.0)


@dataclass
class _PageResult:
    """What committing one page did: the cursor now, and how soon to poll again (None: as usual)."""

    cursor: str
    held_for_s: float | None
    to_acknowledge: list[tuple[PendingAck, ParsedOrder]] = field(default_factory=list)


class PullScheduler:
    """Keeps one poller per pulled channel account across replicas; a component (start/stop).

    `owner` names this replica in the leases it takes; it must differ between replicas.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        tenants: TenantDirectory,
        accounts: AccountClients,
        writer: RevisionWriter,
        builder: RevisionBuilder,
        *,
        owner: str,
        settings: PullSettings | None = None,
    ):
        self._pool = pool
        self._tenants = tenants
        self._accounts = accounts
        self._writer = writer
        self._builder = builder
        self._owner = owner
        self._settings = settings or PullSettings()
        self._worker = PollingWorker("intake-pull-scheduler", self._scan, idle_s=self._settings.scan_s)
        self._polls: dict[AccountKey, asyncio.Task] = {}
        self._known: frozenset[tuple[str, str, str]] = frozenset()
        self._ensured_at = 0.0

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        """Stop scanning and cancel running polls; their uncommitted pages are dropped and their
        leases expire, after which any replica resumes from the committed cursors. Safe twice."""
        await self._worker.stop()
        polls, self._polls = list(self._polls.values()), {}
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)

    # ---- scanning for due accounts -------------------------------------------------------------

    async def _scan(self) -> int:
        """One pass: forget finished polls, make rows for new accounts, lease and start due ones."""
        for key, task in list(self._polls.items()):
            if task.done():
                del self._polls[key]
        configured = list(self._pulled_accounts())
        # Rows are made when the accounts change, and again now and then, for a deleted one.
        if frozenset(configured) != self._known or time.monotonic() - self._ensured_at > _ENSURE_EVERY_S:
            await pulls.ensure_rows(self._pool, configured)
            self._known, self._ensured_at = frozenset(configured), time.monotonic()
        free = self._settings.max_pollers - len(self._polls)
        # Never a second poll of an account this replica still polls (its lease may have run out).
        idle = [c for c in configured if AccountKey(c[0], c[1]) not in self._polls]
        leases = await pulls.claim_due(self._pool, self._owner, self._settings.lease_s, free, idle)
        for lease in leases:
            self._polls[lease.key] = asyncio.create_task(
                self._run_lease(lease), name=f"intake-pull {lease.key.tenant_id}/{lease.key.account}"
            )
        return 0  # scan again after scan_s: polls run in their own tasks

    def _pulled_accounts(self) -> Iterator[tuple[str, str, str]]:
        registry = self._accounts.registry
        for tenant in self._tenants:
            for account in tenant.accounts.values():
                if account.connector not in registry:
                    continue
                connector = registry.get(account.connector)
                if isinstance(connector, ChannelConnector) and connector.info.can(Capability.PULL_ORDERS):
                    yield tenant.tenant_id, account.name, account.connector

    # ---- one leased account --------------------------------------------------------------------

    async def _run_lease(self, lease: Lease) -> None:
        """Poll under the lease, renewing it meanwhile; stop the poll if the lease is lost."""
        poll = asyncio.create_task(self._poll(lease))
        keeper = asyncio.create_task(self._keep_lease(lease.key, poll))
        try:
            await asyncio.wait({poll})
        finally:
            keeper.cancel()
            poll.cancel()
            await asyncio.gather(poll, keeper, return_exceptions=True)
        if poll.cancelled():
            log.warning("pull lease lost; another replica polls the account", extra={"fields": _fields(lease.key)})
        elif poll.exception() is not None:
            log.error("pull poll crashed", exc_info=poll.exception(), extra={"fields": _fields(lease.key)})

    async def _keep_lease(self, key: AccountKey, poll: asyncio.Task) -> None:
        while True:
            await asyncio.sleep(self._settings.lease_s / 3)
            try:
                held = await pulls.renew(self._pool, key, self._owner, self._settings.lease_s)
            except Exception:
                log.warning("could not renew a pull lease", exc_info=True, extra={"fields": _fields(key)})
                continue  # the commit's fence decides; try again
            if not held:
                poll.cancel()
                return

    async def _poll(self, lease: Lease) -> None:
        key = lease.key
        with _tracer.start_as_current_span("pull orders") as span:
            span.set_attribute("ordersync.tenant_id", key.tenant_id)
            try:
                opened = await self._accounts.channel(key.tenant_id, key.account)
                next_in, ack_error = await self._poll_pages(lease, opened)
            except AccountNotConfigured:
                return  # removed by a reload since the claim; its lease expires, nobody claims it
            except LeaseLost:
                log.warning("pull lease lost before commit", extra={"fields": _fields(key)})
                return
            except Exception as exc:
                delay = self._settings.backoff(lease.failures)
                log.warning(
                    "pull failed; backing off",
                    extra={"fields": {**_fields(key), "error": _describe(exc), "retry_in_s": round(delay, 1)}},
                )
                await self._release(key, delay, failed=True, last_error=_describe(exc))
                return
            await self._release(key, next_in, failed=False, last_error=ack_error)

    async def _poll_pages(self, lease: Lease, opened: OpenAccount) -> tuple[float, str]:
        """Fetch and commit pages until the channel has no more now; return when to poll next
        and the acknowledgement error to show ('' if none)."""
        connector: ChannelConnector = opened.connector
        moment = self._ack_moment(opened)
        ack_error = ""
        if moment is AckMoment.ON_COMMIT and lease.unacknowledged:
            ack_error = await self._acknowledge(opened, await self._pending(lease))
        elif moment is AckMoment.ON_HANDOVER:
            ack_error = await self._acknowledge_handed_over(opened)
        ack_error = await self._report_results(opened) or ack_error
        cursor = lease.cursor
        while True:
            page = await connector.fetch_page(opened.client, opened.settings, cursor, lease.key.tenant_id)
            result = await self._commit(lease.key, opened.account, connector, cursor, page, moment)
            if moment is AckMoment.ON_COMMIT and result.to_acknowledge:
                ack_error = await self._acknowledge(opened, result.to_acknowledge) or ack_error
            elif moment is AckMoment.ON_HANDOVER:
                ack_error = await self._acknowledge_handed_over(opened) or ack_error
            ack_error = await self._report_results(opened) or ack_error
            cursor = result.cursor
            if result.held_for_s is not None:
                return min(result.held_for_s, opened.account.poll_interval_s), ack_error
            if not page.more:
                return opened.account.poll_interval_s, ack_error

    @staticmethod
    def _ack_moment(opened: OpenAccount) -> AckMoment | None:
        """When the account's orders are acknowledged; None for a channel that takes none."""
        if not opened.connector.info.can(Capability.ACKNOWLEDGE):
            return None
        return opened.connector.acknowledge_when(opened.settings)

    async def _commit(
        self,
        key: AccountKey,
        account: Account,
        connector: ChannelConnector,
        cursor: str,
        page: OrderPage,
        moment: AckMoment | None,
    ) -> _PageResult:
        """Commit the page's revisions and its cursor together, fenced by the lease, with the
        page's acknowledgements queued as the account's AckMoment wants."""
        revisions, ackable, held_for = page_revisions(
            self._builder, self._accounts.registry, key, account, connector, page
        )
        reports = connector.info.can(Capability.SYNC_RESULTS)
        # A held order keeps the cursor where it was, so the page is fetched again.
        result = _PageResult(cursor if held_for is not None else page.next_cursor, held_for)

        async def fence(conn: PgConnection) -> None:
            await pulls.hold(conn, key, self._owner)

        async def move_cursor(conn: PgConnection, recorded: list[Recorded]) -> None:
            latest: list[PendingAck] = []  # the orders' newest tokens, for their handover rows
            for index, parsed in ackable.items():
                order_id, outcome = recorded[index].order_id, recorded[index].outcome
                if order_id and outcome in _COMMITTED:
                    ack = PendingAck(order_id, parsed.ack_token)
                    if moment is AckMoment.ON_COMMIT:
                        result.to_acknowledge.append((ack, parsed))
                    if outcome != "stale":  # an older revision than stored: not its latest token
                        latest.append(ack)
            taken = sum(1 for r in recorded if r.order_id and r.outcome in _NEW)
            pending = [ack for ack, _ in result.to_acknowledge]
            await pulls.advance(conn, key, self._owner, self._settings.lease_s, result.cursor, taken, pending)
            if moment is AckMoment.ON_HANDOVER or reports:
                await pulls.await_handover(
                    conn, key, latest, acknowledge=moment is AckMoment.ON_HANDOVER, report_results=reports
                )

        recorded = await self._writer.commit_page(revisions, before=fence, after=move_cursor)
        log.info(
            "pulled page committed",
            extra={"fields": {**_fields(key), "records": len(recorded), "held": held_for is not None}},
        )
        return result

    # ---- acknowledgements ------------------------------------------------------------------------

    async def _pending(self, lease: Lease) -> list[tuple[PendingAck, ParsedOrder]]:
        """The acknowledgements earlier polls left, with the orders as stored."""
        return await self._with_orders([PendingAck(p["order_id"], p["ack_token"]) for p in lease.unacknowledged])

    async def _with_orders(self, acks: list[PendingAck]) -> list[tuple[PendingAck, ParsedOrder]]:
        """Each acknowledgement with its order as stored, as the connector is handed it."""
        stored = await pulls.orders_to_acknowledge(self._pool, [a.order_id for a in acks])
        pending = []
        for ack in acks:
            order = order_pb2.Order()
            order.ParseFromString(stored.get(ack.order_id, b""))
            pending.append((ack, ParsedOrder(order, ack_token=ack.ack_token)))
        return pending

    async def _acknowledge_handed_over(self, opened: OpenAccount) -> str:
        """Tell the channel of the account's orders the provider accepted (AckMoment.ON_HANDOVER),
        a batch at a time; '' or the error to show (the rest is tried at the next poll)."""
        key = AccountKey(opened.tenant_id, opened.account.name)
        while True:
            acks = await pulls.handed_over_unacknowledged(self._pool, key, _HANDOVER_ACK_BATCH)
            if not acks:
                return ""
            error = await self._acknowledge(opened, await self._with_orders(acks), handover=True)
            if error or len(acks) < _HANDOVER_ACK_BATCH:
                return error

    async def _report_results(self, opened: OpenAccount) -> str:
        """Tell a channel with Capability.SYNC_RESULTS what the provider said of its orders, a
        batch at a time; '' or the error to show (the rest is tried at the next poll)."""
        if not opened.connector.info.can(Capability.SYNC_RESULTS):
            return ""
        key = AccountKey(opened.tenant_id, opened.account.name)
        while True:
            pending = await pulls.results_to_report(self._pool, key, _HANDOVER_ACK_BATCH)
            if not pending:
                return ""
            error = await self._report(opened, key, pending)
            if error or len(pending) < _HANDOVER_ACK_BATCH:
                return error

    async def _report(self, opened: OpenAccount, key: AccountKey, pending: list[PendingResult]) -> str:
        results = [SyncResult(p.ack_token, p.provider_reference, p.failure) for p in pending]
        try:
            await opened.connector.report_sync_results(opened.client, opened.settings, results)
            # Reported but not yet marked, a crash reports these again next poll: safe to repeat.
            await pulls.results_reported(self._pool, pending)
        except Exception as exc:
            log.warning(
                "reporting sync results failed; repeated at the next poll",
                extra={"fields": {**_fields(key), "orders": len(pending), "error": _describe(exc)}},
            )
            return f"sync results: {_describe(exc)}"
        log.info("sync results reported", extra={"fields": {**_fields(key), "orders": len(pending)}})
        return ""

    async def _acknowledge(
        self, opened: OpenAccount, items: list[tuple[PendingAck, ParsedOrder]], *, handover: bool = False
    ) -> str:
        """Tell the channel these committed (or handed-over) orders are taken; '' or the error to show."""
        key = AccountKey(opened.tenant_id, opened.account.name)
        try:
            await opened.connector.acknowledge(opened.client, opened.settings, [parsed for _, parsed in items])
            if handover:
                await pulls.handovers_acknowledged(self._pool, [ack for ack, _ in items])
            else:
                await pulls.acknowledged(self._pool, key, self._owner, [ack for ack, _ in items])
        except Exception as exc:
            log.warning(
                "acknowledge failed; repeated at the next poll",
                extra={"fields": {**_fields(key), "orders": len(items), "error": _describe(exc)}},
            )
            return f"acknowledge: {_describe(exc)}"
        return ""

    async def _release(self, key: AccountKey, next_in: float, *, failed: bool, last_error: str) -> None:
        try:
            await pulls.release(
                self._pool, key, self._owner, next_poll_in_s=next_in, failed=failed, last_error=last_error
            )
        except Exception:
            # The lease then expires and the account is polled again from its committed cursor.
            log.warning("could not release a pull lease", exc_info=True, extra={"fields": _fields(key)})


def page_revisions(
    builder: RevisionBuilder,
    registry: Registry,
    key: AccountKey,
    account: Account,
    connector: ChannelConnector,
    page: OrderPage,
) -> tuple[list[Revision], dict[int, ParsedOrder], float | None]:
    """The page's revisions as a poll records them, the parsed order of each order's revision
    (by index), and how long the youngest order held by the import delay waits (None: none
    held; held orders have no revision). The dry run (pulling/dry_run.py) builds its list here too."""
    now = time.time()
    revisions: list[Revision] = []
    ackable: dict[int, ParsedOrder] = {}  # revision index -> the parsed order it records
    held_for: float | None = None
    lock = sync_lock(registry, connector)
    for item in page.orders:
        if isinstance(item, ParsedOrder):
            wait = still_delayed(item, account.import_delay_s, now)
            if wait > 0:
                held_for = wait if held_for is None else min(held_for, wait)
                continue
            ackable[len(revisions)] = item
        revision = pulled_revision(builder, key.tenant_id, connector.info.id, account, item)
        revision.lock = lock
        revisions.append(revision)
    return revisions, ackable, held_for


def pulled_revision(
    builder: RevisionBuilder, tenant_id: str, channel: str, account: Account, item: ParsedOrder | Ignored
) -> Revision:
    """The record's revision, as a webhook's would be; a refused one is kept as a receipt."""
    body, name = _receipt_body(item), account.name
    try:
        revision = builder.from_parsed(
            tenant_id, channel, name, item, body, source="pull", mail_to=account.import_errors_to
        )
    except ConnectorError as exc:
        return builder.receipt(tenant_id, channel, name, body, "malformed", exc.message, source="pull")
    too_large = builder.event_too_large(revision)
    if too_large is not None:
        return builder.receipt(tenant_id, channel, name, body, "too_large", too_large, source="pull")
    return revision


def sync_lock(registry: Registry, connector: ChannelConnector) -> SyncLock | None:
    """The channel's SyncLock when its orders are locked once synced; None otherwise. Messages
    name the channel and the provider by their registry labels."""
    if not connector.info.locked_after_handover:
        return None

    def provider_label(provider: str) -> str:
        return registry.get(provider).info.label if provider in registry else provider

    return SyncLock(connector.info.label, provider_label)


def still_delayed(parsed: ParsedOrder, import_delay_s: float, now: float) -> float:
    """Seconds until an order is old enough to import (<= 0: import it now)."""
    if import_delay_s <= 0 or not parsed.order.HasField("placed_time"):
        return 0.0
    placed = parsed.order.placed_time.seconds + parsed.order.placed_time.nanos / 1e9
    return placed + import_delay_s - now


def _receipt_body(item: ParsedOrder | Ignored) -> bytes:
    """What a pulled record's receipt keeps: the order as the connector normalised it, in JSON
    (the connector hands over no raw record), or the reason a record was ignored."""
    if isinstance(item, Ignored):
        return json.dumps({"ignored": item.reason}).encode()
    return json_format.MessageToJson(item.order, indent=None).encode()


def _describe(exc: BaseException) -> str:
    """Operator-safe text of an error: a connector's is already redacted; others are redacted here."""
    if isinstance(exc, ConnectorError):
        return str(exc)
    return redact(f"{type(exc).__name__}: {exc}")


def _fields(key: AccountKey) -> dict[str, str]:
    return {"tenant_id": key.tenant_id, "account": key.account}
