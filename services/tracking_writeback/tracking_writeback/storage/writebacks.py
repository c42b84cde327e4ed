"""Tracking writeback's SQL: the queue of wanted channel states, leases, results, activity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from ordersync.common.v1 import shipment_pb2

from libs.platform.activity import append_activity
from libs.platform.db import PgConnection
from libs.platform.work_queue import QueueTable, WorkQueue


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
    order_lines_proto: bytes = b""  # an Order holding only the order's lines; b"" on older events


@dataclass(frozen=True)
class WriteResult:
    order_id: str
    tenant_id: str
    status: str  # written | retry_wait | failed | blocked
    written_status: str
    reason: str
    customer_notified: bool
    next_attempt_at: datetime | None
    activity: str
    attempt: int  # the attempt this result belongs to (fences out stale lease holders)
    written_tracking: str  # JSON list: the tracking numbers the channel shows after this attempt
    target_revision: int  # the wanted state's revision this attempt wrote (a newer one stays pending)


@dataclass(frozen=True)
class Target:
    """An order's wanted state as stored: its status and the shipment it came with."""

    status: str
    shipment: shipment_pb2.Shipment


async def load_targets(conn: PgConnection, order_ids: Sequence[str]) -> dict[str, Target]:
    """Return the wanted state of each known order, locked for this transaction."""
    rows = await conn.fetch(
        "SELECT order_id, target_status, shipment_proto FROM writebacks WHERE order_id = ANY($1::text[])"
        " ORDER BY order_id FOR UPDATE",  # one lock order for every writer: no deadlocks
        list(order_ids),
    )
    return {r["order_id"]: Target(r["target_status"], _shipment(r["shipment_proto"])) for r in rows}


def _shipment(data: bytes) -> shipment_pb2.Shipment:
    shipment = shipment_pb2.Shipment()
    shipment.ParseFromString(data)
    return shipment


async def want(conn: PgConnection, states: Sequence[WantedState]) -> None:
    """Insert or advance the wanted state of orders and queue them for writing.

    `attempts` is left alone: it fences the result of a write that may be in flight, which then
    records what it wrote and leaves the newer state pending.
    """
    if not states:
        return
    await conn.execute(
        "INSERT INTO writebacks (order_id, tenant_id, channel, external_id, external_number, target_status,"
        " shipment_proto, traceparent, provider, channel_account, order_lines_proto, status)"
        " SELECT *, 'pending' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
        " $7::bytea[], $8::text[], $9::text[], $10::text[], $11::bytea[])"
        " ON CONFLICT (order_id) DO UPDATE SET target_status = EXCLUDED.target_status, provider = EXCLUDED.provider,"
        " channel_account = coalesce(nullif(EXCLUDED.channel_account, ''), writebacks.channel_account),"
        " order_lines_proto = coalesce(nullif(EXCLUDED.order_lines_proto, ''::bytea), writebacks.order_lines_proto),"
        " shipment_proto = EXCLUDED.shipment_proto, status = 'pending', reason = '',"
        " target_revision = writebacks.target_revision + 1, next_attempt_at = now(), updated_at = now(),"
        " wanted_at = now()",
        *[[getattr(s, column) for s in states] for column in WantedState.__dataclass_fields__],
    )
    await add_activity(conn, [(s.order_id, s.tenant_id, "wanted", _wanted_words(s)) for s in states])


def _wanted_words(state: WantedState) -> str:
    if state.target_status:
        return f"provider reports {state.target_status}"
    return "provider reports every label voided: nothing to show in the channel until the next one"


WRITE_QUEUE = WorkQueue(
    QueueTable(
        table="writebacks",
        key="order_id",
        due_statuses=("pending", "retry_wait", "blocked"),
        returned=(
            "status",  # as before the claim: a blocked row's re-check says so
            "reason",
            "tenant_id",
            "channel",
            "provider",
            "external_id",
            "external_number",
            "target_status",
            "written_status",
            "shipment_proto",
            "customer_notified",
            "traceparent",
            "channel_account",
            "written_tracking",
            "target_revision",
            "order_lines_proto",
        ),
        results={
            "written_status": "text",
            "reason": "text",
            "customer_notified": "bool",
            "written_tracking": "jsonb",
            "target_revision": "bigint",
        },
        stored=("written_status", "reason", "written_tracking"),
        set_clauses=(
            "customer_notified = q.customer_notified OR r.customer_notified",
            "updated_at = now()",
            # A blocked row's re-check is not an attempt: it gives back the one its claim counted,
            # so a courier left unmapped for days never uses up the attempts its write will need.
            # (The lease is released with it, so a late result of an earlier attempt stays fenced out.)
            "attempts = CASE WHEN r.status = 'blocked' THEN q.attempts - 1 ELSE q.attempts END",
        ),
        # A newer wanted state that arrived while this write was under way stays pending, a
        # voided label (same status, newer revision) included.
        status_sql="CASE WHEN q.target_revision <> r.target_revision THEN 'pending' ELSE r.status END",
        activity_table="writeback_activity",
    )
)
"""The write queue: orders whose channel update is 'pending', 'retry_wait' or 'blocked' (re-checked)
(libs.platform.work_queue)."""


async def claim_due(pool: asyncpg.Pool, limit: int, lease_s: float) -> list[asyncpg.Record]:
    """Lease up to `limit` orders whose channel update is due, counting the attempt."""
    return await WRITE_QUEUE.claim(pool, limit, lease_s)


async def record_results(conn: PgConnection, results: Sequence[WriteResult]) -> set[str]:
    """Store write outcomes and release leases; return the order ids stored.

    A result counts only while its attempt still holds the lease (a late one is dropped). A newer
    wanted state that arrived meanwhile stays pending. Results are stored in order-id order,
    the lock order of load_targets.
    """
    return await WRITE_QUEUE.record(conn, results)


async def recheck_blocked(pool: asyncpg.Pool, tenant_ids: Sequence[str] | None) -> int:
    """Make the blocked writebacks of these tenants (None: of every tenant) due now, as their
    carrier mappings changed; return how many."""
    result = await pool.execute(
        "UPDATE writebacks SET next_attempt_at = now()"
        " WHERE status = 'blocked' AND next_attempt_at > now() AND ($1::text[] IS NULL OR tenant_id = ANY($1::text[]))",
        None if tenant_ids is None else list(tenant_ids),
    )
    return int(result.split()[-1])


async def add_activity(conn: PgConnection, entries: Sequence[tuple[str, str, str, str]]) -> None:
    """Append (order_id, tenant_id, kind, message) entries to the activity log."""
    await append_activity(conn, "writeback_activity", entries)


_RECORD_COLUMNS = (
    "order_id, target_status, written_status, status, reason, attempts, customer_notified,"
    " shipment_proto, written_tracking, updated_at"
)


async def get_writeback(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> asyncpg.Record | None:
    """Return one order's writeback of `tenant_id`, or None."""
    return await pool.fetchrow(
        f"SELECT {_RECORD_COLUMNS} FROM writebacks WHERE tenant_id = $1 AND order_id = $2", tenant_id, order_id
    )


async def list_writebacks(
    pool: asyncpg.Pool,
    tenant_id: str,
    statuses: Sequence[str],
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to `limit` of the tenant's writebacks in these statuses (all when empty), latest change
    first, from after the (updated_at, order_id) position `after` (None: from the top).

    A record changed while an operator pages moves to the top: a new listing shows it."""
    return await pool.fetch(
        f"SELECT {_RECORD_COLUMNS}, channel_account, channel, external_number FROM writebacks"
        " WHERE tenant_id = $1 AND (cardinality($2::text[]) = 0 OR status = ANY($2::text[]))"
        " AND ($3::timestamptz IS NULL OR (updated_at, order_id) < ($3, $4))"
        " ORDER BY updated_at DESC, order_id DESC LIMIT $5",
        tenant_id,
        list(statuses),
        after[0] if after else None,
        after[1] if after else "",
        limit,
    )
