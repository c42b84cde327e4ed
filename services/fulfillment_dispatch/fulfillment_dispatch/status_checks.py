"""Reads sent orders back from the provider when their updates are overdue.

A provider's notices can be lost (our endpoint down past its retries, a misconfigured URL), so
each sent order that is not yet delivered or cancelled is read back on a schedule through its
provider connector (those with Capability.READ_BACK): soon after sending, then ever less often
while nothing changes. A lost notice delays a status; it never loses it. News goes through the
same ShipmentRecorder as notices do.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.dispatches import add_activity, claim_status_checks
from libs.connectors.base.contract import Capability
from libs.connectors.base.errors import ConnectorError
from libs.platform.accounts import AccountClients

log = logging.getLogger(__name__)


class StatusChecker:
    """One pass = take the orders whose check is due, read each back, apply what changed."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        accounts: AccountClients,
        recorder: ShipmentRecorder,
        *,
        batch: int,
        base_s: float,
        max_s: float,
        concurrency: int = 8,
    ):
        self._pool = pool
        self._accounts = accounts
        self._recorder = recorder
        self._batch = batch
        self._base_s = base_s
        self._max_s = max_s
        self._limit = asyncio.Semaphore(concurrency)

    async def run_once(self) -> int:
        """Check one batch of due orders; return how many were checked."""
        readable = [c.info.id for c in self._accounts.registry if c.info.can(Capability.READ_BACK)]
        rows = await claim_status_checks(self._pool, self._batch, self._base_s, self._max_s, readable)
        await asyncio.gather(*(self._check(row) for row in rows))
        return len(rows)

    async def _check(self, row) -> None:
        async with self._limit:
            try:
                outcome = await check_at_provider(self._accounts, self._recorder, row)
            except (ConnectorError, LookupError) as exc:
                # The next check is already scheduled; a failed read only postpones this one.
                log.warning("status check failed", extra={"fields": {"order_id": row["order_id"], "error": str(exc)}})
                return
            if outcome == "applied":
                log.info("status check found an update", extra={"fields": {"order_id": row["order_id"]}})


class CannotReadBack(LookupError):
    """The order's provider cannot be read back (no Capability.READ_BACK)."""


async def check_at_provider(accounts: AccountClients, recorder: ShipmentRecorder, row) -> str:
    """Read one order back from its provider and apply its state.

    Returns the recorder's outcome ('applied' or 'unchanged'), or 'missing' when the provider has
    no such order (logged in the order's activity, since a sent order should never vanish).
    Raises CannotReadBack for a provider without read-back, LookupError when the account is not
    configured, ConnectorError when the provider could not answer.
    """
    opened = await accounts.provider(row["tenant_id"], row["provider_account"], row["provider"])
    connector = opened.connector
    if not connector.info.can(Capability.READ_BACK):
        raise CannotReadBack(f"{connector.info.label} orders cannot be read back")
    notice = await connector.read_back(opened.client, opened.settings, row["provider_order_number"])
    if notice is None:
        async with recorder.pool.acquire() as conn:
            message = f"{connector.info.label} has no order {row['provider_order_number']} (deleted there?)"
            await add_activity(conn, [(row["order_id"], row["tenant_id"], "status_check_missing", message)])
        return "missing"
    return await recorder.apply(row["tenant_id"], row["provider"], row["provider_order_number"], notice.shipment)
