"""One long-lived connector client per tenant, rebuilt when the tenant's settings change.

Clients keep connection pools and rate limiters, so they live across batches. Tenant settings
reload without a restart; a tenant whose settings changed gets a new client, and the old one is
closed on stop rather than at once, since a batch in flight may still be using it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from libs.connectors.base.http import ConnectorClient

ClientT = TypeVar("ClientT", bound=ConnectorClient)


class TenantClients(Generic[ClientT]):
    """Opens each tenant's client on first use; a component (start/stop)."""

    def __init__(self, open_client: Callable[[Hashable], ClientT]):
        self._open_client = open_client
        self._clients: dict[str, tuple[Hashable, ClientT]] = {}
        self._retired: list[ClientT] = []

    async def start(self) -> None:
        """Nothing to open up front: clients open on first use."""

    async def get(self, tenant_id: str, settings: Hashable) -> ClientT:
        """Return the tenant's client for `settings`, opening a new one if they changed."""
        cached = self._clients.get(tenant_id)
        if cached is not None and cached[0] == settings:
            return cached[1]
        if cached is not None:
            self._retired.append(cached[1])
        client = self._open_client(settings)
        await client.__aenter__()
        self._clients[tenant_id] = (settings, client)
        return client

    async def stop(self) -> None:
        clients = [client for _, client in self._clients.values()] + self._retired
        self._clients, self._retired = {}, []
        for client in clients:
            await client.__aexit__(None, None, None)
