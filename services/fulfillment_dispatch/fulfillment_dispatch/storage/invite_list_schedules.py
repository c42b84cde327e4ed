"""Invite-list mirror schedules: one row per directory account mirrored periodically, leased by
one replica at a time (storage/account_schedules.py, as product-sync schedules are); releasing is
fenced by the lease, so a replica that stalled past its lease changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from fulfillment_dispatch.storage.account_schedules import AccountSchedule


@dataclass(frozen=True)
class MirrorLease:
    """A leased directory account: whose, which provider, and its failed passes in a row."""

    tenant_id: str
    provider_account: str
    provider: str
    failures: int


SCHEDULE = AccountSchedule("invite_list_schedules", "next_sync_at", ("failures",))


async def ensure_rows(pool: asyncpg.Pool, accounts: Sequence[tuple[str, str, str]]) -> None:
    """Make a row (due now) for every (tenant, directory account, provider) that has none."""
    await SCHEDULE.ensure_rows(pool, accounts)


async def claim_due(
    pool: asyncpg.Pool, owner: str, lease_s: float, limit: int, accounts: Sequence[tuple[str, str, str]]
) -> list[MirrorLease]:
    """Lease up to `limit` due rows of the configured `accounts` that nobody holds."""
    rows = await SCHEDULE.claim_due(pool, owner, lease_s, limit, accounts)
    return [MirrorLease(r["tenant_id"], r["provider_account"], r["provider"], r["failures"]) for r in rows]


async def release(pool: asyncpg.Pool, lease: MirrorLease, owner: str, next_in_s: float, *, error: str = "") -> None:
    """Give the lease back with the next pass due in `next_in_s`; a non-empty `error` counts a
    failed pass (and is kept), an empty one marks the pass done."""
    await pool.execute(
        """
        UPDATE invite_list_schedules
           SET lease_owner = NULL, lease_until = NULL, next_sync_at = now() + make_interval(secs => $4),
               failures = CASE WHEN $5 = '' THEN 0 ELSE failures + 1 END, last_error = $5,
               last_synced_at = CASE WHEN $5 = '' THEN now() ELSE last_synced_at END
         WHERE tenant_id = $1 AND provider_account = $2 AND lease_owner = $3
        """,
        lease.tenant_id,
        lease.provider_account,
        owner,
        next_in_s,
        error,
    )
