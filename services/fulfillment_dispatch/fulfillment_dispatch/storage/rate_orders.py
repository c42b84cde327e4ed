"""The order a rate quote or freight write names by ordersync id: what dispatch keeps of it."""

from __future__ import annotations

import asyncpg


async def order_for_rates(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> asyncpg.Record | None:
    """The tenant's routed order (`order_proto`) and where it came from (`channel_account`,
    `channel`, `external_id`), or None when dispatch does not know it for this tenant."""
    return await pool.fetchrow(
        "SELECT order_proto, channel, channel_account, external_id FROM dispatches"
        " WHERE tenant_id = $1 AND order_id = $2",
        tenant_id,
        order_id,
    )
