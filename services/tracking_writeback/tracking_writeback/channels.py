"""The channel accounts writeback writes through, paced by budgets shared across replicas.

A channel counts requests per account however many processes send them (e.g. 100 a
minute per tenant), so each account's client takes its tokens from the service's
`rate_budgets` table rather than from a bucket of its own: N writeback replicas together stay
under the limit. Which connector, settings and client an account has comes from the registry
and the tenants file (libs.platform.accounts).
"""

from __future__ import annotations

from libs.connectors.base.contract import ClientResources
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.rate_budgets import PoolSource, SharedRateLimiter
from libs.platform.tenants import TenantDirectory


def channel_accounts(tenants: TenantDirectory, registry: Registry, pool: PoolSource) -> AccountClients:
    """AccountClients whose clients pace themselves by the shared budgets; a component.

    Args:
        tenants: the tenants directory (reloaded settings give the account a new client).
        registry: the connectors, looked up by each account's connector id.
        pool: returns the service's pool, whose schema holds the shared budgets (called at
            each use, so it may be given before the pool is open).
    """

    def shared_budget(scope: str, rate_per_minute: int, burst: int) -> SharedRateLimiter:
        return SharedRateLimiter(pool, scope=scope, rate_per_minute=rate_per_minute, burst=burst)

    return AccountClients(tenants, registry, ClientResources(rate_limiter=shared_budget))
