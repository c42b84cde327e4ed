"""Shipment polling: lists each provider account's new shipments, so a lost notice is recovered.

A provider's webhooks can be lost (our endpoint down past the provider's retries, a URL
misconfigured). Status checks read orders back one by one, which a tight budget (ShipStation:
40 requests a minute) cannot afford for thousands of orders. A connector with
Capability.POLL_SHIPMENTS lists the shipments created after a watermark instead, hundreds a
request (`read_back_since`); this worker polls each such account every
`ORDERSYNC_DISPATCH_SHIPMENT_POLL_S` and applies each page's notices together (one transaction)
through the ShipmentRecorder the webhooks use. Applying is idempotent (a shipment already applied is `unchanged`), so a notice
that came by webhook and by poll, or a page polled twice, changes nothing.

One replica polls an account at a time: its row in `shipment_poll_cursors` is leased (as
order_intake's pull scheduler leases pull cursors). After each page the watermark moves and the
lease is renewed in one fenced update; a poll whose lease was lost stops, and another replica
resumes from the stored watermark, re-applying at most a page. Errors release the row with an
exponential backoff, counted in `failures`, the error in `last_error`. The polls' reads queue
behind creates in the account's rate budget (writes before reads).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg

from fulfillment_dispatch.shipments import ShipmentRecorder, apply_notices
from fulfillment_dispatch.storage import shipment_polls
from fulfillment_dispatch.storage.shipment_polls import PollLease
from libs.connectors.base.contract import Capability, ProviderConnector
from libs.connectors.base.errors import ConnectorError, redact
from libs.platform.accounts import AccountClients
from libs.platform.tenants import TenantDirectory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollSettings:
    """How often accounts are polled and how a poll is bounded.

    Attributes:
        interval_s: the wait between polls of one account (ORDERSYNC_DISPATCH_SHIPMENT_POLL_S).
        lease_s: how long a lease lasts unrenewed (renewed at every page).
        max_pages: pages one poll reads before giving the account back (then due at once).
        max_accounts: accounts one pass leases.
        backoff_max_s: the longest wait after failed polls.
    """

    interval_s: float = 300.0
    lease_s: float = 60.0
    max_pages: int = 20
    max_accounts: int = 8
    backoff_max_s: float = 1800.0

    def backoff(self, failures_before: int) -> float:
        # Doubling from the interval, capped, jittered: accounts failing together (an outage)
        # do not retry together.
        return min(self.interval_s * 2 ** min(failures_before, 16), self.backoff_max_s) * random.uniform(0.5, 1.0)


class ShipmentPoller:
    """One pass = lease the due accounts, poll each page by page, release. For a PollingWorker."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        tenants: TenantDirectory,
        accounts: AccountClients,
        recorder: ShipmentRecorder,
        *,
        owner: str,
        settings: PollSettings,
    ):
        self._pool = pool
        self._tenants = tenants
        self._accounts = accounts
        self._recorder = recorder
        self._owner = owner
        self._settings = settings

    async def run_once(self) -> int:
        """Poll every due account once; return how many notices moved a shipment forward."""
        polled = list(self._polled_accounts())
        await shipment_polls.ensure_rows(self._pool, polled)
        leases = await shipment_polls.claim_due(
            self._pool, self._owner, self._settings.lease_s, self._settings.max_accounts, polled
        )
        applied = 0
        for lease in leases:
            applied += await self._poll(lease)
        return applied

    def _polled_accounts(self) -> Iterator[tuple[str, str, str]]:
        registry = self._accounts.registry
        for tenant in self._tenants:
            for account in tenant.accounts.values():
                if account.connector not in registry:
                    continue
                connector = registry.get(account.connector)
                if isinstance(connector, ProviderConnector) and connector.info.can(Capability.POLL_SHIPMENTS):
                    yield tenant.tenant_id, account.name, account.connector

    async def _poll(self, lease: PollLease) -> int:
        """Read pages from the lease's watermark, applying each; release with the next poll."""
        applied, cursor = 0, lease.cursor
        try:
            opened = await self._accounts.provider(lease.tenant_id, lease.provider_account, lease.provider)
            for _ in range(self._settings.max_pages):
                page = await opened.connector.read_back_since(opened.client, opened.settings, cursor)
                outcomes = await apply_notices(self._recorder, opened, lease.tenant_id, page.notices)
                moved = outcomes.count("applied")
                applied += moved
                cursor = page.next_cursor
                held = await shipment_polls.advance(
                    self._pool, lease, self._owner, self._settings.lease_s, cursor, moved
                )
                if not held:
                    log.warning("shipment poll lease lost; another replica polls the account", extra=_fields(lease))
                    return applied
                if not page.more:
                    break
            else:
                # Pages are still waiting: poll again at once rather than after the interval.
                await shipment_polls.release(self._pool, lease, self._owner, 0.0)
                return applied
        except (ConnectorError, LookupError) as exc:
            error = redact(str(exc))[:500]
            log.warning("shipment poll failed", extra={"fields": {**_fields(lease)["fields"], "error": error}})
            await shipment_polls.release(self._pool, lease, self._owner, self._settings.backoff(lease.failures), error)
            return applied
        if applied:
            log.info(
                "shipment poll applied notices", extra={"fields": {**_fields(lease)["fields"], "applied": applied}}
            )
        await shipment_polls.release(self._pool, lease, self._owner, self._settings.interval_s)
        return applied


def _fields(lease: PollLease) -> dict:
    return {"fields": {"tenant_id": lease.tenant_id, "account": lease.provider_account}}
