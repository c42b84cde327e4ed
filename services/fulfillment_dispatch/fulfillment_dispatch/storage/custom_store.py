"""The SQL of pull mode: a provider account's export windows, and orders marked sent once fetched.

Every query is scoped by tenant, provider and provider account: one account's store shows
nothing of another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from libs.platform.db import PgConnection

_WINDOW = (
    "FROM dispatches WHERE tenant_id = $1 AND provider = $2 AND provider_account = $3"
    " AND export_modified_at IS NOT NULL AND export_modified_at >= $4 AND export_modified_at < $5"
)


async def count_export_window(
    conn: PgConnection, tenant_id: str, provider: str, account: str, start: datetime, end: datetime
) -> int:
    """How many of the account's exported or held orders changed in [start, end)."""
    return await conn.fetchval(f"SELECT count(*) {_WINDOW}", tenant_id, provider, account, start, end)


async def export_window_page(
    conn: PgConnection,
    tenant_id: str,
    provider: str,
    account: str,
    start: datetime,
    end: datetime,
    *,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    """One page of those orders, oldest change first (a stable order: the provider pages through
    it one request at a time, and fetching an order does not move its change time)."""
    return await conn.fetch(
        "SELECT order_id, tenant_id, status, provider, provider_account, provider_order_number, order_proto,"
        " channel, channel_account, external_id, external_number, shipment_status, export_modified_at"
        f" {_WINDOW} ORDER BY export_modified_at, order_id LIMIT $6 OFFSET $7",
        tenant_id,
        provider,
        account,
        start,
        end,
        limit,
        offset,
    )


async def mark_fetched(
    conn: PgConnection, order_ids: Sequence[str], *, first_check_after: timedelta
) -> list[asyncpg.Record]:
    """Make the orders still awaiting their fetch 'sent'; return those that moved (each once,
    however often the provider fetches it). Like a pushed order, a fetched one is read back
    after `first_check_after` in case the provider's shipment notices never come."""
    return await conn.fetch(
        "UPDATE dispatches SET status = 'sent', reason_code = '', reason = '', updated_at = now(),"
        " next_check_at = now() + $2::interval, status_checks = 0"
        " WHERE order_id = ANY($1::text[]) AND status = 'awaiting_pull'"
        " RETURNING order_id, tenant_id, provider, provider_account, provider_order_number, channel,"
        " channel_account, external_id, external_number, traceparent",
        list(order_ids),
        first_check_after,
    )
