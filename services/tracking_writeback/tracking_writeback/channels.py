"""One long-lived Commerce7 client per tenant (its rate limiter is the tenant's 100 requests/min)."""

from __future__ import annotations

from libs.connectors.base.tenant_clients import TenantClients
from libs.connectors.commerce7.client import Commerce7Client
from libs.connectors.commerce7.settings import Commerce7Settings
from libs.platform.tenants import TenantDirectory


class ChannelClients(TenantClients[Commerce7Client]):
    """Keeps each tenant's client across passes, so rate limits hold across them."""

    def __init__(self, tenants: TenantDirectory):
        super().__init__(Commerce7Client)
        self._tenants = tenants

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
