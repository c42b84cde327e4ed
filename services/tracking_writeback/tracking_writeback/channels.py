"""One long-lived Commerce7 client per tenant, paced by the tenant's request budget.

Commerce7 allows each tenant 100 requests a minute (or the tenant's `rate_limit_per_minute`)
whoever sends them, so the budget is shared by every writeback replica: each client takes its
tokens from the service's `rate_budgets` table rather than from a bucket of its own.
"""

from __future__ import annotations

from libs.connectors.base.tenant_clients import TenantClients
from libs.connectors.commerce7.client import BURST, Commerce7Client
from libs.connectors.commerce7.settings import Commerce7Settings
from libs.platform.rate_budgets import PoolSource, SharedRateLimiter
from libs.platform.tenants import TenantDirectory


class ChannelClients(TenantClients[Commerce7Client]):
    """Keeps each tenant's client across passes; its rate limit holds across passes and replicas.

    Args:
        tenants: the tenants directory (reloaded settings give the tenant a new client).
        pool: returns the service's pool, whose schema holds the shared budgets.
    """

    def __init__(self, tenants: TenantDirectory, pool: PoolSource):
        super().__init__(self._open)
        self._tenants = tenants
        self._pool = pool

    async def for_tenant(self, tenant_id: str) -> Commerce7Client:
        """Return the tenant's client; raise LookupError when it has no Commerce7 store."""
        tenant = self._tenants.get(tenant_id)
        if tenant is None or tenant.commerce7 is None:
            raise LookupError(f"tenant {tenant_id!r} has no Commerce7 store configured")
        store = tenant.commerce7
        settings = Commerce7Settings(
            tenant_id=store.tenant_slug,
            app_id=store.app_id,
            app_secret=store.app_secret.value,
            base_url=store.base_url,
            rate_limit_per_minute=store.rate_limit_per_minute,
        )
        return await self.get(tenant_id, settings)

    def _open(self, settings: Commerce7Settings) -> Commerce7Client:
        budget = SharedRateLimiter(
            self._pool, scope="commerce7", rate_per_minute=settings.rate_limit_per_minute, burst=BURST
        )
        return Commerce7Client(settings, rate_limiter=budget)
