"""A tenant's connector accounts as a service uses them: connector, settings and a live client.

Clients keep connection pools and rate limiters, so one client per (tenant, account) lives
across batches (libs.connectors.base.tenant_clients.TenantClients); a tenant whose settings
changed on reload gets a new client. Services ask by account name (from the order or routing
decision) or by connector id (a webhook to /webhooks/{connector}/{tenant}).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.connectors.base.contract import ChannelConnector, ClientResources, ProviderConnector
from libs.connectors.base.http import ConnectorClient
from libs.connectors.base.tenant_clients import TenantClients
from libs.connectors.registry import Registry
from libs.platform.tenants import Account, Tenant, TenantDirectory


class AccountNotConfigured(LookupError):
    """The tenant has no such account (or none of that connector); the message says which."""


@dataclass(frozen=True)
class OpenAccount:
    """One account ready for use: its connector, settings and client."""

    tenant_id: str
    account: Account
    connector: Any  # ChannelConnector | ProviderConnector, as asked
    client: ConnectorClient

    @property
    def settings(self) -> Any:
        return self.account.settings


class AccountClients:
    """Looks accounts up in the tenants directory and opens their clients; a component."""

    def __init__(self, tenants: TenantDirectory, registry: Registry, resources: ClientResources | None = None):
        self._tenants = tenants
        self._registry = registry
        self._resources = resources or ClientResources()
        self._clients: TenantClients[ConnectorClient] = TenantClients(self._open)

    @property
    def registry(self) -> Registry:
        return self._registry

    async def start(self) -> None:
        await self._clients.start()

    async def stop(self) -> None:
        await self._clients.stop()

    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise AccountNotConfigured(f"tenant {tenant_id!r} is not configured")
        return tenant

    def account(self, tenant_id: str, name: str, connector: str = "") -> Account:
        """The tenant's account `name`; without a name, its only account of `connector`.

        Records made before accounts had names carry only the connector id; a tenant with a
        single account of that connector still resolves them.
        """
        tenant = self.tenant(tenant_id)
        if name:
            account = tenant.account(name)
            if account is None:
                raise AccountNotConfigured(f"tenant {tenant_id!r} has no account {name!r}")
            return account
        candidates = tenant.accounts_of(connector)
        if len(candidates) != 1:
            raise AccountNotConfigured(
                f"tenant {tenant_id!r} has {len(candidates)} {connector or '(no connector)'} accounts;"
                " the record names none of them"
            )
        return candidates[0]

    async def channel(self, tenant_id: str, name: str, connector: str = "") -> OpenAccount:
        """The tenant's channel account `name` (see `account`), with its client."""
        account = self.account(tenant_id, name, connector)
        return await self._open_account(tenant_id, account, self._registry.channel(account.connector))

    async def provider(self, tenant_id: str, name: str, connector: str = "") -> OpenAccount:
        """The tenant's provider account `name` (see `account`), with its client."""
        account = self.account(tenant_id, name, connector)
        return await self._open_account(tenant_id, account, self._registry.provider(account.connector))

    def channel_connector(self, account: Account) -> ChannelConnector:
        return self._registry.channel(account.connector)

    def provider_connector(self, account: Account) -> ProviderConnector:
        return self._registry.provider(account.connector)

    async def _open_account(self, tenant_id: str, account: Account, connector: Any) -> OpenAccount:
        client = await self._clients.get(f"{tenant_id}/{account.name}", (account.connector, account.settings))
        return OpenAccount(tenant_id, account, connector, client)

    def _open(self, key: Any) -> ConnectorClient:
        connector_id, settings = key
        return self._registry.get(connector_id).open_client(settings, self._resources)
