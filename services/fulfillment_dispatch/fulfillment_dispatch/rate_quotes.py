"""The rate calculator: quotes through a tenant's provider account, with its markup, and the
chosen freight written onto the channel's order.

Quoting reads: the order (routed through dispatch, or given whole), the account that quotes
(a provider connector declaring RATE_QUOTES, ShipStation), the connector's exact quotes, and
the account's markup applied by `domain.rate_markup`. Nothing needs the store connection, so
a tenant may quote whether its route pushes orders, ShipStation pulls them, or neither.
Writing freight goes to a channel connector declaring FREIGHT_WRITE (Cin7 Omni); when the order
is one dispatch knows, its activity log says who wrote what.

Errors: `RatesNotFound`, `RatesUnsupported` and `RatesBadRequest` for what is wrong here; the
connectors' ConnectorErrors pass through (the API maps both to status codes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
from ordersync.common.v1 import order_pb2

from fulfillment_dispatch.domain.rate_markup import MarkedUp, apply_markup, minor_unit_decimals
from fulfillment_dispatch.storage.dispatches import add_operator_activity
from fulfillment_dispatch.storage.rate_orders import order_for_rates
from libs.connectors.base.contract import Capability, Freight, RateQuote
from libs.platform.accounts import AccountClients, AccountNotConfigured
from libs.platform.tenants import Account, Tenant

log = logging.getLogger(__name__)


class RatesNotFound(LookupError):
    """The tenant, account or order named does not exist; the message says which."""


class RatesUnsupported(Exception):
    """The account cannot do what was asked (quote rates, take freight), or none was named and
    not exactly one could."""


class RatesBadRequest(ValueError):
    """The request itself is wrong (missing or contradictory parts)."""


@dataclass(frozen=True)
class PricedQuote:
    """A provider's quote and its price with the tenant's markup."""

    quote: RateQuote
    price: MarkedUp


@dataclass(frozen=True)
class Quotes:
    """What QuoteRates answers: the account that quoted, its markup and the priced quotes."""

    provider_account: str
    markup_percent: Decimal
    quotes: list[PricedQuote]


@dataclass(frozen=True)
class FreightWritten:
    """What WriteFreight did: where, and whether anything changed."""

    channel_account: str
    channel_order_id: str
    written: bool


@dataclass(frozen=True)
class FreightChoice:
    """The freight to write: a quote's rounded total in minor units and its service name."""

    currency_code: str
    minor_units: int
    service_name: str


class RateQuoter:
    """Quotes and freight writes for the gRPC API and the CLI behind it.

    Args:
        pool: dispatch's pool (orders named by id; the activity log).
        accounts: the tenants' accounts and their live clients (shared with the sender, so a
            quote counts against the same ShipStation rate budget as everything else).
    """

    def __init__(self, pool: asyncpg.Pool, accounts: AccountClients):
        self._pool = pool
        self._accounts = accounts

    async def quote(
        self,
        tenant_id: str,
        provider_account: str,
        *,
        order_id: str = "",
        order: order_pb2.Order | None = None,
        carriers: Sequence[str] = (),
    ) -> Quotes:
        """Quote `order` (or the order dispatch knows as `order_id`) with the account's carriers,
        or those of `carriers`, and price each quote with the account's markup.

        Raises:
            RatesBadRequest: neither or both of order_id and order.
            RatesNotFound: no such tenant, account, or order of the tenant.
            RatesUnsupported: the account cannot quote rates; none named and not exactly one can.
            ConnectorError: the provider's refusal or failure (or an order it cannot quote).
        """
        if bool(order_id) == (order is not None):
            raise RatesBadRequest("give exactly one of order_id and inline_order")
        account = self._quoting_account(tenant_id, provider_account)
        if order is None:
            order = await self._routed_order(tenant_id, order_id)
        opened = await self._accounts.provider(tenant_id, account.name)
        connector = opened.connector
        quotes = await connector.quote_rates(opened.client, opened.settings, order, tuple(carriers))
        percent = connector.rate_markup_percent(opened.settings)
        priced = [PricedQuote(q, apply_markup(q.amount, percent, q.currency_code)) for q in quotes]
        return Quotes(account.name, percent, priced)

    async def write_freight(
        self,
        tenant_id: str,
        channel_account: str,
        choice: FreightChoice,
        *,
        actor: str,
        order_id: str = "",
        channel_order_id: str = "",
    ) -> FreightWritten:
        """Write the chosen freight onto the order: the one dispatch knows as `order_id` (in the
        account it came from, unless `channel_account` names it), or the channel's
        `channel_order_id` in `channel_account`. Repeating it writes nothing new.

        Raises:
            RatesBadRequest: neither or both orders; no account for channel_order_id; an
                account other than the order's; a negative total; no currency or service name.
            RatesNotFound: no such tenant, account, or order of the tenant.
            RatesUnsupported: the account cannot take freight.
            ConnectorError: the channel's refusal (NotFound: no such order there) or failure.
        """
        freight = _freight(choice)
        if bool(order_id) == bool(channel_order_id):
            raise RatesBadRequest("give exactly one of order_id and channel_order_id")
        if order_id:
            row = await self._row(tenant_id, order_id)
            recorded = row["channel_account"]
            if channel_account and recorded and channel_account != recorded:
                raise RatesBadRequest(
                    f"order {order_id!r} came from channel account {recorded!r}, not {channel_account!r}"
                )
            # A record from before accounts had names carries only the connector (channel).
            account = self._account(tenant_id, recorded or channel_account, row["channel"])
            channel_order_id = row["external_id"]
        elif channel_account:
            account = self._account(tenant_id, channel_account)
        else:
            raise RatesBadRequest("channel_account is required with channel_order_id")
        if not self._accounts.registry.get(account.connector).info.can(Capability.FREIGHT_WRITE):
            raise RatesUnsupported(f"account {account.name!r} ({account.connector}) cannot take freight")
        opened = await self._accounts.channel(tenant_id, account.name)
        written = await opened.connector.write_freight(opened.client, opened.settings, channel_order_id, freight)
        log.info(
            "freight %s on order %s of tenant %s account %s",
            "written" if written else "already there",
            channel_order_id,
            tenant_id,
            account.name,
        )
        if order_id and written:
            message = f"freight {freight.amount} {freight.currency_code} ({freight.description}) written to the channel"
            async with self._pool.acquire() as conn:
                await add_operator_activity(conn, order_id, tenant_id, "freight_written", actor, message)
        return FreightWritten(account.name, channel_order_id, written)

    def _quoting_account(self, tenant_id: str, name: str) -> Account:
        registry = self._accounts.registry
        if name:
            account = self._account(tenant_id, name)
            if not registry.get(account.connector).info.can(Capability.RATE_QUOTES):
                raise RatesUnsupported(f"account {name!r} ({account.connector}) cannot quote rates")
            return account
        tenant = self._tenant(tenant_id)
        able = [a for a in tenant.accounts.values() if registry.get(a.connector).info.can(Capability.RATE_QUOTES)]
        if len(able) != 1:
            names = ", ".join(repr(a.name) for a in able) or "none"
            raise RatesUnsupported(
                f"tenant {tenant_id!r} has {len(able)} accounts that can quote rates ({names}): name one"
            )
        return able[0]

    def _tenant(self, tenant_id: str) -> Tenant:
        try:
            return self._accounts.tenant(tenant_id)
        except AccountNotConfigured as exc:
            raise RatesNotFound(str(exc)) from None

    def _account(self, tenant_id: str, name: str, connector: str = "") -> Account:
        """The tenant's account `name`, or without a name its only account of `connector`."""
        try:
            return self._accounts.account(tenant_id, name, connector)
        except AccountNotConfigured as exc:
            raise RatesNotFound(str(exc)) from None

    async def _row(self, tenant_id: str, order_id: str):
        row = await order_for_rates(self._pool, tenant_id, order_id)
        if row is None:
            raise RatesNotFound(f"order {order_id!r} of tenant {tenant_id!r} is not known to dispatch")
        return row

    async def _routed_order(self, tenant_id: str, order_id: str) -> order_pb2.Order:
        return order_pb2.Order.FromString((await self._row(tenant_id, order_id))["order_proto"])


def _freight(choice: FreightChoice) -> Freight:
    if not choice.currency_code:
        raise RatesBadRequest("total.currency_code is required")
    if choice.minor_units < 0:
        raise RatesBadRequest("total.minor_units must not be negative")
    if not choice.service_name.strip():
        raise RatesBadRequest("service_name is required: what the channel shows for the freight")
    amount = Decimal(choice.minor_units).scaleb(-minor_unit_decimals(choice.currency_code))
    return Freight(amount, choice.currency_code.upper(), choice.service_name.strip())
