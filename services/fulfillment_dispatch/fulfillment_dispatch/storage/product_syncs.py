"""Product-sync schedules: one row per provider account synced periodically, leased by one
replica at a time (storage/account_schedules.py, as shipment-poll cursors are);
releasing is fenced by the lease, so a replica that stalled past its lease changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from fulfillment_dispatch.storage.account_schedules import AccountSchedule


@dataclass(frozen=True)
class SyncLease:
    """A leased account: whose, which provider, and its failures in a row so far."""

    tenant_id: str
    provider_account: str
    provider: str
    failures: int


SCHEDULE = AccountSchedule("product_sync_schedules", "next_sync_at", ("failures",))


async def ensure_rows(pool: asyncpg.Pool, accounts: Sequence[tuple[str, str, str]]) -> None:
    """Make a row (due now) for every (tenant, account, provider) that has none."""
    await SCHEDULE.ensure_rows(pool, accounts)


async def claim_due(
    pool: asyncpg.Pool, owner: str, lease_s: float, limit: int, accounts: Sequence[tuple[str, str, str]]
) -> list[SyncLease]:
    """Lease up to `limit` due rows of the configured `accounts` that nobody holds."""
    rows = await SCHEDULE.claim_due(pool, owner, lease_s, limit, accounts)
    return [SyncLease(r["tenant_id"], r["provider_account"], r["provider"], r["failures"]) for r in rows]


async def release(
    pool: asyncpg.Pool, lease: SyncLease, owner: str, next_in_s: float, *, error: str = "", failed: bool = False
) -> None:
    """Give the lease back with the next sync due in `next_in_s`. `failed` counts a failure (the
    sync could not run); `error` is kept either way (products refused are said, not counted)."""
    key = (lease.tenant_id, lease.provider_account)
    await SCHEDULE.release_pass(pool, key, owner, next_in_s, error=error, failed=failed)
