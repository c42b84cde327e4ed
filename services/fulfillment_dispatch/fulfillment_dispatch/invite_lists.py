"""Invite-list mirror: a directory's member types (VinSuite's) become a channel's invite lists
(CellarPass's), for each pair of a tenant's accounts: a channel account with Capability.INVITE_LISTS
and the provider account with Capability.CUSTOMER_DIRECTORY its orders go to.

Pairs come from the tenant's routes: a channel account mirrors the directory account of its first
route (in file order) that reaches one. A channel account no route joins to a directory mirrors the
tenant's only directory account, when it has exactly one.

One pass over a pair reads the member types and the invite lists, then puts a list for each type
missing or renamed and removes each list whose type is gone (domain/invite_lists.py decides).
Lists without a source id were made by the channel's staff and are never touched. Every step is
idempotent, so a pass cut short (a vendor down half-way) is completed by the next one. A pass that
changed anything announces it, so the directory's look-up caches drop the tenant.

On demand through the API and CLI; periodically when ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S is above
0 (`InviteListScheduler`): every directory account with a pair, leased to one replica at a time
(storage/invite_list_schedules.py), a failed pass logged with the account and retried with a
doubling backoff, at the latest at the next interval.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import asyncpg

from fulfillment_dispatch.connection_checks import without_secrets
from fulfillment_dispatch.directory.invalidation import announce_directory_change
from fulfillment_dispatch.domain.invite_lists import plan_mirror
from fulfillment_dispatch.storage import invite_list_schedules as schedules
from fulfillment_dispatch.storage.invite_list_schedules import MirrorLease
from libs.connectors.base.contract import (
    Capability,
    ChannelConnector,
    CustomerDirectory,
    InviteLists,
    ProviderConnector,
)
from libs.connectors.base.errors import ConnectorError
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients, AccountNotConfigured
from libs.platform.tenants import Tenant, TenantDirectory

log = logging.getLogger(__name__)


class NothingToMirror(Exception):
    """The tenant has no channel account with invite lists paired with a directory account."""


@dataclass(frozen=True)
class MirrorPair:
    """A channel account whose invite lists mirror a directory account's member types."""

    channel_account: str
    provider_account: str


@dataclass
class MirrorResult:
    """What one pass did to one channel account's lists: names created, (old, new) renamed,
    names removed, names already right."""

    pair: MirrorPair
    created: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.renamed or self.removed)


class MirrorFailed(Exception):
    """A pair's pass could not finish: `error` is the vendor's (the steps before it stand);
    `words` its message without the accounts' secrets."""

    def __init__(self, pair: MirrorPair, error: ConnectorError, words: str):
        self.pair = pair
        self.error = error
        self.words = words
        super().__init__(
            f"invite lists of account {pair.channel_account!r} from {pair.provider_account!r} not mirrored: {words}"
        )


def mirror_pairs(tenant: Tenant, registry: Registry) -> list[MirrorPair]:
    """The tenant's pairs (see the module docstring), in the order of its channel accounts."""

    def has(name: str, capability: Capability, protocol: type, side: type) -> bool:
        account = tenant.account(name)
        if account is None or account.connector not in registry:
            return False
        connector = registry.get(account.connector)
        return isinstance(connector, side) and connector.info.can(capability) and isinstance(connector, protocol)

    channels = [n for n in tenant.accounts if has(n, Capability.INVITE_LISTS, InviteLists, ChannelConnector)]
    directories = [
        n for n in tenant.accounts if has(n, Capability.CUSTOMER_DIRECTORY, CustomerDirectory, ProviderConnector)
    ]
    pairs = []
    for channel in channels:
        routed = next((r.provider for r in tenant.routes_from(channel) if r.provider in directories), None)
        if routed is None and len(directories) == 1:
            routed = directories[0]
        if routed is not None:
            pairs.append(MirrorPair(channel, routed))
    return pairs


class InviteListMirror:
    """Runs passes for the API (a tenant) and the scheduler (a directory account).

    Args:
        pool: dispatch's pool (to announce a change to the look-up caches).
        schema: dispatch's schema, which names the announcement's channel.
        accounts: the tenants' accounts and their live clients (shared with the sender, so the
            calls count against each account's rate budget with everything else).
    """

    def __init__(self, pool: asyncpg.Pool, schema: str, accounts: AccountClients):
        self._pool = pool
        self._schema = schema
        self._accounts = accounts

    async def sync_tenant(self, tenant_id: str) -> list[MirrorResult]:
        """Mirror every pair of the tenant.

        Every pair is tried even when one fails; the answer is then that failure, and what the
        other pairs did stands (the next pass finds it unchanged).

        Raises:
            AccountNotConfigured: no such tenant.
            NothingToMirror: the tenant has no pair.
            MirrorFailed: a pair's vendor failed (the first such pair; the others are logged).
        """
        pairs = self._pairs(tenant_id)
        if not pairs:
            raise NothingToMirror(
                f"tenant {tenant_id!r} has no channel account with invite lists paired with a provider account"
                " with a customer directory"
            )
        return await self._run(tenant_id, pairs)

    async def sync_directory(self, tenant_id: str, provider_account: str) -> list[MirrorResult]:
        """Mirror the pairs of one directory account (the scheduler's unit); as `sync_tenant`,
        but a directory with no pair (any more) mirrors nothing."""
        pairs = [p for p in self._pairs(tenant_id) if p.provider_account == provider_account]
        return await self._run(tenant_id, pairs)

    def _pairs(self, tenant_id: str) -> list[MirrorPair]:
        return mirror_pairs(self._accounts.tenant(tenant_id), self._accounts.registry)

    async def _run(self, tenant_id: str, pairs: Sequence[MirrorPair]) -> list[MirrorResult]:
        results, failures = [], []
        for pair in pairs:
            try:
                results.append(await self._mirror(tenant_id, pair))
            except MirrorFailed as exc:
                log.warning(
                    "invite lists not mirrored",
                    extra={"fields": {"tenant_id": tenant_id, "account": pair.channel_account,
                                      "directory": pair.provider_account, "error": exc.words}},
                )  # fmt: skip
                failures.append(exc)
        if failures:
            raise failures[0]
        return results

    async def _mirror(self, tenant_id: str, pair: MirrorPair) -> MirrorResult:
        result = MirrorResult(pair)
        try:
            await self._apply(tenant_id, pair, result)
        except ConnectorError as exc:
            # A vendor may echo what it was sent: the accounts' credentials are cut out of its words.
            settings = [
                self._accounts.account(tenant_id, n).settings for n in (pair.channel_account, pair.provider_account)
            ]
            raise MirrorFailed(pair, exc, without_secrets(str(exc), *settings)) from exc
        finally:
            # Also after a failure half-way: the steps taken before it are real changes.
            if result.changed:
                await announce_directory_change(self._pool, self._schema, tenant_id)
        log.info(
            "invite lists mirrored",
            extra={"fields": {"tenant_id": tenant_id, "account": pair.channel_account,
                              "directory": pair.provider_account, "created": len(result.created),
                              "renamed": len(result.renamed), "removed": len(result.removed),
                              "unchanged": len(result.unchanged)}},
        )  # fmt: skip
        return result

    async def _apply(self, tenant_id: str, pair: MirrorPair, result: MirrorResult) -> None:
        directory = await self._accounts.provider(tenant_id, pair.provider_account)
        channel = await self._accounts.channel(tenant_id, pair.channel_account)
        lists: InviteLists = channel.connector
        plan = plan_mirror(
            await directory.connector.member_types(directory.client, directory.settings),
            await lists.list_invite_lists(channel.client, channel.settings),
        )
        result.unchanged.extend(invite_list.name for invite_list in plan.unchanged)
        for member_type in plan.create:
            await lists.put_invite_list(channel.client, channel.settings, member_type.name, member_type.type_id)
            result.created.append(member_type.name)
        for invite_list, member_type in plan.rename:
            await lists.put_invite_list(channel.client, channel.settings, member_type.name, member_type.type_id)
            result.renamed.append((invite_list.name, member_type.name))
        for invite_list in plan.remove:
            # False: already gone (another pass, or the staff, removed it): the outcome is the same.
            await lists.remove_invite_list(channel.client, channel.settings, invite_list.list_id)
            result.removed.append(invite_list.name)


class InviteListScheduler:
    """One pass = lease the due directory accounts, mirror each, release with the next pass due.
    For a PollingWorker.

    Args:
        interval_s: between passes of one directory account (ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S,
            above 0).
        owner: this replica's name in leases.
        lease_s: how long a lease lasts (longer than a pass takes at the vendors' rate limits).
        max_accounts: directory accounts one pass leases.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        tenants: TenantDirectory,
        mirror: InviteListMirror,
        registry: Registry,
        *,
        interval_s: float,
        owner: str,
        lease_s: float = 600.0,
        max_accounts: int = 4,
    ):
        self._pool = pool
        self._tenants = tenants
        self._mirror = mirror
        self._registry = registry
        self._interval_s = interval_s
        self._owner = owner
        self._lease_s = lease_s
        self._max_accounts = max_accounts

    async def run_once(self) -> int:
        """Mirror every due directory account once; return how many were mirrored (or tried)."""
        directories = sorted(set(self._directory_accounts()))
        await schedules.ensure_rows(self._pool, directories)
        leases = await schedules.claim_due(self._pool, self._owner, self._lease_s, self._max_accounts, directories)
        for lease in leases:
            await self._run(lease)
        return len(leases)

    def _directory_accounts(self) -> Iterator[tuple[str, str, str]]:
        for tenant in self._tenants:
            for pair in mirror_pairs(tenant, self._registry):
                account = tenant.accounts[pair.provider_account]
                yield tenant.tenant_id, account.name, account.connector

    async def _run(self, lease: MirrorLease) -> None:
        try:
            await self._mirror.sync_directory(lease.tenant_id, lease.provider_account)
        except (MirrorFailed, AccountNotConfigured) as exc:  # a failed pair is logged by the mirror
            error = str(exc)[:500]
            await schedules.release(self._pool, lease, self._owner, self._backoff(lease.failures), error=error)
            return
        await schedules.release(self._pool, lease, self._owner, self._interval_s)

    def _backoff(self, failures_before: int) -> float:
        # Doubling from a minute, capped at the interval, jittered: accounts failing together
        # (an outage) do not retry together.
        return min(60.0 * 2 ** min(failures_before, 16), self._interval_s) * random.uniform(0.5, 1.0)
