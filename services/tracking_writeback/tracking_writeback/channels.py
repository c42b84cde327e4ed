"""One long-lived Commerce7 client per tenant (its rate limiter is the tenant's 100 requests/min).

A tenant whose store settings change (the tenants file was reloaded) gets a new client; the old
one is closed on stop, since a pass may still be using it.
"""

from __future__ import annotations

from libs.connectors.commerce7.client import Commerce7Client
from libs.connectors.commerce7.settings import Commerce7Settings
from libs.platform.tenants import Commerce7Channel, TenantDirectory


class ChannelClients:
    """Keeps each tenant's client across passes, so rate limits hold across them."""

    def __init__(self, tenants: TenantDirectory):
        self._tenants = tenants
        self._clients: dict[str, tuple[Commerce7Channel, Commerce7Client]] = {}
        self._retired: list[Commerce7Client] = []

    async def start(self) -> None:
        """Nothing to open up front: clients open on first use."""

    async def for_tenant(self, tenant_id: str) -> Commerce7Client:
        """Return the tenant's client; raise LookupError when it has no Commerce7 store."""
        tenant = self._tenants.get(tenant_id)
        if tenant is None or tenant.commerce7 is None:
            raise LookupError(f"tenant {tenant_id!r} has no Commerce7 store configured")
        store = tenant.commerce7
        cached = self._clients.get(tenant_id)
        if cached is not None and cached[0] == store:
            return cached[1]
        if cached is not None:
            self._retired.append(cached[1])
        client = Commerce7Client(
            Commerce7Settings(
                tenant_id=store.tenant_slug,
                app_id=store.app_id,
                app_secret=store.app_secret.value,
                base_url=store.base_url,
                rate_limit_per_minute=store.rate_limit_per_minute,
            )
        )
        await client.__aenter__()
        self._clients[tenant_id] = (store, client)
        return client

    async def stop(self) -> None:
        clients = [client for _, client in self._clients.values()] + self._retired
        self._clients, self._retired = {}, []
        for client in clients:
            await client.__aexit__(None, None, None)
