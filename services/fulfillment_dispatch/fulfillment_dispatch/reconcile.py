"""Dispatch's side of reconciliation: orders sent but missing at the provider, and shipments there
never recorded here (so never written back to the channel).

Each provider account with Capability.READ_BACK has its orders sent in the window read back, a few
at a time (the connector's concurrency) under the account's shared rate budget:

- missing_at_provider: the read-back says the provider has no such order. Re-driven through the
  send queue with its order number unchanged; the sender reads back again before posting (an
  attempt after the first always does), so a create that did land is never made twice;
- unrecorded_shipment: the provider shows shipment progress not recorded here (a lost notice).
  Applied by the ShipmentRecorder, as the notice would have been: the change, its activity and
  ShipmentUpdated commit together, and tracking writeback writes it to the channel;
- unreadable: the read-back failed (reported with the provider's answer; the next run tries again).

Dispatch's shipped orders that writeback never wrote need no check here: ShipmentUpdated leaves
through the outbox in the transaction that recorded it, and writeback's consumer is at-least-once
with its own retries, so between the two nothing is lost silently; what writeback could not write
is shown by writeback itself (GetWriteback: blocked or failed, with the reason) and a dead letter by
the dead-letter views.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg
from ordersync.common.v1 import shipment_pb2

from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.reconcile import requeue_missing, sent_in_window
from libs.connectors.base.contract import Capability, ProviderConnector
from libs.connectors.base.errors import ConnectorError
from libs.platform.accounts import AccountClients, OpenAccount
from libs.platform.reconciliation import HEALED, REPORTED, WOULD_HEAL, AccountReconciler, Finding, RunReport
from libs.platform.tenants import TenantDirectory

log = logging.getLogger(__name__)

SERVICE = "fulfillment-dispatch"
_STATUS_NAME = {
    shipment_pb2.SHIPMENT_STATUS_FULFILLED: "fulfilled",
    shipment_pb2.SHIPMENT_STATUS_SHIPPED: "shipped",
    shipment_pb2.SHIPMENT_STATUS_DELIVERED: "delivered",
    shipment_pb2.SHIPMENT_STATUS_CANCELLED: "cancelled",
}


class DispatchReconciler(AccountReconciler):
    """Reads back each provider account's sent orders and heals what went missing."""

    service = SERVICE

    def __init__(
        self,
        pool: asyncpg.Pool,
        tenants: TenantDirectory,
        accounts: AccountClients,
        recorder: ShipmentRecorder,
        *,
        on_requeued: Callable[[], None],
    ):
        super().__init__(pool, tenants, accounts)
        self._recorder = recorder
        self._on_requeued = on_requeued

    def reconciles(self, connector: object) -> bool:
        return isinstance(connector, ProviderConnector) and connector.info.can(Capability.READ_BACK)

    async def open(self, tenant_id: str, account: str) -> OpenAccount:
        return await self._accounts.provider(tenant_id, account)

    async def compare(self, report: RunReport, opened: OpenAccount) -> None:
        rows = await sent_in_window(
            self._pool, report.tenant_id, report.account, report.window.since, report.window.until
        )
        report.compared = len(rows)
        limit = asyncio.Semaphore(max(1, opened.connector.info.limits.concurrency))

        async def check(row) -> Finding | None:
            async with limit:
                return await self._check(report, opened, row)

        for finding in await asyncio.gather(*(check(row) for row in rows)):
            if finding is not None:
                report.add(finding)

    async def _check(self, report: RunReport, opened, row) -> Finding | None:
        connector: ProviderConnector = opened.connector
        number, name = row["provider_order_number"], connector.info.label

        def finding(kind: str, outcome: str, reason: str) -> Finding:
            return Finding(kind, outcome, reason, row["order_id"], row["external_id"], row["external_number"])

        try:
            notice = await connector.read_back(opened.client, opened.settings, number)
        except ConnectorError as exc:
            return finding("unreadable", REPORTED, f"{name} could not be read back: {exc}")
        if notice is None:
            if report.dry_run:
                return finding("missing_at_provider", WOULD_HEAL, f"{name} has no order {number}; would send again")
            message = f"{name} has no order {number}: sent again by reconciliation"
            if not await requeue_missing(self._pool, row["order_id"], message):
                return finding("missing_at_provider", REPORTED, "the order changed meanwhile; run again")
            self._on_requeued()
            return finding("missing_at_provider", HEALED, f"{name} has no order {number}; queued to send again")
        if notice.shipment is None:
            return None
        reported = _STATUS_NAME.get(notice.shipment.status, "")
        if report.dry_run:
            if reported and reported != row["shipment_status"]:
                return finding("unrecorded_shipment", WOULD_HEAL, f"{name} shows it {reported}; would record it")
            return None
        outcome = await self._recorder.apply(row["tenant_id"], row["provider"], number, notice.shipment)
        if outcome in ("applied", "partial"):
            return finding("unrecorded_shipment", HEALED, f"{name} shows it {reported}; recorded, to be written back")
        return None
