"""Customer look-ups through a tenant's directory account, behind the cache: the work of the
CustomerDirectoryService (the servicer only translates).

The account is the one named, or the tenant's only account whose connector declares
Capability.CUSTOMER_DIRECTORY. Its client is dispatch's own (AccountClients), so look-ups and
the orders dispatch sends there share the account's rate budget across replicas. Each directory
call is bounded by `timeout_s`; the connector's ConnectorErrors pass through (the API maps them).

Errors here: `LookupBadRequest`, `LookupNotFound` (no such tenant or account: a customer the
directory does not know is an empty answer, never this) and `LookupUnsupported`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ordersync.common.v1 import order_pb2, postal_address_pb2

from fulfillment_dispatch.directory.cache import DirectoryCache
from fulfillment_dispatch.directory.discounts import Booking, Guest, Resolution, resolve
from libs.connectors.base.contract import Capability, CustomerDirectory, DirectoryMember, UpsertedMember
from libs.connectors.base.errors import Timeout
from libs.platform.accounts import AccountClients, AccountNotConfigured, OpenAccount
from libs.platform.discounts import fold
from libs.platform.mail import check_address
from libs.platform.tenants import Account

log = logging.getLogger(__name__)


class LookupBadRequest(ValueError):
    """The request itself is wrong; the message says what."""


class LookupNotFound(LookupError):
    """No such tenant or account; the message says which."""


class LookupUnsupported(Exception):
    """The account has no customer directory, or none was named and not exactly one has."""


@dataclass(frozen=True)
class Found:
    """The account that answered and the members it lists."""

    account: str
    members: list[DirectoryMember]


class CustomerLookups:
    """Look-ups, discounts and upserts for the gRPC API and the CLI behind it.

    Args:
        accounts: the tenants' accounts and their live clients (dispatch's, shared).
        cache: the process's DirectoryCache.
        announce: tells every replica the tenant's directory changed (invalidation.py); None
            in a single process (the local cache is invalidated anyway).
        timeout_s: the longest a directory call may take before the look-up is UNAVAILABLE.
    """

    def __init__(
        self,
        accounts: AccountClients,
        cache: DirectoryCache,
        *,
        announce: Callable[[str], Awaitable[None]] | None = None,
        timeout_s: float = 5.0,
    ):
        self._accounts = accounts
        self._cache = cache
        self._announce = announce
        self._timeout_s = timeout_s

    @property
    def cache(self) -> DirectoryCache:
        return self._cache

    async def find(self, tenant_id: str, account: str, *, email: str = "", last_name: str = "") -> Found:
        """Members by e-mail (preferred) or last name; raise LookupBadRequest for neither."""
        if email:
            _check_email(email)
        elif not last_name.strip():
            raise LookupBadRequest("give an email or a last_name")
        chosen = self._directory_account(tenant_id, account)
        by, value = ("email", email) if email else ("last_name", last_name)
        members = await self._members(tenant_id, chosen, by, value)
        return Found(chosen.name, members)

    async def discount(self, tenant_id: str, account: str, booking: Booking) -> Resolution:
        """The tenant's discount rule that applies to `booking` (see discounts.resolve)."""
        if booking.email:
            _check_email(booking.email)
        rules = self._tenant(tenant_id).discount_rules

        async def guest() -> Guest:
            chosen = self._directory_account(tenant_id, account)
            return Guest.of(await self._members(tenant_id, chosen, "email", booking.email))

        return await resolve(rules, booking, guest)

    async def upsert(
        self,
        tenant_id: str,
        account: str,
        customer: order_pb2.Customer,
        address: postal_address_pb2.PostalAddress | None,
    ) -> tuple[str, UpsertedMember]:
        """Add or update the member with the customer's e-mail; the tenant's cached answers go
        (in every replica), also when the call failed: it may have reached the directory."""
        _check_email(customer.email)
        chosen = self._directory_account(tenant_id, account)
        opened = await self._accounts.provider(tenant_id, chosen.name)
        directory: CustomerDirectory = opened.connector
        try:
            upserted = await self._bounded(directory.upsert_member(opened.client, opened.settings, customer, address))
        finally:
            await self.changed(tenant_id)
        log.info(
            "customer %s in the directory of tenant %s account %s",
            "created" if upserted.created else "updated",
            tenant_id,
            chosen.name,
        )
        return chosen.name, upserted

    async def changed(self, tenant_id: str) -> None:
        """Forget the tenant's cached answers here at once, and in the other replicas."""
        self._cache.invalidate(tenant_id)
        if self._announce is not None:
            try:
                await self._announce(tenant_id)
            except Exception:
                # The other replicas keep their answers until the TTL: stale, never wrong for long.
                log.warning("could not announce the directory change of tenant %s", tenant_id, exc_info=True)

    async def _members(self, tenant_id: str, account: Account, by: str, value: str) -> list[DirectoryMember]:
        key = (tenant_id, (account.name, by, fold(value)))

        async def load() -> list[DirectoryMember]:
            opened = await self._accounts.provider(tenant_id, account.name)
            return await self._bounded(_find(opened, by, value))

        return await self._cache.get(key, load)

    async def _bounded(self, call):
        try:
            return await asyncio.wait_for(call, self._timeout_s)
        except TimeoutError:
            raise Timeout(f"the customer directory did not answer within {self._timeout_s:g} s") from None

    def _tenant(self, tenant_id: str):
        try:
            return self._accounts.tenant(tenant_id)
        except AccountNotConfigured as exc:
            raise LookupNotFound(str(exc)) from None

    def _directory_account(self, tenant_id: str, name: str) -> Account:
        registry = self._accounts.registry
        if name:
            try:
                account = self._accounts.account(tenant_id, name)
            except AccountNotConfigured as exc:
                raise LookupNotFound(str(exc)) from None
            if not registry.get(account.connector).info.can(Capability.CUSTOMER_DIRECTORY):
                raise LookupUnsupported(f"account {name!r} ({account.connector}) has no customer directory")
            return account
        tenant = self._tenant(tenant_id)
        able = [
            a for a in tenant.accounts.values() if registry.get(a.connector).info.can(Capability.CUSTOMER_DIRECTORY)
        ]
        if len(able) != 1:
            names = ", ".join(repr(a.name) for a in able) or "none"
            raise LookupUnsupported(
                f"tenant {tenant_id!r} has {len(able)} accounts with a customer directory ({names}): name one"
            )
        return able[0]


async def _find(opened: OpenAccount, by: str, value: str) -> list[DirectoryMember]:
    directory: CustomerDirectory = opened.connector
    if by == "email":
        return await directory.find_members(opened.client, opened.settings, email=value.strip())
    return await directory.find_members(opened.client, opened.settings, last_name=value.strip())


def _check_email(email: str) -> None:
    if check_address(email.strip()) is not None:
        raise LookupBadRequest("email must be an e-mail address such as guest@example.com")
