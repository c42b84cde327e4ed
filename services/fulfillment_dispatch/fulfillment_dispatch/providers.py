"""The tenants' Vinoshipper clients and account settings, as dispatch needs them."""

from __future__ import annotations

from libs.connectors.base.tenant_clients import TenantClients
from libs.connectors.vinoshipper.client import VinoshipperClient
from libs.connectors.vinoshipper.settings import VinoshipperSettings
from libs.platform.tenants import TenantDirectory

PROVIDER = "vinoshipper"


class ProviderClients(TenantClients[VinoshipperClient]):
    """Keeps each tenant's client (and so its connection pool) across batches."""

    def __init__(self, tenants: TenantDirectory, *, max_concurrency: int):
        super().__init__(VinoshipperClient)
        self._tenants = tenants
        self._max_concurrency = max_concurrency

    async def for_tenant(self, tenant_id: str) -> VinoshipperClient:
        """Return the tenant's client; raise LookupError when it has no Vinoshipper account."""
        return await self.get(tenant_id, self.settings_for(tenant_id))

    def compliance_precheck(self, tenant_id: str) -> bool:
        """True when the tenant asks for Vinoshipper's compliance check before each create."""
        tenant = self._tenants.get(tenant_id)
        return bool(tenant and tenant.vinoshipper and tenant.vinoshipper.compliance_precheck)

    def settings_for(self, tenant_id: str) -> VinoshipperSettings:
        tenant = self._tenants.get(tenant_id)
        if tenant is None or tenant.vinoshipper is None:
            raise LookupError(f"tenant {tenant_id!r} has no Vinoshipper account configured")
        account = tenant.vinoshipper
        return VinoshipperSettings(
            api_key=account.api_key,
            api_secret=account.api_secret.value,
            base_url=account.base_url,
            order_number_prefix=account.order_number_prefix,
            timeout_s=account.timeout_s,
            max_concurrency=self._max_concurrency,
        )
