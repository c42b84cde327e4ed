"""Reconciliation's SQL in dispatch: the orders an account sent in a window, and re-driving one."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from fulfillment_dispatch.storage.dispatches import add_activity, mark_for_retry


async def sent_in_window(
    pool: asyncpg.Pool, tenant_id: str, provider_account: str, since: datetime, until: datetime
) -> list[asyncpg.Record]:
    """The account's orders with the provider (status sent) queued in [since, until], less the
    delivered and cancelled ones: nothing further can be lost for them."""
    return await pool.fetch(
        "SELECT order_id, tenant_id, provider, provider_account, provider_order_number, external_id,"
        " external_number, shipment_status FROM dispatches"
        " WHERE tenant_id = $1 AND provider_account = $2 AND status = 'sent' AND created_at BETWEEN $3 AND $4"
        " AND shipment_status NOT IN ('delivered', 'cancelled')"
        " ORDER BY created_at",
        tenant_id,
        provider_account,
        since,
        until,
    )


async def requeue_missing(pool: asyncpg.Pool, order_id: str, message: str) -> bool:
    """Queue a sent order the provider has not to be sent again, under its row lock and only if it
    is still sent (a concurrent action wins); its order number stays, so the sender's read-back
    before posting keeps it from being created twice. True when queued."""
    async with pool.acquire() as conn, conn.transaction():
        status = await conn.fetchval("SELECT status FROM dispatches WHERE order_id = $1 FOR UPDATE", order_id)
        if status != "sent":
            return False
        await mark_for_retry(conn, order_id)
        tenant_id = await conn.fetchval("SELECT tenant_id FROM dispatches WHERE order_id = $1", order_id)
        await add_activity(conn, [(order_id, tenant_id, "reconcile_resend", message)])
    return True
