"""Intake's side of reconciliation: orders a channel has that intake never received.

A webhook can be lost (our endpoint down past the channel's retries, a disabled webhook), so each
channel account with Capability.LIST_ORDERS is listed over a window (`connector.list_orders`) and
every listed revision intake holds no record of is ingested through the webhook's own path: the
same RevisionBuilder and RevisionWriter, so it is deduplicated by (order, revision) as a late
webhook would be, routed once, and a second run finds it taken. Findings:

- lost_order: intake had no revision of the order at all (healed: recorded and published);
- lost_revision: intake had the order, not this newer revision, and the revision changes what is
  sent (healed the same way). A newer revision that changes nothing (typically the update the
  channel makes after our own writeback, its webhook not yet arrived) is recorded silently;
- unreachable: the channel could not be listed (reported; the next run tries again).

Pulled channels need no listing: their cursor moves only with a commit, so a poll cannot skip an
order; one without LIST_ORDERS is not scheduled.
"""

from __future__ import annotations

import logging

import asyncpg
from google.protobuf import json_format

from libs.connectors.base.contract import Capability, ChannelConnector, ParsedOrder
from libs.connectors.base.errors import ConnectorError
from libs.platform.accounts import AccountClients, OpenAccount
from libs.platform.reconciliation import (
    HEALED,
    REPORTED,
    UNREACHABLE,
    WOULD_HEAL,
    AccountReconciler,
    Finding,
    RunReport,
)
from libs.platform.tenants import TenantDirectory
from order_intake.pulling.scheduler import sync_lock
from order_intake.revisions import RevisionBuilder
from order_intake.storage.orders import Revision, RevisionWriter
from order_intake.storage.reconcile import known_revisions

log = logging.getLogger(__name__)

SERVICE = "order-intake"
MAX_PAGES = 200  # a window's pages at most (50 orders each at Commerce7): a runaway cursor stops
# Writer outcomes that mean the revision was taken as news (anything else changed nothing).
_NEWS = frozenset({"accepted", "invalid", "not_imported", "locked_after_sync"})


class IntakeReconciler(AccountReconciler):
    """Lists each channel account's orders in a window and ingests the ones intake never received."""

    service = SERVICE

    def __init__(
        self,
        pool: asyncpg.Pool,
        tenants: TenantDirectory,
        accounts: AccountClients,
        writer: RevisionWriter,
        builder: RevisionBuilder,
    ):
        super().__init__(pool, tenants, accounts)
        self._writer = writer
        self._builder = builder

    def reconciles(self, connector: object) -> bool:
        return isinstance(connector, ChannelConnector) and connector.info.can(Capability.LIST_ORDERS)

    async def open(self, tenant_id: str, account: str) -> OpenAccount:
        return await self._accounts.channel(tenant_id, account)

    async def compare(self, report: RunReport, opened: OpenAccount) -> None:
        connector: ChannelConnector = opened.connector
        cursor = ""
        try:
            for _ in range(MAX_PAGES):
                page = await connector.list_orders(
                    opened.client, opened.settings, report.window.since, report.window.until, cursor, report.tenant_id
                )
                listed = [item for item in page.orders if isinstance(item, ParsedOrder)]
                report.compared += len(listed)
                await self._heal_page(report, opened, listed)
                if not page.more:
                    return
                cursor = page.next_cursor
            report.add(Finding(UNREACHABLE, REPORTED, f"stopped after {MAX_PAGES} pages; narrow the window"))
        except ConnectorError as exc:
            # Already redacted; what was healed before the error stays healed.
            report.add(Finding(UNREACHABLE, REPORTED, f"{connector.info.label} could not be listed: {exc}"))

    async def _heal_page(self, report: RunReport, opened, listed: list[ParsedOrder]) -> None:
        channel = opened.connector.info.id
        refs = [(p.order.external_id, p.order.revision) for p in listed if p.order.external_id and p.order.revision]
        taken, known = await known_revisions(self._pool, report.tenant_id, channel, refs)
        lock = sync_lock(self._accounts.registry, opened.connector)
        for parsed in listed:
            ref = (parsed.order.external_id, parsed.order.revision)
            if not ref[0] or not ref[1] or ref in taken:
                continue
            kind = "lost_revision" if ref[0] in known else "lost_order"
            number = parsed.order.external_number
            revision = self._revision(report, opened, parsed)
            revision.lock = lock
            if report.dry_run:
                (recorded,) = await self._writer.preview([revision])
            else:
                recorded = await self._writer.record(revision)
            if kind == "lost_revision" and recorded.outcome not in _NEWS:
                continue  # the revision changes nothing: no difference worth reporting
            outcome = WOULD_HEAL if report.dry_run else HEALED
            if recorded.outcome not in _NEWS and recorded.outcome != "duplicate":
                outcome = REPORTED  # refused as a webhook would be (malformed, too large)
            reason = f"recorded as {recorded.outcome}" + (f": {revision.detail}" if revision.detail else "")
            if report.dry_run:
                reason = f"would be recorded as {recorded.outcome}"
            report.add(Finding(kind, outcome, reason, recorded.order_id or "", ref[0], number))

    def _revision(self, report: RunReport, opened, parsed: ParsedOrder) -> Revision:
        # The receipt keeps the order as the connector normalised it, as a pulled record's does.
        body = json_format.MessageToJson(parsed.order, indent=None).encode()
        channel = opened.connector.info.id
        try:
            revision = self._builder.from_parsed(
                report.tenant_id,
                channel,
                report.account,
                parsed,
                body,
                source="reconcile",
                mail_to=opened.account.import_errors_to,
            )
        except ConnectorError as exc:
            return self._builder.receipt(
                report.tenant_id, channel, report.account, body, "malformed", exc.message, source="reconcile"
            )
        too_large = self._builder.event_too_large(revision)
        if too_large is not None:
            return self._builder.receipt(
                report.tenant_id, channel, report.account, body, "too_large", too_large, source="reconcile"
            )
        return revision
