"""Fulfillment dispatch's view of each provider account it sends to (ConnectionHealthService,
libs/platform/connection_health.py).

Per provider account of the tenant (dispatches.provider_account, its connector dispatches.provider):
the orders still to reach it (sending, retry_wait, or awaiting_pull for a provider that fetches
them; the oldest by when dispatch recorded it), the
sender's results in the window (sent or Failed to Send, by dispatches.last_result_at) and how many
failed, the latest failure's reason, and the codes failed orders found unmapped
(dispatches.unmapped_codes): the SKUs of UNKNOWN_SKU failures, the shipping codes of
UNMAPPED_CARRIER ones. Three queries for the tenant, whatever its number of accounts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import asyncpg

from libs.platform.connection_health import SERVICE_CODE, SKU, ConnectionHealth, Unmapped

# Still to reach the provider: being sent, retrying, or held for a provider that fetches it.
_UNSENT = ("sending", "retry_wait", "awaiting_pull")
_KINDS = {"UNKNOWN_SKU": SKU, "UNMAPPED_CARRIER": SERVICE_CODE}


class DispatchHealth:
    """The HealthSource of fulfillment dispatch."""

    async def connection_health(self, pool: asyncpg.Pool, tenant_id: str, since: datetime) -> list[ConnectionHealth]:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            counts = await conn.fetch(
                "SELECT provider_account, provider,"
                " count(*) FILTER (WHERE status = ANY($3::text[])) AS unsent,"
                " min(created_at) FILTER (WHERE status = ANY($3::text[])) AS oldest_unsent,"
                " count(*) FILTER (WHERE status IN ('sent', 'failed') AND last_result_at >= $2) AS attempts,"
                " count(*) FILTER (WHERE status = 'failed' AND last_result_at >= $2) AS failures"
                " FROM dispatches WHERE tenant_id = $1 AND (status = ANY($3::text[]) OR last_result_at >= $2)"
                " GROUP BY provider_account, provider",
                tenant_id,
                since,
                list(_UNSENT),
            )
            errors = await conn.fetch(
                "SELECT DISTINCT ON (provider_account, provider) provider_account, provider, reason FROM dispatches"
                " WHERE tenant_id = $1 AND status IN ('failed', 'retry_wait') AND reason <> '' AND last_result_at >= $2"
                " ORDER BY provider_account, provider, last_result_at DESC",
                tenant_id,
                since,
            )
            unmapped = await conn.fetch(
                "SELECT provider_account, provider, channel, reason_code, code, count(*) AS orders,"
                " max(last_result_at) AS last_seen, (array_agg(order_id ORDER BY last_result_at DESC))[1] AS example"
                " FROM dispatches, jsonb_array_elements_text(unmapped_codes) AS code"
                " WHERE tenant_id = $1 AND status = 'failed' AND reason_code = ANY($3::text[]) AND last_result_at >= $2"
                " GROUP BY provider_account, provider, channel, reason_code, code",
                tenant_id,
                since,
                list(_KINDS),
            )
        last_error = {(r["provider_account"], r["provider"]): r["reason"] for r in errors}
        codes: dict[tuple[str, str], list[Unmapped]] = defaultdict(list)
        for r in unmapped:
            codes[(r["provider_account"], r["provider"])].append(
                Unmapped(_KINDS[r["reason_code"]], r["code"], r["orders"], r["last_seen"], r["example"], _system_of(r))
            )
        return [
            ConnectionHealth(
                account=r["provider_account"],
                connector=r["provider"],
                oldest_unsent=r["oldest_unsent"],
                unsent_count=r["unsent"],
                attempts=r["attempts"],
                failures=r["failures"],
                last_error=last_error.get((r["provider_account"], r["provider"]), ""),
                unmapped=codes.get((r["provider_account"], r["provider"]), []),
            )
            for r in counts
        ]


def _system_of(row) -> str:
    """The connector whose code list the fix goes into: the provider's product list for an SKU;
    for a shipping code, the channel's codes, which carrier mapping translates to the provider's."""
    return row["channel"] if _KINDS[row["reason_code"]] == SERVICE_CODE else row["provider"]
