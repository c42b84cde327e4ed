"""Tracking writeback's SQL: the queue of wanted channel states, leases, results, activity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from libs.platform.activity import append_activity


@dataclass(frozen=True)
class WantedState:
    order_id: str
    tenant_id: str
    channel: str
    external_id: str
    external_number: str
    target_status: str
    shipment_proto: bytes
    traceparent: str
    provider: str
    channel_account: str = ""  # the tenant's name for the channel account; '' on older events


@dataclass(frozen=True)
class WriteResult:
    order_id: str
    tenant_id: str
    status: str  # written | retry_wait | failed
    written_status: str
    reason: str
    customer_notified: bool
    next_attempt_at: datetime | None
    activity: str
    attempt: int  # the attempt this result belongs to (fences out stale lease holders)


async def load_targets(conn: asyncpg.Connection, order_ids: Sequence[str]) -> dict[str, str]:
    """Return the wanted state of each known order, locked for this transaction."""
    rows = await conn.fetch(
        "SELECT order_id, target_status FROM writebacks WHERE order_id = ANY($1::text[])"
        " ORDER BY order_id FOR UPDATE",  # one lock order for every writer: no deadlocks
        list(order_ids),
    )
    return {r["order_id"]: r["target_status"] for r in rows}


async def want(conn: asyncpg.Connection, states: Sequence[WantedState]) -> None:
    """Insert or advance the wanted state of orders and queue them for writing.

    `attempts` is left alone: it fences the result of a write that may be in flight, which then
    records what it wrote and leaves the newer state pending.
    """
    if not states:
        return
    await conn.execute(
        "INSERT INTO writebacks (order_id, tenant_id, channel, external_id, external_number, target_status,"
        " shipment_proto, traceparent, provider, channel_account, status)"
        " SELECT *, 'pending' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
        " $7::bytea[], $8::text[], $9::text[], $10::text[])"
        " ON CONFLICT (order_id) DO UPDATE SET target_status = EXCLUDED.target_status, provider = EXCLUDED.provider,"
        " channel_account = coalesce(nullif(EXCLUDED.channel_account, ''), writebacks.channel_account),"
        " shipment_proto = EXCLUDED.shipment_proto, status = 'pending', reason = '',"
        " next_attempt_at = now(), updated_at = now()",
        *[[getattr(s, column) for s in states] for column in WantedState.__dataclass_fields__],
    )
    await add_activity(
        conn, [(s.order_id, s.tenant_id, "wanted", f"provider reports {s.target_status}") for s in states]
    )


async def claim_due(pool: asyncpg.Pool, limit: int, lease_s: float) -> list[asyncpg.Record]:
    """Lease up to `limit` orders whose channel update is due, counting the attempt."""
    return await pool.fetch(
        "UPDATE writebacks w SET lease_until = now() + make_interval(secs => $2), attempts = w.attempts + 1"
        " FROM (SELECT order_id FROM writebacks"
        "       WHERE status IN ('pending', 'retry_wait') AND next_attempt_at <= now()"
        "         AND (lease_until IS NULL OR lease_until < now())"
        "       ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due"
        " WHERE w.order_id = due.order_id"
        " RETURNING w.order_id, w.tenant_id, w.channel, w.provider, w.external_id, w.external_number, w.target_status,"
        " w.written_status, w.shipment_proto, w.attempts, w.customer_notified, w.traceparent, w.channel_account",
        limit,
        lease_s,
    )


async def record_results(conn: asyncpg.Connection, results: Sequence[WriteResult]) -> set[str]:
    """Store write outcomes and release leases; return the order ids stored.

    A result counts only while its attempt still holds the lease (a late one is dropped). A newer
    wanted state that arrived meanwhile stays pending.
    """
    if not results:
        return set()
    results = sorted(results, key=lambda r: r.order_id)  # the same lock order as load_targets
    stored = await conn.fetch(
        "UPDATE writebacks w SET written_status = r.written_status, reason = r.reason,"
        " customer_notified = w.customer_notified OR r.customer_notified, lease_until = NULL, updated_at = now(),"
        " status = CASE WHEN r.status = 'written' AND w.target_status <> r.written_status THEN 'pending'"
        "               ELSE r.status END,"
        " next_attempt_at = coalesce(r.next_attempt_at, w.next_attempt_at)"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::timestamptz[], $7::int[])"
        "   AS r(order_id, status, written_status, reason, customer_notified, next_attempt_at, attempt)"
        " WHERE w.order_id = r.order_id AND w.attempts = r.attempt AND w.lease_until IS NOT NULL"
        " RETURNING w.order_id",
        [r.order_id for r in results],
        [r.status for r in results],
        [r.written_status for r in results],
        [r.reason for r in results],
        [r.customer_notified for r in results],
        [r.next_attempt_at for r in results],
        [r.attempt for r in results],
    )
    recorded = {r["order_id"] for r in stored}
    await add_activity(
        conn, [(r.order_id, r.tenant_id, r.status, r.activity) for r in results if r.order_id in recorded]
    )
    return recorded


async def add_activity(conn: asyncpg.Connection, entries: Sequence[tuple[str, str, str, str]]) -> None:
    """Append (order_id, tenant_id, kind, message) entries to the activity log."""
    await append_activity(conn, "writeback_activity", entries)


async def get_writeback(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> asyncpg.Record | None:
    """Return one order's writeback of `tenant_id`, or None."""
    return await pool.fetchrow(
        "SELECT order_id, target_status, written_status, status, reason, attempts, customer_notified,"
        " shipment_proto, updated_at FROM writebacks WHERE tenant_id = $1 AND order_id = $2",
        tenant_id,
        order_id,
    )
