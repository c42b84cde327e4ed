"""Fulfillment dispatch's SQL: the send queue with leases, results, shipments, the activity log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from libs.platform.activity import append_activity


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


async def enqueue(conn: asyncpg.Connection, rows: Sequence[NewDispatch]) -> list[str]:
    """Queue orders for sending (status 'sending'); return the ids that were not queued before."""
    if not rows:
        return []
    inserted = await conn.fetch(
        "INSERT INTO dispatches (order_id, tenant_id, provider, provider_order_number, order_proto,"
        " channel, external_id, external_number, traceparent, status)"
        " SELECT *, 'sending' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[],"
        " $6::text[], $7::text[], $8::text[], $9::text[])"
        " ON CONFLICT (order_id) DO NOTHING RETURNING order_id, tenant_id",
        *[[getattr(r, column) for r in rows] for column in NewDispatch.__dataclass_fields__],
    )
    await add_activity(
        conn, [(r["order_id"], r["tenant_id"], "queued", "routed to provider; queued for sending") for r in inserted]
    )
    return [r["order_id"] for r in inserted]


async def claim_due(pool: asyncpg.Pool, limit: int, lease_s: float) -> list[asyncpg.Record]:
    """Lease up to `limit` orders due for an attempt and count the attempt.

    The lease keeps other replicas off them while this one calls the provider; if this process
    dies, the lease runs out and another pass resumes them (reading back from the provider first).
    """
    return await pool.fetch(
        "UPDATE dispatches d SET lease_until = now() + make_interval(secs => $2),"
        " attempts = d.attempts + 1, updated_at = now()"
        " FROM (SELECT order_id FROM dispatches"
        "       WHERE status IN ('sending', 'retry_wait') AND next_attempt_at <= now()"
        "         AND (lease_until IS NULL OR lease_until < now())"
        "       ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due"
        " WHERE d.order_id = due.order_id"
        " RETURNING d.order_id, d.tenant_id, d.provider, d.provider_order_number, d.attempts, d.order_proto,"
        " d.channel, d.external_id, d.external_number, d.traceparent",
        limit,
        lease_s,
    )


async def record_results(conn: asyncpg.Connection, results: Sequence[AttemptResult]) -> set[str]:
    """Store attempt outcomes, release their leases and log them; return the order ids stored.

    A result is stored only if its order is still leased by that same attempt: when a slow
    attempt outlived its lease and another took over, the late result is dropped, so it can
    neither overwrite a newer outcome nor announce a second one.
    """
    if not results:
        return set()
    stored = await conn.fetch(
        "UPDATE dispatches d SET status = r.status, reason_code = r.reason_code, reason = r.reason,"
        " next_attempt_at = coalesce(r.next_attempt_at, d.next_attempt_at), lease_until = NULL, updated_at = now()"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::int[])"
        "   AS r(order_id, status, reason_code, reason, next_attempt_at, attempt)"
        " WHERE d.order_id = r.order_id AND d.attempts = r.attempt AND d.lease_until IS NOT NULL"
        " RETURNING d.order_id",
        [r.order_id for r in results],
        [r.status for r in results],
        [r.reason_code for r in results],
        [r.reason for r in results],
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
    await append_activity(conn, "dispatch_activity", entries)


async def lock_by_provider_number(
    conn: asyncpg.Connection, tenant_id: str, provider: str, provider_order_number: str
) -> asyncpg.Record | None:
    """Return and lock the tenant's dispatch with this provider order number, or None."""
    return await conn.fetchrow(
        "SELECT order_id, tenant_id, provider_order_number, channel, external_id, external_number, traceparent,"
        " shipment_status FROM dispatches"
        " WHERE tenant_id = $1 AND provider = $2 AND provider_order_number = $3 FOR UPDATE",
        tenant_id,
        provider,
        provider_order_number,
    )


async def update_shipment(conn: asyncpg.Connection, order_id: str, status: str, shipment_proto: bytes) -> None:
    await conn.execute(
        "UPDATE dispatches SET shipment_status = $2, shipment_proto = $3, updated_at = now() WHERE order_id = $1",
        order_id,
        status,
        shipment_proto,
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


async def get_dispatch(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> asyncpg.Record | None:
    """Return one dispatch of `tenant_id`, or None."""
    return await pool.fetchrow(
        "SELECT order_id, tenant_id, provider, status, reason_code, reason, provider_order_number, attempts,"
        " next_attempt_at, updated_at, channel, external_id, external_number, shipment_proto"
        " FROM dispatches WHERE tenant_id = $1 AND order_id = $2",
        tenant_id,
        order_id,
    )
