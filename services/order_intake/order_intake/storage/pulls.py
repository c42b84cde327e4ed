"""Intake's SQL for pulled channels: the `pull_cursors` rows, their leases, cursors and backoff,
and the `handover_acks` of accounts acknowledged once the provider accepted an order or told
what the provider said (sync results).

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


@dataclass(frozen=True)
class Handover:
    """Dispatch's word that the provider accepted an order: which provider, and its reference."""

    order_id: str
    provider: str = ""
    provider_reference: str = ""


@dataclass(frozen=True)
class PendingResult:
    """A handover result (accepted with the provider's reference, or refused with the reason)
    the channel has not been told yet; `seq` tells one result of the order from a later one."""

    order_id: str
    ack_token: str
    seq: int
    provider_reference: str
    failure: str


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
        " count(h.order_id) FILTER (WHERE h.acknowledge AND h.handed_over_at IS NULL) AS awaiting_handover_count,"
        " count(h.order_id) FILTER (WHERE h.acknowledge AND h.handed_over_at IS NOT NULL)"
        "   AS handed_over_unacknowledged_count,"
        " count(h.order_id) FILTER (WHERE h.report_results AND h.result_seq > h.reported_seq)"
        "   AS unreported_results_count"
        " FROM pull_cursors p LEFT JOIN handover_acks h"
        "   ON h.tenant_id = p.tenant_id AND h.account = p.account"
        "  AND (h.acknowledged_at IS NULL AND h.acknowledge OR h.report_results AND h.result_seq > h.reported_seq)"
        " WHERE p.tenant_id = $1 GROUP BY p.tenant_id, p.account ORDER BY p.account",
        tenant_id,
    )


# ---- acknowledgements on handover (AckMoment.ON_HANDOVER) -------------------------------------


async def await_handover(
    conn: PgConnection,
    key: AccountKey,
    pending: Sequence[PendingAck],
    *,
    acknowledge: bool = True,
    report_results: bool = False,
) -> None:
    """Inside the page's transaction: record each order's handover row, to acknowledge once the
    provider accepted it (`acknowledge`, AckMoment.ON_HANDOVER) and/or to tell the channel the
    provider's answer (`report_results`, Capability.SYNC_RESULTS). One row per order: a re-listed
    order adds none, and a newer revision's token replaces the old one while the channel has not
    been told yet (always, for a row that only reports results)."""
    if not pending:
        return
    # Rows locked in order-id order, as handed_over locks them: the two never wait in a cycle.
    pending = sorted(pending, key=lambda p: p.order_id)
    await conn.execute(
        "INSERT INTO handover_acks (order_id, tenant_id, account, ack_token, acknowledge, report_results)"
        " SELECT o, $1, $2, t, $5, $6 FROM unnest($3::text[], $4::text[]) AS u(o, t)"
        " ON CONFLICT (order_id) DO UPDATE SET ack_token = EXCLUDED.ack_token"
        " WHERE handover_acks.acknowledged_at IS NULL AND handover_acks.ack_token <> EXCLUDED.ack_token",
        key.tenant_id,
        key.account,
        [p.order_id for p in pending],
        [p.ack_token for p in pending],
        acknowledge,
        report_results,
    )


async def handed_over(conn: PgConnection, handovers: Sequence[str | Handover]) -> list[AccountKey]:
    """Inside the consumer's transaction: mark these orders handed over (the provider accepted
    them), with the provider's reference as their sync result where the row reports results; return
    the accounts concerned, to wake with `poll_soon` after the commit.

    Orders without a row (their account acknowledges on commit, never, or is pushed) change
    nothing; nor does a second handover of one order. A refusal reported before is replaced by
    this acceptance (an operator retried it in dispatch), and the channel is told again.
    """
    items = [h if isinstance(h, Handover) else Handover(h) for h in handovers]
    rows = await conn.fetch(
        "UPDATE handover_acks h SET handed_over_at = now(), provider = d.provider,"
        "   provider_reference = d.reference,"
        "   result = CASE WHEN h.report_results THEN 'accepted' ELSE h.result END, failure = '',"
        "   result_at = CASE WHEN h.report_results THEN now() ELSE h.result_at END,"
        "   result_seq = h.result_seq + CASE WHEN h.report_results THEN 1 ELSE 0 END"
        " FROM (SELECT order_id FROM handover_acks WHERE order_id = ANY($1::text[]) AND handed_over_at IS NULL"
        "       ORDER BY order_id FOR UPDATE) due,"  # the lock order of await_handover
        "      unnest($1::text[], $2::text[], $3::text[]) AS d(order_id, provider, reference)"
        " WHERE h.order_id = due.order_id AND d.order_id = h.order_id RETURNING h.tenant_id, h.account",
        [h.order_id for h in items],
        [h.provider for h in items],
        [h.provider_reference for h in items],
    )
    return _accounts(rows)


async def sync_refused(conn: PgConnection, refusals: Sequence[tuple[str, str]]) -> list[AccountKey]:
    """Inside the consumer's transaction: record (order_id, failure) refusals as the sync result
    of rows that report results; return the accounts concerned, to wake after the commit.

    An order the provider already accepted keeps its acceptance: it is at the provider.
    """
    rows = await conn.fetch(
        "UPDATE handover_acks h SET result = 'refused', failure = d.failure, result_at = now(),"
        "   result_seq = h.result_seq + 1"
        " FROM (SELECT order_id FROM handover_acks WHERE order_id = ANY($1::text[]) AND report_results"
        "         AND handed_over_at IS NULL ORDER BY order_id FOR UPDATE) due,"
        "      unnest($1::text[], $2::text[]) AS d(order_id, failure)"
        " WHERE h.order_id = due.order_id AND d.order_id = h.order_id"
        "   AND (h.result <> 'refused' OR h.failure <> d.failure) RETURNING h.tenant_id, h.account",
        [order_id for order_id, _ in refusals],
        [failure for _, failure in refusals],
    )
    return _accounts(rows)


def _accounts(rows: Sequence[asyncpg.Record]) -> list[AccountKey]:
    return sorted({AccountKey(r["tenant_id"], r["account"]) for r in rows}, key=lambda k: (k.tenant_id, k.account))


async def results_to_report(pool: asyncpg.Pool, key: AccountKey, limit: int) -> list[PendingResult]:
    """Up to `limit` of the account's sync results the channel has not been told yet, oldest first."""
    rows = await pool.fetch(
        "SELECT order_id, ack_token, result_seq, provider_reference, failure FROM handover_acks"
        " WHERE tenant_id = $1 AND account = $2 AND report_results AND result_seq > reported_seq"
        " ORDER BY result_at, order_id LIMIT $3",
        key.tenant_id,
        key.account,
        limit,
    )
    return [
        PendingResult(r["order_id"], r["ack_token"], r["result_seq"], r["provider_reference"], r["failure"])
        for r in rows
    ]


async def results_reported(pool: asyncpg.Pool, done: Sequence[PendingResult]) -> None:
    """Mark these results told. A newer result that arrived meanwhile (a higher seq) stays owed."""
    await pool.execute(
        "UPDATE handover_acks h SET reported_seq = greatest(h.reported_seq, d.seq), reported_at = now()"
        " FROM unnest($1::text[], $2::int[]) AS d(order_id, seq) WHERE h.order_id = d.order_id",
        [p.order_id for p in done],
        [p.seq for p in done],
    )


async def synced(conn: PgConnection, order_id: str) -> asyncpg.Record | None:
    """The handover row of an order the provider accepted (handed_over_at, provider and its
    reference), or None: what decides whether a locked channel's change may still flow."""
    return await conn.fetchrow(
        "SELECT handed_over_at, provider, provider_reference FROM handover_acks"
        " WHERE order_id = $1 AND handed_over_at IS NOT NULL",
        order_id,
    )


async def sync_now(pool: asyncpg.Pool, key: AccountKey) -> asyncpg.Record | None:
    """An operator's "sync now": make the account due at once, even in backoff (the operator may
    have fixed what failed); return its row as it was (next_poll_at, lease_owner, failures), or
    None when the account has no pull cursor."""
    return await pool.fetchrow(
        "UPDATE pull_cursors p SET next_poll_at = least(p.next_poll_at, now())"
        " FROM (SELECT tenant_id, account, next_poll_at, lease_owner, failures FROM pull_cursors"
        "       WHERE tenant_id = $1 AND account = $2 FOR UPDATE) was"
        " WHERE p.tenant_id = was.tenant_id AND p.account = was.account"
        " RETURNING was.next_poll_at, was.lease_owner, was.failures",
        key.tenant_id,
        key.account,
    )


async def committed_cursor(pool: asyncpg.Pool, key: AccountKey) -> str | None:
    """The account's committed cursor, or None when it has no row yet."""
    return await pool.fetchval(
        "SELECT cursor FROM pull_cursors WHERE tenant_id = $1 AND account = $2", key.tenant_id, key.account
    )


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
        " WHERE tenant_id = $1 AND account = $2 AND acknowledge AND handed_over_at IS NOT NULL"
        "   AND acknowledged_at IS NULL"
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
