"""Tracking writeback's view of each channel account it writes to (ConnectionHealthService,
libs/platform/connection_health.py).

Per channel account of the tenant (writebacks.channel_account, its connector writebacks.channel):
the shipments not yet written (pending, retry_wait, blocked; the oldest by when its wanted state
arrived), the writes that ended in the window (written, failed or blocked, by their last change)
and how many of them failed or were blocked, the latest failure's reason, and the couriers a
blocked write names as unmapped carrier codes (the provider's service code in the shipment; its
carrier name when the provider gave no code). Three queries for the tenant, whatever its number
of accounts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import asyncpg
from ordersync.common.v1 import shipment_pb2

from libs.platform.connection_health import CARRIER_CODE, ConnectionHealth, Unmapped

_UNWRITTEN = ("pending", "retry_wait", "blocked")
_ENDED = ("written", "failed", "blocked")
_FAILED = ("failed", "blocked")


class WritebackHealth:
    """The HealthSource of tracking writeback."""

    async def connection_health(self, pool: asyncpg.Pool, tenant_id: str, since: datetime) -> list[ConnectionHealth]:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            counts = await conn.fetch(
                "SELECT channel_account, channel,"
                " count(*) FILTER (WHERE status = ANY($3::text[])) AS unwritten,"
                " min(wanted_at) FILTER (WHERE status = ANY($3::text[])) AS oldest_unwritten,"
                " count(*) FILTER (WHERE status = ANY($4::text[]) AND updated_at >= $2) AS attempts,"
                " count(*) FILTER (WHERE status = ANY($5::text[]) AND updated_at >= $2) AS failures"
                " FROM writebacks WHERE tenant_id = $1 AND (status = ANY($3::text[]) OR updated_at >= $2)"
                " GROUP BY channel_account, channel",
                tenant_id,
                since,
                list(_UNWRITTEN),
                list(_ENDED),
                list(_FAILED),
            )
            errors = await conn.fetch(
                "SELECT DISTINCT ON (channel_account, channel) channel_account, channel, reason FROM writebacks"
                " WHERE tenant_id = $1 AND status IN ('retry_wait', 'failed', 'blocked') AND reason <> ''"
                " AND (status <> 'failed' OR updated_at >= $2)"
                " ORDER BY channel_account, channel, updated_at DESC",
                tenant_id,
                since,
            )
            blocked = await conn.fetch(
                "SELECT order_id, channel_account, channel, shipment_proto, updated_at FROM writebacks"
                " WHERE tenant_id = $1 AND status = 'blocked'",
                tenant_id,
            )
        last_error = {(r["channel_account"], r["channel"]): r["reason"] for r in errors}
        unmapped = _unmapped_carriers(blocked)
        return [
            ConnectionHealth(
                account=r["channel_account"],
                connector=r["channel"],
                oldest_unwritten=r["oldest_unwritten"],
                unwritten_count=r["unwritten"],
                attempts=r["attempts"],
                failures=r["failures"],
                last_error=last_error.get((r["channel_account"], r["channel"]), ""),
                unmapped=unmapped.get((r["channel_account"], r["channel"]), []),
            )
            for r in counts
        ]


def _unmapped_carriers(rows: list[asyncpg.Record]) -> dict[tuple[str, str], list[Unmapped]]:
    """Per (account, channel): each courier blocked writes name, with the orders it holds up."""
    held: dict[tuple[str, str, str], list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        held[(row["channel_account"], row["channel"], _courier(row["shipment_proto"]))].append(row)
    found: dict[tuple[str, str], list[Unmapped]] = defaultdict(list)
    for (account, channel, code), orders in held.items():
        latest = max(orders, key=lambda r: r["updated_at"])
        found[(account, channel)].append(
            Unmapped(CARRIER_CODE, code, len(orders), latest["updated_at"], latest["order_id"], channel)
        )
    return found


def _courier(data: bytes) -> str:
    """The courier a blocked write could not map: the provider's service code, else its carrier name."""
    shipment = shipment_pb2.Shipment()
    shipment.ParseFromString(data)
    return shipment.service_code or shipment.carrier or "(not named)"
