"""Reads sent orders back from the provider when their updates are overdue.

Vinoshipper's webhooks can be lost (our endpoint down past its retries, a misconfigured URL), so
each sent order that is not yet delivered or cancelled is read back on a schedule: soon after
sending, then ever less often while nothing changes. A lost webhook delays a status; it never
loses it. News goes through the same ShipmentRecorder as webhooks do.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from fulfillment_dispatch.providers import ProviderClients
from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.dispatches import add_activity, claim_status_checks
from libs.connectors.base.errors import ConnectorError
from libs.connectors.vinoshipper.shipments import parse_order_detail

log = logging.getLogger(__name__)


class StatusChecker:
    """One pass = take the orders whose check is due, read each back, apply what changed."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        providers: ProviderClients,
        recorder: ShipmentRecorder,
        *,
        batch: int,
        base_s: float,
        max_s: float,
        concurrency: int = 8,
    ):
        self._pool = pool
        self._providers = providers
        self._recorder = recorder
        self._batch = batch
        self._base_s = base_s
        self._max_s = max_s
        self._limit = asyncio.Semaphore(concurrency)

    async def run_once(self) -> int:
        """Check one batch of due orders; return how many were checked."""
        rows = await claim_status_checks(self._pool, self._batch, self._base_s, self._max_s)
        await asyncio.gather(*(self._check(row) for row in rows))
        return len(rows)

    async def _check(self, row) -> None:
        async with self._limit:
            try:
                outcome = await check_at_provider(self._providers, self._recorder, row)
            except (ConnectorError, LookupError) as exc:
                # The next check is already scheduled; a failed read only postpones this one.
                log.warning("status check failed", extra={"fields": {"order_id": row["order_id"], "error": str(exc)}})
                return
            if outcome == "applied":
                log.info("status check found an update", extra={"fields": {"order_id": row["order_id"]}})


async def check_at_provider(providers: ProviderClients, recorder: ShipmentRecorder, row) -> str:
    """Read one order back from its provider and apply its state.

    Returns the recorder's outcome ('applied' or 'unchanged'), or 'missing' when the provider has
    no such order (logged in the order's activity, since a sent order should never vanish).
    """
    client = await providers.for_tenant(row["tenant_id"])
    detail = await client.get_order(row["provider_order_number"])
    if detail is None:
        async with recorder.pool.acquire() as conn:
            message = f"Vinoshipper has no order {row['provider_order_number']} (deleted there?)"
            await add_activity(conn, [(row["order_id"], row["tenant_id"], "status_check_missing", message)])
        return "missing"
    return await recorder.apply(
        row["tenant_id"], row["provider"], row["provider_order_number"], parse_order_detail(detail)
    )
