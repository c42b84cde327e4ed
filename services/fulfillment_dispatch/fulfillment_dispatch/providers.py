"""One long-lived Vinoshipper client per tenant, opened on first use and closed on stop.

A tenant whose account settings change (the tenants file was reloaded) gets a new client; the
old one is closed on stop, since a batch may still be using it.
"""

from __future__ import annotations

from libs.connectors.vinoshipper.client import VinoshipperClient
from libs.connectors.vinoshipper.settings import VinoshipperSettings
from libs.platform.tenants import TenantDirectory

PROVIDER = "vinoshipper"


class ProviderClients:
    """Keeps each tenant's client (and so its connection pool) across batches."""

    def __init__(self, tenants: TenantDirectory, *, max_concurrency: int):
        self._tenants = tenants
        self._max_concurrency = max_concurrency
        self._clients: dict[str, tuple[VinoshipperSettings, VinoshipperClient]] = {}
        self._retired: list[VinoshipperClient] = []

    async def start(self) -> None:
        """Nothing to open up front: clients open on first use."""

    async def for_tenant(self, tenant_id: str) -> VinoshipperClient:
        """Return the tenant's client; raise LookupError when it has no Vinoshipper account."""
        settings = self.settings_for(tenant_id)
        cached = self._clients.get(tenant_id)
        if cached is not None and cached[0] == settings:
            return cached[1]
        if cached is not None:
            self._retired.append(cached[1])
        client = VinoshipperClient(settings)
        await client.__aenter__()
        self._clients[tenant_id] = (settings, client)
        return client

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

    async def stop(self) -> None:
        clients = [client for _, client in self._clients.values()] + self._retired
        self._clients, self._retired = {}, []
        for client in clients:
            await client.__aexit__(None, None, None)
