"""Product sync: every warehouse SKU a tenant's product map names exists in the catalog of the
tenant's provider account (Capability.PRODUCT_CATALOG), created with the map's name when missing.

The sync goes one way, map -> provider catalog, and carries products only: no stock levels are
read or pushed anywhere. The channel listing is treated as unlimited stock (Groupon sells deals
against unlimited stock; CommerceInterface has no stock API), and the warehouse owns its stock.

One sync reads the whole catalog once (`list_products`), then creates the missing products one
by one; a product the provider refuses is listed with its reason and the others still go. A
product that appeared meanwhile (`create_product` answering False) counts as present, so a sync
repeated or run by two operators at once creates nothing twice.

On demand through the API and CLI; periodically too when ORDERSYNC_DISPATCH_PRODUCT_SYNC_S is
above 0 (`ProductSyncScheduler`): every account of a connector that maps products and has a
catalog, leased to one replica at a time (storage/product_syncs.py), a failed sync retried with
a doubling backoff.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg

from fulfillment_dispatch.domain.product_map import catalog_products
from fulfillment_dispatch.storage import product_syncs
from fulfillment_dispatch.storage.product_map import list_mappings
from fulfillment_dispatch.storage.product_syncs import SyncLease
from libs.connectors.base.contract import Capability, CatalogProduct, ProductCatalog, ProviderConnector
from libs.connectors.base.errors import ConnectorError, redact
from libs.platform.accounts import AccountClients
from libs.platform.tenants import TenantDirectory

log = logging.getLogger(__name__)


class SyncNotFound(LookupError):
    """The tenant or the account named does not exist; the message says which."""


class SyncUnsupported(Exception):
    """The account's provider has no product catalog."""


@dataclass
class SyncResult:
    """What a sync did: products created (or, in a dry run, to create), SKUs already in the
    catalog, and products the provider refused with why."""

    dry_run: bool
    created: list[CatalogProduct] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class ProductSync:
    """Runs a sync for the API (on demand).

    Args:
        pool: dispatch's pool (the product map).
        accounts: the tenants' accounts and their live clients (shared with the sender, so the
            catalog calls count against the account's rate budget with everything else).
    """

    def __init__(self, pool: asyncpg.Pool, accounts: AccountClients):
        self._pool = pool
        self._accounts = accounts

    async def sync(self, tenant_id: str, provider_account: str, *, dry_run: bool) -> SyncResult:
        """Create the missing products of the tenant's map in the account's catalog.

        Raises:
            SyncNotFound: no such tenant or account.
            SyncUnsupported: the account's connector has no PRODUCT_CATALOG.
            ConnectorError: reading the catalog failed (nothing was created).
            asyncpg / OSError: the database could not be used.
        """
        connector = self._catalog_connector(tenant_id, provider_account)
        wanted = catalog_products(await list_mappings(self._pool, tenant_id))
        opened = await self._accounts.provider(tenant_id, provider_account)
        existing = {p.sku for p in await connector.list_products(opened.client, opened.settings)}
        result = SyncResult(dry_run)
        for sku, name in sorted(wanted.items()):
            product = CatalogProduct(sku, name)
            if sku in existing:
                result.present.append(sku)
            elif dry_run:
                result.created.append(product)
            else:
                await self._create(connector, opened, product, result)
        log.info(
            "product sync",
            extra={
                "fields": {
                    "tenant_id": tenant_id,
                    "account": provider_account,
                    "dry_run": dry_run,
                    "created": len(result.created),
                    "present": len(result.present),
                    "failed": len(result.failed),
                }
            },
        )
        return result

    async def _create(self, connector: ProductCatalog, opened, product: CatalogProduct, result: SyncResult) -> None:
        try:
            created = await connector.create_product(opened.client, opened.settings, product)
        except ConnectorError as exc:  # one product refused (or the provider failed): the rest still go
            result.failed.append((product.sku, str(exc)))
            return
        if created:
            result.created.append(product)
        else:
            result.present.append(product.sku)

    def _catalog_connector(self, tenant_id: str, name: str) -> ProductCatalog:
        try:
            account = self._accounts.account(tenant_id, name)
            connector = self._accounts.registry.get(account.connector)
        except LookupError as exc:  # AccountNotConfigured, UnknownConnector
            raise SyncNotFound(str(exc)) from None
        # A provider's catalog only: the products are the ones dispatch sends to it.
        provider = isinstance(connector, ProviderConnector) and connector.info.can(Capability.PRODUCT_CATALOG)
        if not provider or not isinstance(connector, ProductCatalog):
            raise SyncUnsupported(f"account {name!r} ({account.connector}) has no product catalog to sync")
        return connector


class ProductSyncScheduler:
    """One pass = lease the due accounts, sync each, release with the next sync. For a PollingWorker.

    Args:
        interval_s: between syncs of one account (ORDERSYNC_DISPATCH_PRODUCT_SYNC_S, above 0).
        owner: this replica's name in leases.
        lease_s: how long a lease lasts (longer than a sync of a large catalog takes).
        max_accounts: accounts one pass leases.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        tenants: TenantDirectory,
        sync: ProductSync,
        registry,
        *,
        interval_s: float,
        owner: str,
        lease_s: float = 600.0,
        max_accounts: int = 4,
    ):
        self._pool = pool
        self._tenants = tenants
        self._sync = sync
        self._registry = registry
        self._interval_s = interval_s
        self._owner = owner
        self._lease_s = lease_s
        self._max_accounts = max_accounts

    async def run_once(self) -> int:
        """Sync every due account once; return how many were synced (or tried)."""
        synced = list(self._synced_accounts())
        await product_syncs.ensure_rows(self._pool, synced)
        leases = await product_syncs.claim_due(self._pool, self._owner, self._lease_s, self._max_accounts, synced)
        for lease in leases:
            await self._run(lease)
        return len(leases)

    def _synced_accounts(self) -> Iterator[tuple[str, str, str]]:
        for tenant in self._tenants:
            for account in tenant.accounts.values():
                if account.connector not in self._registry:
                    continue
                info = self._registry.get(account.connector).info
                if info.maps_products and info.can(Capability.PRODUCT_CATALOG):
                    yield tenant.tenant_id, account.name, account.connector

    async def _run(self, lease: SyncLease) -> None:
        try:
            result = await self._sync.sync(lease.tenant_id, lease.provider_account, dry_run=False)
        except (ConnectorError, SyncNotFound, SyncUnsupported) as exc:
            error = redact(str(exc))[:500]
            log.warning(
                "product sync failed",
                extra={"fields": {"tenant_id": lease.tenant_id, "account": lease.provider_account, "error": error}},
            )
            await product_syncs.release(
                self._pool, lease, self._owner, self._backoff(lease.failures), error=error, failed=True
            )
            return
        # Products the provider refused wait for a fix of the map: said, not retried sooner.
        refused = "; ".join(f"{sku}: {reason}" for sku, reason in result.failed)
        await product_syncs.release(self._pool, lease, self._owner, self._interval_s, error=redact(refused)[:500])

    def _backoff(self, failures_before: int) -> float:
        # Doubling from a minute, capped at the interval, jittered: accounts failing together
        # (an outage) do not retry together.
        return min(60.0 * 2 ** min(failures_before, 16), self._interval_s) * random.uniform(0.5, 1.0)
