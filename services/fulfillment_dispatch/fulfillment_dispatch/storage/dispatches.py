"""Fulfillment dispatch's SQL: the send queue with leases, results, shipments, status checks,
operator actions and the activity log. Every read an API serves is scoped by tenant_id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from libs.platform.activity import append_activity
from libs.platform.db import PgConnection
from libs.platform.work_queue import QueueTable, WorkQueue


@dataclass(frozen=True)
class NewDispatch:
    order_id: str
    tenant_id: str
    provider: str
    provider_order_number: str
    order_proto: bytes
    channel: str
    external_id: str
    external_number: str
    traceparent: str
    provider_account: str = ""  # the tenant's name for the provider account
    route: str = ""  # the route that sent it there, for the route's options
    channel_account: str = ""  # the tenant's name for the channel account that sold it


@dataclass(frozen=True)
class NotRequired:
    """An order that is not sent: routed nowhere ('not_required', with routing's reason), or
    routed to a provider it cannot be queued for ('failed', with the reason). Recorded so that
    every order has a visible sync status."""

    order_id: str
    tenant_id: str
    provider: str
    order_proto: bytes
    channel: str
    external_id: str
    external_number: str
    traceparent: str
    reason_code: str
    reason: str
    channel_account: str = ""
    provider_account: str = ""
    route: str = ""


@dataclass(frozen=True)
class AttemptResult:
    order_id: str
    tenant_id: str
    status: str
    reason_code: str
    reason: str
    next_attempt_at: datetime | None
    activity: str
    attempt: int  # the attempt number this result belongs to (fences out stale lease holders)
    check_after: timedelta | None = None  # a sent order's first read-back, set by record_results
    provider_reference: str = ""  # the provider's own id of the order (Submitted.provider_reference)
    unmapped_codes: str = "[]"  # JSON list: the SKUs or shipping code a failure found unmapped


async def enqueue(conn: PgConnection, rows: Sequence[NewDispatch]) -> list[str]:
    """Queue orders for sending (status 'sending'); return the ids that were not queued before."""
    if not rows:
        return []
    inserted = await conn.fetch(
        "INSERT INTO dispatches (order_id, tenant_id, provider, provider_order_number, order_proto,"
        " channel, external_id, external_number, traceparent, provider_account, route, channel_account, status)"
        " SELECT *, 'sending' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[],"
        " $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])"
        " ON CONFLICT (order_id) DO NOTHING RETURNING order_id, tenant_id",
        *[[getattr(r, column) for r in rows] for column in NewDispatch.__dataclass_fields__],
    )
    await add_activity(
        conn, [(r["order_id"], r["tenant_id"], "queued", "routed to provider; queued for sending") for r in inserted]
    )
    return [r["order_id"] for r in inserted]


async def record_not_required(conn: PgConnection, rows: Sequence[NotRequired]) -> list[str]:
    """Record orders that are not sent (status 'not_required', with routing's reason), once each."""
    return await _record_unsent(conn, rows, "not_required", "not_required")


async def record_unsendable(conn: PgConnection, rows: Sequence[NotRequired]) -> list[str]:
    """Record routed orders that cannot be queued (status 'failed', with why), once each.

    An operator's Retry queues one again once its provider account is configured.
    """
    return await _record_unsent(conn, rows, "failed", "not_queued")


async def _record_unsent(conn: PgConnection, rows: Sequence[NotRequired], status: str, kind: str) -> list[str]:
    if not rows:
        return []
    inserted = await conn.fetch(
        "INSERT INTO dispatches (order_id, tenant_id, provider, order_proto, channel, external_id,"
        " external_number, traceparent, reason_code, reason, channel_account, provider_account, route,"
        " provider_order_number, status)"
        " SELECT *, '', $14 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[],"
        " $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])"
        " ON CONFLICT (order_id) DO NOTHING RETURNING order_id, tenant_id, reason",
        *[[getattr(r, column) for r in rows] for column in NotRequired.__dataclass_fields__],
        status,
    )
    await add_activity(conn, [(r["order_id"], r["tenant_id"], kind, r["reason"]) for r in inserted])
    return [r["order_id"] for r in inserted]


SEND_QUEUE = WorkQueue(
    QueueTable(
        table="dispatches",
        key="order_id",
        due_statuses=("sending", "retry_wait"),
        returned=(
            "tenant_id",
            "provider",
            "provider_account",
            "route",
            "provider_order_number",
            "attempts_before_retry",
            "order_proto",
            "channel",
            "channel_account",
            "external_id",
            "external_number",
            "traceparent",
            "created_at",  # when dispatch recorded the routed order: the handover histogram's start
        ),
        results={
            "reason_code": "text",
            "reason": "text",
            "check_after": "interval",
            "provider_reference": "text",
            "unmapped_codes": "jsonb",
        },
        stored=("reason_code", "reason", "unmapped_codes"),
        set_clauses=(
            "updated_at = now()",
            "last_result_at = now()",
            # A sent order is read back after a while, in case the provider's notices never come.
            "next_check_at = CASE WHEN r.status = 'sent' THEN now() + r.check_after ELSE NULL END",
            "status_checks = 0",
            # The provider's own id, once it gave one; a later result without one keeps it.
            "provider_reference = CASE WHEN r.provider_reference <> '' THEN r.provider_reference"
            " ELSE q.provider_reference END",
            # An order held for a provider that fetches it enters the provider's export windows now.
            "export_modified_at = CASE WHEN r.status = 'awaiting_pull' THEN now() ELSE q.export_modified_at END",
        ),
        claim_set_clauses=("updated_at = now()",),
        activity_table="dispatch_activity",
    )
)
"""The send queue: orders 'sending' or 'retry_wait', leased by the sender (libs.platform.work_queue)."""


async def claim_due(pool: asyncpg.Pool, limit: int, lease_s: float) -> list[asyncpg.Record]:
    """Lease up to `limit` orders due for an attempt and count the attempt.

    The lease keeps other replicas off them while this one calls the provider; if this process
    dies, the lease runs out and another pass resumes them (reading back from the provider first).
    """
    return await SEND_QUEUE.claim(pool, limit, lease_s)


async def renew_leases(pool: asyncpg.Pool, held: Sequence[tuple[str, int]], lease_s: float) -> set[str]:
    """Keep the (order id, attempt) claims of a pass still calling its providers leased."""
    return await SEND_QUEUE.renew(pool, held, lease_s)


async def batch_filling(pool: asyncpg.Pool, providers: Sequence[str], full: int, linger_s: float) -> bool:
    """True while orders for these (batching) providers are still arriving: some are due and
    unleased, fewer than `full`, and the newest of them became due less than `linger_s` ago."""
    if not providers or linger_s <= 0:
        return False
    row = await pool.fetchrow(
        "SELECT count(*) AS due, max(next_attempt_at) > now() - make_interval(secs => $2) AS fresh"
        " FROM dispatches WHERE status IN ('sending', 'retry_wait') AND next_attempt_at <= now()"
        " AND (lease_until IS NULL OR lease_until < now()) AND provider = ANY($1::text[])",
        list(providers),
        linger_s,
    )
    assert row is not None, "an aggregate always answers one row"
    return bool(row["fresh"]) and 0 < row["due"] < full


async def record_results(
    conn: PgConnection, results: Sequence[AttemptResult], *, first_check_after: timedelta | None
) -> set[str]:
    """Store attempt outcomes, release their leases and log them; return the order ids stored.

    A sent order is due for its first read-back after `first_check_after`, in case the
    provider's webhooks never come.

    A result is stored only if its order is still leased by that same attempt: when a slow
    attempt outlived its lease and another took over, the late result is dropped, so it can
    neither overwrite a newer outcome nor announce a second one.
    """
    return await SEND_QUEUE.record(conn, [replace(r, check_after=first_check_after) for r in results])


async def add_activity(conn: PgConnection, entries: Sequence[tuple[str, str, str, str]]) -> None:
    """Append (order_id, tenant_id, kind, message) entries to the activity log."""
    await append_activity(conn, "dispatch_activity", entries)


async def add_operator_activity(
    conn: PgConnection, order_id: str, tenant_id: str, kind: str, actor: str, message: str
) -> None:
    """Append an operator's action (who, what, why) to the activity log."""
    await conn.execute(
        "INSERT INTO dispatch_activity (order_id, tenant_id, kind, actor, message) VALUES ($1, $2, $3, $4, $5)",
        order_id,
        tenant_id,
        kind,
        actor,
        message,
    )


async def lock_by_provider_numbers(
    conn: PgConnection, tenant_id: str, provider: str, provider_order_numbers: Sequence[str]
) -> list[asyncpg.Record]:
    """Return and lock the tenant's dispatches with these provider order numbers (those known).

    Locked in order_id order, so two batches naming the same orders cannot deadlock.
    """
    return await conn.fetch(
        "SELECT order_id, tenant_id, status, provider_account, provider_order_number, channel, channel_account,"
        " external_id, external_number, traceparent, shipment_status, shipment_proto, order_proto FROM dispatches"
        " WHERE tenant_id = $1 AND provider = $2 AND provider_order_number = ANY($3::text[])"
        " ORDER BY order_id FOR UPDATE",
        tenant_id,
        provider,
        list(provider_order_numbers),
    )


@dataclass(frozen=True)
class ShipmentChange:
    """A dispatch's newer shipment state: its status word, the Shipment proto, and the reason
    stored when the change voids the order (a cancellation)."""

    order_id: str
    status: str
    shipment_proto: bytes
    void_reason: str = ""


async def update_shipments(
    conn: PgConnection, changes: Sequence[ShipmentChange], *, next_check_after: timedelta
) -> None:
    """Store the provider's newer shipment states (one per order) in one round trip; a
    cancelled order becomes 'voided'.

    News restarts the read-back schedule; a delivered or cancelled order needs no more checks.
    """
    if not changes:
        return
    await conn.execute(
        "UPDATE dispatches d SET shipment_status = c.status, shipment_proto = c.proto, updated_at = now(),"
        " status_checks = 0,"
        " next_check_at = CASE WHEN c.status IN ('delivered', 'cancelled') THEN NULL ELSE now() + $5::interval END,"
        " status = CASE WHEN c.status = 'cancelled' THEN 'voided' ELSE d.status END,"
        " reason_code = CASE WHEN c.status = 'cancelled' THEN 'VOIDED_AT_PROVIDER' ELSE d.reason_code END,"
        " reason = CASE WHEN c.status = 'cancelled' THEN c.void_reason ELSE d.reason END"
        " FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) AS c(order_id, status, proto, void_reason)"
        " WHERE d.order_id = c.order_id",
        [c.order_id for c in changes],
        [c.status for c in changes],
        [c.shipment_proto for c in changes],
        [c.void_reason for c in changes],
        next_check_after,
    )


async def claim_status_checks(
    pool: asyncpg.Pool, limit: int, base_s: float, max_s: float, providers: Sequence[str]
) -> list[asyncpg.Record]:
    """Take up to `limit` sent orders of `providers` whose read-back is due, and schedule each
    one's next check. `providers` are those that can be read back.

    Scheduling first doubles as a lease: a replica that dies mid-check leaves the order due again
    at its next check, and two replicas never check the same order in one round.
    """
    return await pool.fetch(
        "UPDATE dispatches d SET status_checks = d.status_checks + 1,"
        " next_check_at = now() + make_interval(secs => least($3, $2 * power(2, least(d.status_checks, 16))))"
        " FROM (SELECT order_id FROM dispatches"
        "       WHERE status = 'sent' AND shipment_status NOT IN ('delivered', 'cancelled') AND next_check_at <= now()"
        "         AND provider = ANY($4::text[])"
        "       ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED) due"
        " WHERE d.order_id = due.order_id"
        " RETURNING d.order_id, d.tenant_id, d.provider, d.provider_account, d.provider_order_number",
        limit,
        base_s,
        max_s,
        list(providers),
    )


async def record_webhook(conn, tenant_id: str, provider: str, body: bytes, outcome: str, detail: str) -> int:
    """Keep a received provider webhook with what became of it; return its id."""
    return await conn.fetchval(
        "INSERT INTO provider_webhooks (tenant_id, provider, body, outcome, detail)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        tenant_id,
        provider,
        body,
        outcome,
        detail,
    )


_RECORD_COLUMNS = (
    "order_id, tenant_id, provider, provider_account, route, status, reason_code, reason, provider_order_number,"
    " provider_reference,"
    " attempts, next_attempt_at, updated_at, channel, channel_account, external_id, external_number,"
    " shipment_status, shipment_proto"
)


async def get_dispatch(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> asyncpg.Record | None:
    """Return one dispatch of `tenant_id`, or None."""
    return await pool.fetchrow(
        f"SELECT {_RECORD_COLUMNS} FROM dispatches WHERE tenant_id = $1 AND order_id = $2", tenant_id, order_id
    )


async def find_dispatch(
    conn: PgConnection | asyncpg.Pool, tenant_id: str, order_id: str, external_number: str, *, lock: bool = False
) -> asyncpg.Record | None:
    """Return the tenant's dispatch by order id or else by channel order number; lock it if asked."""
    column, value = ("order_id", order_id) if order_id else ("external_number", external_number)
    suffix = " FOR UPDATE" if lock else ""
    rows = await conn.fetch(
        f"SELECT {_RECORD_COLUMNS} FROM dispatches WHERE tenant_id = $1 AND {column} = $2 LIMIT 2{suffix}",
        tenant_id,
        value,
    )
    # A channel number is unique per channel; two channels sharing one would need the order id.
    return rows[0] if len(rows) == 1 else None


async def list_dispatches(
    pool: asyncpg.Pool,
    tenant_id: str,
    statuses: Sequence[str],
    updated_after: datetime | None,
    limit: int,
    before_seq: int | None,
) -> list[asyncpg.Record]:
    """Return a page of the tenant's dispatches, newest order first, older than `before_seq`.

    Pages follow `list_seq`, which is fixed when an order is first recorded: an order that
    changes while someone pages through the list keeps its place, so it is listed exactly
    once (paging on updated_at let changed orders jump over the page boundary, unseen). The
    filters apply to each order as it is when its page is read.
    """
    return await pool.fetch(
        f"SELECT {_RECORD_COLUMNS}, list_seq FROM dispatches WHERE tenant_id = $1"
        " AND (cardinality($2::text[]) = 0 OR status = ANY($2::text[]))"
        " AND ($3::timestamptz IS NULL OR updated_at > $3)"
        " AND ($4::bigint IS NULL OR list_seq < $4)"
        " ORDER BY list_seq DESC LIMIT $5",
        tenant_id,
        list(statuses),
        updated_after,
        before_seq,
        limit,
    )


async def activity_of(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> list[asyncpg.Record]:
    """Return the order's activity log, oldest first."""
    return await pool.fetch(
        "SELECT at, kind, actor, message FROM dispatch_activity WHERE tenant_id = $1 AND order_id = $2 ORDER BY id",
        tenant_id,
        order_id,
    )


async def mark_for_retry(conn: PgConnection, order_id: str, provider_order_number: str = "") -> None:
    """Queue a failed order again with a fresh retry budget (attempts keep counting, for fencing).

    `provider_order_number` is set for an order that never had one (it could not be queued).
    """
    await conn.execute(
        "UPDATE dispatches SET status = 'sending', reason_code = '', reason = '', next_attempt_at = now(),"
        " attempts_before_retry = attempts, updated_at = now(),"
        " provider_order_number = CASE WHEN $2 = '' THEN provider_order_number ELSE $2 END WHERE order_id = $1",
        order_id,
        provider_order_number,
    )


async def order_proto_of(conn: PgConnection, order_id: str) -> bytes:
    """The order as it was routed."""
    return await conn.fetchval("SELECT order_proto FROM dispatches WHERE order_id = $1", order_id)


async def mark_dont_send(conn: PgConnection, order_id: str, reason: str) -> None:
    """Keep a failed order in the channel for good."""
    await conn.execute(
        "UPDATE dispatches SET status = 'not_required', reason_code = 'DONT_SEND', reason = $2, updated_at = now()"
        " WHERE order_id = $1",
        order_id,
        reason,
    )
