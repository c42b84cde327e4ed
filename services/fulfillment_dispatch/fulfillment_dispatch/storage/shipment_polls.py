"""Shipment-poll cursors: one row per polled provider account, leased by one replica at a time.

Leases are storage/account_schedules.py's. Every write of a cursor is fenced by the lease: a replica that stalled
past its lease and was taken over cannot move the cursor back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from fulfillment_dispatch.storage.account_schedules import AccountSchedule


@dataclass(frozen=True)
class PollLease:
    """A leased account: whose, which provider, and the watermark to poll from."""

    tenant_id: str
    provider_account: str
    provider: str
    cursor: str
    failures: int


SCHEDULE = AccountSchedule("shipment_poll_cursors", "next_poll_at", ("cursor", "failures"))


async def ensure_rows(pool: asyncpg.Pool, accounts: Sequence[tuple[str, str, str]]) -> None:
    """Make a row (due now, from the start) for every (tenant, account, provider) that has none."""
    await SCHEDULE.ensure_rows(pool, accounts)


async def claim_due(
    pool: asyncpg.Pool, owner: str, lease_s: float, limit: int, accounts: Sequence[tuple[str, str, str]]
) -> list[PollLease]:
    """Lease up to `limit` due rows of the configured `accounts` that nobody holds."""
    rows = await SCHEDULE.claim_due(pool, owner, lease_s, limit, accounts)
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
