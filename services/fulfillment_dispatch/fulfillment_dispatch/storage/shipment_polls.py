"""Shipment-poll cursors: one row per polled provider account, leased by one replica at a time.

A lease is a row's `lease_owner`/`lease_until`, taken with `FOR UPDATE SKIP LOCKED` so replicas
never wait on each other. Every write of a cursor is fenced by the lease: a replica that stalled
past its lease and was taken over cannot move the cursor back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class PollLease:
    """A leased account: whose, which provider, and the watermark to poll from."""

    tenant_id: str
    provider_account: str
    provider: str
    cursor: str
    failures: int


async def ensure_rows(pool: asyncpg.Pool, accounts: Sequence[tuple[str, str, str]]) -> None:
    """Make a row (due now, from the start) for every (tenant, account, provider) that has none."""
    if not accounts:
        return
    await pool.executemany(
        "INSERT INTO shipment_poll_cursors (tenant_id, provider_account, provider) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id, provider_account) DO NOTHING",
        accounts,
    )


async def claim_due(
    pool: asyncpg.Pool, owner: str, lease_s: float, limit: int, accounts: Sequence[tuple[str, str, str]]
) -> list[PollLease]:
    """Lease up to `limit` due rows of the configured `accounts` that nobody holds."""
    if limit <= 0 or not accounts:
        return []
    tenants, names, providers = (list(column) for column in zip(*accounts, strict=True))
    rows = await pool.fetch(
        """
        UPDATE shipment_poll_cursors c
           SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
          FROM (SELECT tenant_id, provider_account FROM shipment_poll_cursors
                 WHERE next_poll_at <= now()
                   AND (lease_until IS NULL OR lease_until < now())
                   AND (tenant_id, provider_account, provider) IN
                       (SELECT * FROM unnest($4::text[], $5::text[], $6::text[]))
                 ORDER BY next_poll_at
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED) due
         WHERE c.tenant_id = due.tenant_id AND c.provider_account = due.provider_account
        RETURNING c.tenant_id, c.provider_account, c.provider, c.cursor, c.failures
        """,
        owner,
        lease_s,
        limit,
        tenants,
        names,
        providers,
    )
    return [PollLease(r["tenant_id"], r["provider_account"], r["provider"], r["cursor"], r["failures"]) for r in rows]


async def advance(pool: asyncpg.Pool, lease: PollLease, owner: str, lease_s: float, cursor: str, applied: int) -> bool:
    """Store the new watermark and renew the lease; False when the lease was lost (stop)."""
    status = await pool.execute(
        """
        UPDATE shipment_poll_cursors
           SET cursor = $4, lease_until = now() + make_interval(secs => $5), last_polled_at = now(),
               notices_applied = notices_applied + $6
         WHERE tenant_id = $1 AND provider_account = $2 AND lease_owner = $3 AND lease_until > now()
        """,
        lease.tenant_id,
        lease.provider_account,
        owner,
        cursor,
        lease_s,
        applied,
    )
    return status.endswith(" 1")


async def release(pool: asyncpg.Pool, lease: PollLease, owner: str, next_in_s: float, error: str = "") -> None:
    """Give the lease back with the next poll due in `next_in_s`; an error counts a failure."""
    await pool.execute(
        """
        UPDATE shipment_poll_cursors
           SET lease_owner = NULL, lease_until = NULL, next_poll_at = now() + make_interval(secs => $4),
               failures = CASE WHEN $5 = '' THEN 0 ELSE failures + 1 END, last_error = $5
         WHERE tenant_id = $1 AND provider_account = $2 AND lease_owner = $3
        """,
        lease.tenant_id,
        lease.provider_account,
        owner,
        next_in_s,
        error,
    )
