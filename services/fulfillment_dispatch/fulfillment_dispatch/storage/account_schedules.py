"""Per-account schedules: one row per (tenant, provider account), due at a time, leased by one
replica at a time.

A lease is a row's `lease_owner`/`lease_until`, taken with `FOR UPDATE SKIP LOCKED` so replicas
never wait on each other. The tables using it (shipment-poll cursors, product-sync schedules)
fence their own writes by the lease; this module holds what they share: making the rows,
leasing the due ones, and releasing a periodic pass (product sync, invite-list mirror).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class AccountSchedule:
    """A schedule table: its name, the column saying when a row is due, and the columns a lease
    returns besides tenant_id, provider_account and provider. Names are code constants."""

    table: str
    due_column: str
    returned: tuple[str, ...]

    async def ensure_rows(self, pool: asyncpg.Pool, accounts: Sequence[tuple[str, str, str]]) -> None:
        """Make a row (due now) for every (tenant, account, provider) that has none."""
        if accounts:
            await pool.executemany(
                f"INSERT INTO {self.table} (tenant_id, provider_account, provider) VALUES ($1, $2, $3)"
                " ON CONFLICT (tenant_id, provider_account) DO NOTHING",
                accounts,
            )

    async def claim_due(
        self, pool: asyncpg.Pool, owner: str, lease_s: float, limit: int, accounts: Sequence[tuple[str, str, str]]
    ) -> list[asyncpg.Record]:
        """Lease up to `limit` due rows of the configured `accounts` that nobody holds."""
        if limit <= 0 or not accounts:
            return []
        tenants, names, providers = (list(column) for column in zip(*accounts, strict=True))
        returned = ", ".join(f"s.{column}" for column in ("tenant_id", "provider_account", "provider", *self.returned))
        return await pool.fetch(
            f"""
            UPDATE {self.table} s
               SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
              FROM (SELECT tenant_id, provider_account FROM {self.table}
                     WHERE {self.due_column} <= now()
                       AND (lease_until IS NULL OR lease_until < now())
                       AND (tenant_id, provider_account, provider) IN
                           (SELECT * FROM unnest($4::text[], $5::text[], $6::text[]))
                     ORDER BY {self.due_column}
                     LIMIT $3
                     FOR UPDATE SKIP LOCKED) due
             WHERE s.tenant_id = due.tenant_id AND s.provider_account = due.provider_account
            RETURNING {returned}
            """,
            owner,
            lease_s,
            limit,
            tenants,
            names,
            providers,
        )

    async def release_pass(
        self,
        pool: asyncpg.Pool,
        key: tuple[str, str],
        owner: str,
        next_in_s: float,
        *,
        error: str = "",
        failed: bool = False,
    ) -> None:
        """Give back the lease of (tenant, provider account) after a periodic pass, next due in
        `next_in_s`. `failed` counts a pass that could not run (in `failures`) and keeps the
        last pass time; `error` is kept either way (a pass may complete and still have refusals
        to say). Fenced: a replica that lost the lease changes nothing. For tables with
        `failures`, `last_error` and `last_synced_at`."""
        await pool.execute(
            f"""
            UPDATE {self.table}
               SET lease_owner = NULL, lease_until = NULL,
                   {self.due_column} = now() + make_interval(secs => $4),
                   failures = CASE WHEN $6 THEN failures + 1 ELSE 0 END, last_error = $5,
                   last_synced_at = CASE WHEN $6 THEN last_synced_at ELSE now() END
             WHERE tenant_id = $1 AND provider_account = $2 AND lease_owner = $3
            """,
            *key,
            owner,
            next_in_s,
            error,
            failed,
        )
