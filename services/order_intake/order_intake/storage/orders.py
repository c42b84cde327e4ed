"""Intake's SQL: receipts, revisions and orders, written in group commits with their outbox events.

A webhook is acknowledged only after its revision is durable. Rather than one transaction per
request (the first wall of a naive receiver), concurrent requests queue here and one writer task
commits them together; each request awaits the outcome of its own item.

A pulled page is written by the same statements (`commit_page`), in a transaction of its own
that also moves the account's cursor, so a page's revisions and its cursor commit together.

A revision failing a channel's import rules is stored as `not_imported` with every failed rule,
and queues its failed-import mail (`storage/mails.py`) in the same transaction. A newer failing
revision never takes back an order already accepted: that order stays accepted (the receipt
says `kept_accepted`), since it may already be on its way to the provider.

For a channel locked after sync (`Revision.lock`, from ConnectorInfo.locked_after_handover), a
newer revision that changes an order the provider already accepted (its handover row is handed
over) is not applied nor published: its receipt says `locked_after_sync` with the operator's
message (what changed, when and as what it was synced, what to do), and the order keeps the
synced content, so each later change is told against what the provider has.

`preview` runs these very statements in a transaction that is always rolled back: a dry run
says what a poll would do by doing it and taking it back, so the two cannot disagree.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
from opentelemetry import context as otel_context
from ordersync.common.v1 import order_pb2

from libs.connectors.base.issues import ALREADY_SYNCED
from libs.platform import metrics
from libs.platform.db import PgConnection
from libs.platform.events import OutgoingEvent
from libs.platform.outbox import write_events
from libs.platform.webhook_http import storable_text
from order_intake.domain.intake import (
    RuleFailure,
    SyncLock,
    locked_message,
    order_changes,
    revision_is_newer,
    same_order_content,
)
from order_intake.storage import pulls
from order_intake.storage.mails import queue_import_mail

log = logging.getLogger(__name__)


@dataclass
class Revision:
    """One received webhook or pulled record to record; `order_proto` and `event` are None when it
    is not an order. `channel` is the connector id, `account` the tenant's account name."""

    tenant_id: str
    channel: str
    body: bytes
    trace_id: str
    outcome_if_new: str  # accepted | invalid | not_imported | ignored | malformed | too_large
    detail: str = ""
    order_id: str | None = None
    external_id: str = ""
    external_number: str = ""
    revision: str = ""
    order_proto: bytes | None = None
    build_event: Callable[[bool], OutgoingEvent] | None = None  # called with first_revision
    trace_context: otel_context.Context | None = None
    account: str = ""
    source: str = "push"  # push (a webhook) | pull (a fetched record) | reconcile | resubmit
    rule_failures: tuple[RuleFailure, ...] = ()  # the import rules it fails (not_imported)
    mail_to: str = ""  # where its failed-import mail goes; "" sends none
    lock: SyncLock | None = None  # set for a channel whose orders are locked once synced
    resubmission: Resubmission | None = None  # set when an operator resubmits a kept receipt
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass(frozen=True)
class Resubmission:
    """Where a resubmitted body came from: the refused receipt, who resubmitted it and why."""

    receipt_id: int
    by: str
    reason: str
    edited: bool = False  # the operator gave a replacement body


@dataclass(frozen=True)
class Recorded:
    """What happened to a revision: its outcome and the receipt that keeps its body."""

    # accepted | unchanged | duplicate | stale | invalid | not_imported | kept_accepted
    # | locked_after_sync | ignored | malformed | too_large
    outcome: str
    receipt_id: int
    order_id: str | None


class RevisionWriter:
    """Commits queued revisions in groups; start() and stop() it with the service."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 200):
        self._pool = pool
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Revision] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="intake-revision-writer")

    async def stop(self) -> None:
        """Stop writing; queued revisions fail (their webhooks get 503 and the channel retries)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.done.done():
                item.done.set_exception(RuntimeError("intake is shutting down"))

    async def record(self, item: Revision) -> Recorded:
        """Queue `item` and wait until it is committed; raise if the commit failed."""
        if self._task is None:
            raise RuntimeError("revision writer is not running")
        await self._queue.put(item)
        return await item.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[Revision]) -> None:
        try:
            results = await self._write(batch)
        except Exception as exc:
            log.exception("group commit failed", extra={"fields": {"revisions": len(batch)}})
            if len(batch) > 1:
                # One bad item must not fail its neighbours: commit each on its own.
                for item in batch:
                    await self._commit_batch([item])
                return
            if not batch[0].done.done():
                batch[0].done.set_exception(exc)
            return
        _count_outcomes(batch, results)
        for item, result in zip(batch, results, strict=True):
            if not item.done.done():
                item.done.set_result(result)

    async def _write(self, batch: list[Revision]) -> list[Recorded]:
        async with self._pool.acquire() as conn, conn.transaction():
            return await _write_all(conn, batch)

    async def commit_page(
        self,
        items: Sequence[Revision],
        *,
        before: Callable[[PgConnection], Awaitable[None]],
        after: Callable[[PgConnection, list[Recorded]], Awaitable[None]],
    ) -> list[Recorded]:
        """Commit `items` in one transaction of their own, between `before(conn)` and
        `after(conn, results)`; an exception from either rolls everything back.

        The pull poller fences the page by its lease in `before` and moves the cursor in
        `after`, so revisions and cursor are durable together or not at all. The page is not
        queued with webhooks: its transaction must hold nothing but the page.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            await before(conn)
            results = await _write_all(conn, list(items))
            await after(conn, results)
        _count_outcomes(items, results)
        return results

    async def preview(self, items: Sequence[Revision]) -> list[Recorded]:
        """What committing `items` would record, without recording anything: the same writes in
        a transaction that is rolled back (the outbox, mails and cursor untouched). Row locks
        are held only for that transaction; sequence numbers it drew are skipped, harmlessly."""
        async with self._pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                return await _write_all(conn, list(items))
            finally:
                await transaction.rollback()


def _count_outcomes(items: Sequence[Revision], results: Sequence[Recorded]) -> None:
    """Count what committing each revision did (after the commit, so a rolled-back one is not)."""
    for item, recorded in zip(items, results, strict=True):
        reason_code = item.rule_failures[0].code if recorded.outcome == "not_imported" and item.rule_failures else ""
        metrics.ORDER_OUTCOMES.labels("order-intake", item.channel, recorded.outcome, reason_code).inc()


async def _write_all(conn: PgConnection, batch: list[Revision]) -> list[Recorded]:
    results, events = [], []
    for item in batch:
        # Each item's statements run in its webhook's trace, so SQL shows in the order's journey.
        token = otel_context.attach(item.trace_context) if item.trace_context is not None else None
        try:
            recorded, event = await _write_one(conn, item)
        finally:
            if token is not None:
                otel_context.detach(token)
        results.append(recorded)
        if event is not None:
            events.append(event)
    await write_events(conn, events)
    return results


INSERT_RECEIPT = (
    "INSERT INTO webhook_receipts (tenant_id, channel, body, outcome, detail, order_id, trace_id, account, source,"
    " resubmitted_from, resubmitted_by, resubmit_reason, resubmit_edited)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
# One round trip where there were three (each a socket write that dominated intake's profile,
# docs/benchmarks.md): the receipt, the revision's deduplication key (nothing when taken before)
# and the order's current row, locked for this transaction's update (a duplicate's too, which
# this transaction then leaves as it was).
TAKE_REVISION = (
    f"WITH receipt AS ({INSERT_RECEIPT} RETURNING id),"
    " revision AS (INSERT INTO order_revisions (tenant_id, channel, external_id, revision, receipt_id)"
    "  SELECT $1, $2, $14, $15, id FROM receipt ON CONFLICT DO NOTHING RETURNING true),"
    " latest AS (SELECT latest_revision, status, order_proto FROM orders WHERE order_id = $6 FOR UPDATE)"
    " SELECT receipt.id AS receipt_id, EXISTS (SELECT FROM revision) AS is_new_revision,"
    "  latest.latest_revision IS NOT NULL AS order_found, latest.latest_revision, latest.status, latest.order_proto"
    " FROM receipt LEFT JOIN latest ON true"
)


async def _write_one(conn: PgConnection, item: Revision) -> tuple[Recorded, OutgoingEvent | None]:
    # The detail may quote hostile input (a refusal's reason); text columns cannot hold NUL.
    item.detail = storable_text(item.detail)
    resubmission = item.resubmission
    receipt_values = (
        item.tenant_id,
        item.channel,
        item.body,
        item.outcome_if_new,
        item.detail,
        item.order_id,
        item.trace_id,
        item.account,
        item.source,
        resubmission.receipt_id if resubmission else None,
        resubmission.by if resubmission else None,
        storable_text(resubmission.reason) if resubmission else None,
        resubmission.edited if resubmission else False,
    )
    if item.order_proto is None:
        receipt_id = await conn.fetchval(INSERT_RECEIPT + " RETURNING id", *receipt_values)
        return Recorded(item.outcome_if_new, receipt_id, item.order_id), None
    taken = await conn.fetchrow(TAKE_REVISION, *receipt_values, item.external_id, item.revision)
    if taken is None:  # the statement's receipt INSERT always returns its row
        raise RuntimeError("taking a revision returned no row")
    receipt_id = taken["receipt_id"]
    if not taken["is_new_revision"]:
        return await _mark(conn, receipt_id, "duplicate", item), None
    latest = taken if taken["order_found"] else None
    if latest is None:
        await _insert_order(conn, item)
    elif not revision_is_newer(item.revision, latest["latest_revision"]):
        await _count_revision(conn, item)
        return await _mark(conn, receipt_id, "stale", item), None
    elif (locked := await _locked_after_sync(conn, item, latest)) is not None:
        await _count_revision(conn, item)
        item.detail = locked
        await conn.execute("UPDATE webhook_receipts SET detail = $2 WHERE id = $1", receipt_id, locked)
        return await _mark(conn, receipt_id, "locked_after_sync", item), None
    elif item.outcome_if_new == "not_imported" and latest["status"] == "accepted":
        # Accepted orders may be at the provider already; a later change in the channel that
        # fails a rule (e.g. the stage moved back) is kept on the receipt, not acted on.
        await _count_revision(conn, item)
        return await _mark(conn, receipt_id, "kept_accepted", item), None
    elif _changes_nothing(item, latest):
        # Typically the update a channel sends after our own fulfilment: recorded, not re-announced.
        await _update_order(conn, item)
        return await _mark(conn, receipt_id, "unchanged", item), None
    else:
        await _update_order(conn, item)
    if item.outcome_if_new == "not_imported" and item.mail_to and item.order_id is not None:
        await queue_import_mail(
            conn,
            order_id=item.order_id,
            tenant_id=item.tenant_id,
            channel=item.channel,
            account=item.account,
            order_number=item.external_number or item.external_id,
            recipient=item.mail_to,
            failures=item.rule_failures,
        )
    event = None
    if item.outcome_if_new == "accepted":
        event = _event_in_request_context(item, first_revision=latest is None)
    return Recorded(item.outcome_if_new, receipt_id, item.order_id), event


async def _locked_after_sync(conn: PgConnection, item: Revision, latest: asyncpg.Record) -> str | None:
    """The operator's message when `item` changes an order its locked channel synced already;
    None when it may flow as usual (no lock, not synced yet, or it changes nothing)."""
    if item.lock is None or item.order_id is None or latest["status"] != "accepted" or _changes_nothing(item, latest):
        return None
    synced = await pulls.synced(conn, item.order_id)
    if synced is None:
        return None
    stored, new = order_pb2.Order(), order_pb2.Order()
    stored.ParseFromString(latest["order_proto"])
    new.ParseFromString(item.order_proto or b"")
    changes = order_changes(stored, new)
    if not changes:
        # The same order; only the verdict moved (the channel now shows it synced): no edit to lock.
        return None
    if item.outcome_if_new == "invalid":
        changes.append(f"now invalid: {item.detail}")
    # "Synced already" is what the lock says; the other rules it now fails are news.
    failing = [f for f in item.rule_failures if f.code != ALREADY_SYNCED]
    if failing:
        changes.append("now not imported: " + "; ".join(f"{f.code}: {f.sentence}" for f in failing))
    return locked_message(
        item.lock,
        changes,
        synced_at=synced["handed_over_at"],
        provider=synced["provider"],
        provider_reference=synced["provider_reference"],
    )


def _changes_nothing(item: Revision, latest: asyncpg.Record) -> bool:
    both_accepted = item.outcome_if_new == "accepted" and latest["status"] == "accepted"
    return (
        both_accepted and item.order_proto is not None and same_order_content(latest["order_proto"], item.order_proto)
    )


def _event_in_request_context(item: Revision, *, first_revision: bool) -> OutgoingEvent:
    # The event carries the trace of the webhook request that brought the revision, not the
    # writer task's, so one trace follows the order from webhook to writeback.
    if item.build_event is None:
        raise ValueError("an accepted revision must say how to build its event")
    token = otel_context.attach(item.trace_context) if item.trace_context is not None else None
    try:
        return item.build_event(first_revision)
    finally:
        if token is not None:
            otel_context.detach(token)


async def _mark(conn: PgConnection, receipt_id: int, outcome: str, item: Revision) -> Recorded:
    await conn.execute("UPDATE webhook_receipts SET outcome = $2 WHERE id = $1", receipt_id, outcome)
    return Recorded(outcome, receipt_id, item.order_id)


async def _insert_order(conn: PgConnection, item: Revision) -> None:
    await conn.execute(
        "INSERT INTO orders (order_id, tenant_id, channel, external_id, external_number, latest_revision,"
        " status, status_reason, order_proto, trace_id, rule_failures)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)",
        item.order_id,
        item.tenant_id,
        item.channel,
        item.external_id,
        item.external_number,
        item.revision,
        item.outcome_if_new,
        item.detail,
        item.order_proto,
        item.trace_id,
        _failures_json(item),
    )


async def _update_order(conn: PgConnection, item: Revision) -> None:
    await conn.execute(
        "UPDATE orders SET latest_revision = $2, status = $3, status_reason = $4, order_proto = $5,"
        " external_number = $6, revision_count = revision_count + 1, updated_at = now(),"
        " rule_failures = $7::jsonb WHERE order_id = $1",
        item.order_id,
        item.revision,
        item.outcome_if_new,
        item.detail,
        item.order_proto,
        item.external_number,
        _failures_json(item),
    )


def _failures_json(item: Revision) -> str:
    return json.dumps([failure.as_json() for failure in item.rule_failures])


async def _count_revision(conn: PgConnection, item: Revision) -> None:
    await conn.execute("UPDATE orders SET revision_count = revision_count + 1 WHERE order_id = $1", item.order_id)


# Reads for the gRPC API. Every query is scoped by tenant_id.

_ORDER_COLUMNS = "order_id, status, status_reason, revision_count, order_proto, received_at, trace_id, rule_failures"


async def get_order(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> asyncpg.Record | None:
    """Return one order of `tenant_id`, or None."""
    return await pool.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND order_id = $2", tenant_id, order_id
    )


async def get_order_by_channel_ref(
    pool: asyncpg.Pool, tenant_id: str, channel: str, external_id: str
) -> asyncpg.Record | None:
    """Return one order of `tenant_id` by the channel's id, or None."""
    return await pool.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND channel = $2 AND external_id = $3",
        tenant_id,
        channel,
        external_id,
    )


async def list_orders(
    pool: asyncpg.Pool,
    tenant_id: str,
    limit: int,
    after: tuple | None,
    *,
    status: str = "",
    rule_code: str = "",
) -> list[asyncpg.Record]:
    """Return up to `limit` orders of `tenant_id`, newest first, after the keyset `after`;
    only those of `status`, and only those whose latest revision fails `rule_code`, when given."""
    where = ["tenant_id = $1"]
    args: list[object] = [tenant_id]
    if status:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if rule_code:
        args.append(json.dumps([{"code": rule_code}]))
        where.append(f"rule_failures @> ${len(args)}::jsonb")
    if after is not None:
        args += [after[0], after[1]]
        where.append(f"(received_at, order_id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return await pool.fetch(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE {' AND '.join(where)}"
        f" ORDER BY received_at DESC, order_id DESC LIMIT ${len(args)}",
        *args,
    )


async def locked_changes_of_order(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> list[asyncpg.Record]:
    """The changes refused for `order_id` because it was synced (oldest first)."""
    return await pool.fetch(
        f"{_LOCKED_SELECT} WHERE r.tenant_id = $1 AND r.order_id = $2 AND r.outcome = 'locked_after_sync'"
        " ORDER BY r.received_at, r.id",
        tenant_id,
        order_id,
    )


async def list_locked_changes(
    pool: asyncpg.Pool, tenant_id: str, account: str, limit: int, after: tuple | None
) -> list[asyncpg.Record]:
    """Up to `limit` of a tenant's locked changes (of one account, when given), newest first,
    after the keyset (received_at, receipt id) `after`."""
    where = ["r.tenant_id = $1", "r.outcome = 'locked_after_sync'"]
    args: list[object] = [tenant_id]
    if account:
        args.append(account)
        where.append(f"r.account = ${len(args)}")
    if after is not None:
        args += [after[0], after[1]]
        where.append(f"(r.received_at, r.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    return await pool.fetch(
        f"{_LOCKED_SELECT} WHERE {' AND '.join(where)} ORDER BY r.received_at DESC, r.id DESC LIMIT ${len(args)}",
        *args,
    )


_LOCKED_SELECT = (
    "SELECT r.id, r.order_id, r.account, r.channel, r.detail, r.received_at, o.external_id, o.external_number,"
    " v.revision FROM webhook_receipts r JOIN orders o ON o.order_id = r.order_id"
    " LEFT JOIN order_revisions v ON v.receipt_id = r.id"
)
