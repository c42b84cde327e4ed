"""Intake's SQL for pulled channels: the `pull_cursors` rows, their leases, cursors and backoff,
and the `handover_acks` of accounts acknowledged once the provider accepted an order.

One row per (tenant, channel account). A replica polls an account only while it holds the row's
lease (`lease_owner`, `lease_until`); every write a poller makes checks that it still does, so a
replica whose lease expired or was taken over changes nothing. See order_intake.pulling.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from libs.platform.db import PgConnection


class LeaseLost(Exception):
    """This replica no longer holds the account's lease; another one polls it now."""


@dataclass(frozen=True)
class AccountKey:
    tenant_id: str
    account: str


@dataclass(frozen=True)
class Lease:
    """A claimed account: what its row said when this replica claimed it."""

    key: AccountKey
    connector: str
    cursor: str
    failures: int
    unacknowledged: list[dict]


@dataclass(frozen=True)
class PendingAck:
    """A committed order the channel has not heard of yet."""

    order_id: str
    ack_token: str

    def as_json(self) -> dict:
        return {"order_id": self.order_id, "ack_token": self.ack_token}


async def ensure_rows(pool: asyncpg.Pool, accounts: Iterable[tuple[str, str, str]]) -> None:
    """Make a row for each configured (tenant, account, connector); a row whose account now
    names another connector starts over from that connector's beginning."""
    rows = list(accounts)
    if not rows:
        return
    await pool.execute(
        "INSERT INTO pull_cursors (tenant_id, account, connector)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[])"
        " ON CONFLICT (tenant_id, account) DO UPDATE SET connector = EXCLUDED.connector, cursor = '',"
        "   unacknowledged = '[]', failures = 0, next_poll_at = now()"
        " WHERE pull_cursors.connector <> EXCLUDED.connector",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
    )


async def claim_due(
    pool: asyncpg.Pool, owner: str, lease_s: float, limit: int, configured: Sequence[tuple[str, str, str]]
) -> list[Lease]:
    """Lease up to `limit` configured accounts that are due and leased by nobody (or expired)."""
    if limit <= 0 or not configured:
        return []
    rows = await pool.fetch(
        "UPDATE pull_cursors p SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)"
        " FROM (SELECT tenant_id, account FROM pull_cursors"
        "       WHERE next_poll_at <= now() AND (lease_until IS NULL OR lease_until < now())"
        "         AND (tenant_id, account, connector) IN"
        "             (SELECT * FROM unnest($4::text[], $5::text[], $6::text[]))"
        "       ORDER BY next_poll_at LIMIT $1 FOR UPDATE SKIP LOCKED) due"
        " WHERE p.tenant_id = due.tenant_id AND p.account = due.account"
        " RETURNING p.tenant_id, p.account, p.connector, p.cursor, p.failures, p.unacknowledged",
        limit,
        owner,
        lease_s,
        [c[0] for c in configured],
        [c[1] for c in configured],
        [c[2] for c in configured],
    )
    return [
        Lease(
            AccountKey(r["tenant_id"], r["account"]),
            r["connector"],
            r["cursor"],
            r["failures"],
            json.loads(r["unacknowledged"]),
        )
        for r in rows
    ]


async def renew(pool: asyncpg.Pool, key: AccountKey, owner: str, lease_s: float) -> bool:
    """Extend the lease; False when it was lost (expired, or taken by another replica)."""
    renewed = await pool.fetchval(
        "UPDATE pull_cursors SET lease_until = now() + make_interval(secs => $4)"
        " WHERE tenant_id = $1 AND account = $2 AND lease_owner = $3 AND lease_until > now() RETURNING true",
        key.tenant_id,
        key.account,
        owner,
        lease_s,
    )
    return bool(renewed)


async def hold(conn: PgConnection, key: AccountKey, owner: str) -> str:
    """Inside a page's transaction: lock the row if this replica still holds the lease, and
    return the committed cursor; raise LeaseLost otherwise (the transaction then rolls back)."""
    cursor = await conn.fetchval(
        "SELECT cursor FROM pull_cursors"
        " WHERE tenant_id = $1 AND account = $2 AND lease_owner = $3 AND lease_until > now() FOR UPDATE",
        key.tenant_id,
        key.account,
        owner,
    )
    if cursor is None:
        raise LeaseLost(f"{key.tenant_id}/{key.account}")
    return cursor


async def advance(
    conn: PgConnection,
    key: AccountKey,
    owner: str,
    lease_s: float,
    cursor: str,
    pulled: int,
    pending: Sequence[PendingAck],
) -> None:
    """Inside the page's transaction, after `hold`: move the cursor, count the page's orders and
    queue its acknowledgements; the lease is renewed with it."""
    await conn.execute(
        "UPDATE pull_cursors SET cursor = $4, orders_pulled = orders_pulled + $5, last_polled_at = now(),"
        " unacknowledged = unacknowledged || $6::jsonb, lease_until = now() + make_interval(secs => $7)"
        " WHERE tenant_id = $1 AND account = $2 AND lease_owner = $3",
        key.tenant_id,
        key.account,
        owner,
        cursor,
        pulled,
        json.dumps([p.as_json() for p in pending]),
        lease_s,
    )


async def acknowledged(pool: asyncpg.Pool, key: AccountKey, owner: str, done: Sequence[PendingAck]) -> None:
    """Drop acknowledged entries (if the lease is lost, the new holder acknowledges them again)."""
    await pool.execute(
        "UPDATE pull_cursors SET unacknowledged ="
        "  (SELECT coalesce(jsonb_agg(e), '[]') FROM jsonb_array_elements(unacknowledged) e"
        "   WHERE NOT $4::jsonb @> jsonb_build_array(e))"
        " WHERE tenant_id = $1 AND account = $2 AND lease_owner = $3",
        key.tenant_id,
        key.account,
        owner,
        json.dumps([p.as_json() for p in done]),
    )


async def release(
    pool: asyncpg.Pool, key: AccountKey, owner: str, *, next_poll_in_s: float, failed: bool, last_error: str
) -> None:
    """End this replica's turn: schedule the next poll, show `last_error` ('' when all went
    well), count a failed poll (a healthy one resets the count) and give up the lease."""
    failures = "failures + 1" if failed else "0"
    await pool.execute(
        f"UPDATE pull_cursors SET failures = {failures}, last_error = $5,"
        " next_poll_at = now() + make_interval(secs => $4), lease_owner = NULL, lease_until = NULL"
        " WHERE tenant_id = $1 AND account = $2 AND lease_owner = $3",
        key.tenant_id,
        key.account,
        owner,
        next_poll_in_s,
        last_error,
    )


async def orders_to_acknowledge(pool: asyncpg.Pool, order_ids: Sequence[str]) -> dict[str, bytes]:
    """The stored orders of pending acknowledgements, by id (to hand the connector again)."""
    rows = await pool.fetch("SELECT order_id, order_proto FROM orders WHERE order_id = ANY($1::text[])", order_ids)
    return {r["order_id"]: r["order_proto"] for r in rows}


async def list_cursors(pool: asyncpg.Pool, tenant_id: str) -> list[asyncpg.Record]:
    """A tenant's pull cursors, by account, for operators (the gRPC ListPullCursors), with the
    account's orders awaiting their handover and those handed over but not yet acknowledged."""
    return await pool.fetch(
        "SELECT p.account, p.connector, p.cursor, p.lease_owner, p.lease_until, p.next_poll_at, p.failures,"
        " p.last_error, p.last_polled_at, p.orders_pulled, jsonb_array_length(p.unacknowledged) AS unacknowledged_count,"
        " count(h.order_id) FILTER (WHERE h.handed_over_at IS NULL) AS awaiting_handover_count,"
        " count(h.order_id) FILTER (WHERE h.handed_over_at IS NOT NULL) AS handed_over_unacknowledged_count"
        " FROM pull_cursors p LEFT JOIN handover_acks h"
        "   ON h.tenant_id = p.tenant_id AND h.account = p.account AND h.acknowledged_at IS NULL"
        " WHERE p.tenant_id = $1 GROUP BY p.tenant_id, p.account ORDER BY p.account",
        tenant_id,
    )


# ---- acknowledgements on handover (AckMoment.ON_HANDOVER) -------------------------------------


async def await_handover(conn: PgConnection, key: AccountKey, pending: Sequence[PendingAck]) -> None:
    """Inside the page's transaction: record each order's acknowledgement to make once the
    provider accepted it. One row per order: a re-listed order adds none, and a newer revision's
    token replaces the old one while the channel has not been told yet."""
    if not pending:
        return
    # Rows locked in order-id order, as handed_over locks them: the two never wait in a cycle.
    pending = sorted(pending, key=lambda p: p.order_id)
    await conn.execute(
        "INSERT INTO handover_acks (order_id, tenant_id, account, ack_token)"
        " SELECT o, $1, $2, t FROM unnest($3::text[], $4::text[]) AS u(o, t)"
        " ON CONFLICT (order_id) DO UPDATE SET ack_token = EXCLUDED.ack_token"
        " WHERE handover_acks.acknowledged_at IS NULL AND handover_acks.ack_token <> EXCLUDED.ack_token",
        key.tenant_id,
        key.account,
        [p.order_id for p in pending],
        [p.ack_token for p in pending],
    )


async def handed_over(conn: PgConnection, order_ids: Sequence[str]) -> list[AccountKey]:
    """Inside the consumer's transaction: mark these orders handed over (the provider accepted
    them); return the accounts concerned, to wake with `poll_soon` after the commit.

    Orders without a row (their account acknowledges on commit, never, or is pushed) change nothing.
    """
    rows = await conn.fetch(
        "UPDATE handover_acks h SET handed_over_at = now()"
        " FROM (SELECT order_id FROM handover_acks WHERE order_id = ANY($1::text[]) AND handed_over_at IS NULL"
        "       ORDER BY order_id FOR UPDATE) due"  # the lock order of await_handover
        " WHERE h.order_id = due.order_id RETURNING h.tenant_id, h.account",
        list(order_ids),
    )
    return sorted({AccountKey(r["tenant_id"], r["account"]) for r in rows}, key=lambda k: (k.tenant_id, k.account))


async def poll_soon(pool: asyncpg.Pool, keys: Sequence[AccountKey]) -> None:
    """Bring these accounts' next poll forward, so handed-over orders are acknowledged promptly.

    A hint only, so it waits for nothing: an account being polled right now (its row locked by a
    page's commit) is skipped, as that poll acknowledges after its page anyway; an account in
    backoff keeps its wait, as its poll would fail until the channel answers again.
    """
    if not keys:
        return
    await pool.execute(
        "UPDATE pull_cursors p SET next_poll_at = now()"
        " FROM (SELECT tenant_id, account FROM pull_cursors"
        "       WHERE (tenant_id, account) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        "         AND failures = 0 AND next_poll_at > now() FOR UPDATE SKIP LOCKED) due"
        " WHERE p.tenant_id = due.tenant_id AND p.account = due.account",
        [k.tenant_id for k in keys],
        [k.account for k in keys],
    )


async def handed_over_unacknowledged(pool: asyncpg.Pool, key: AccountKey, limit: int) -> list[PendingAck]:
    """Up to `limit` of the account's orders the provider accepted and the channel was not told of."""
    rows = await pool.fetch(
        "SELECT order_id, ack_token FROM handover_acks"
        " WHERE tenant_id = $1 AND account = $2 AND handed_over_at IS NOT NULL AND acknowledged_at IS NULL"
        " ORDER BY handed_over_at, order_id LIMIT $3",
        key.tenant_id,
        key.account,
        limit,
    )
    return [PendingAck(r["order_id"], r["ack_token"]) for r in rows]


async def handovers_acknowledged(pool: asyncpg.Pool, done: Sequence[PendingAck]) -> None:
    """Mark these acknowledgements made. Only the token the channel was given counts: a newer
    revision's token that arrived meanwhile is acknowledged next time."""
    await pool.execute(
        "UPDATE handover_acks h SET acknowledged_at = now()"
        " FROM unnest($1::text[], $2::text[]) AS d(order_id, ack_token)"
        " WHERE h.order_id = d.order_id AND h.ack_token = d.ack_token AND h.acknowledged_at IS NULL",
        [p.order_id for p in done],
        [p.ack_token for p in done],
    )
