"""Operator actions on an order's sync: Retry, Don't Send, Void Sync, Check Fulfillment.

Each action finds the tenant's order, checks that it applies to the order as it stands, and logs
who acted and why in the order's activity. Status changes commit under the order's row lock, so
an action cannot race the sender or a webhook into an inconsistent status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from ordersync.common.v1 import order_pb2

from fulfillment_dispatch.domain.actions import Action, ActionRefused, OrderState, check_allowed
from fulfillment_dispatch.provider_words import label, order_state
from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.status_checks import CannotReadBack, check_at_provider
from fulfillment_dispatch.storage.dispatches import (
    add_operator_activity,
    find_dispatch,
    mark_dont_send,
    mark_for_retry,
    order_proto_of,
)
from libs.connectors.base.errors import ConnectorError
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.db import PgConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrderSelector:
    """One order of a tenant: by ordersync id, else by the channel's order number."""

    tenant_id: str
    order_id: str = ""
    channel_order_number: str = ""

    def describe(self) -> str:
        which = self.order_id or f"number {self.channel_order_number}"
        return f"order {which} of tenant {self.tenant_id!r}"


@dataclass(frozen=True)
class Operator:
    """Who acts and why; both go into the activity log."""

    name: str
    reason: str


class OrderNotFound(Exception):
    """No order of the tenant matches the selector."""


class ProviderRefused(Exception):
    """The provider answered the action with a permanent error; its message says why."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered a transient error; nothing changed."""


class OperatorActions:
    """The actions behind the admin API."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        accounts: AccountClients | None,
        recorder: ShipmentRecorder | None,
        *,
        registry: Registry,
        on_requeued: Callable[[], None],
    ):
        self._pool = pool
        self._accounts = accounts
        self._registry = registry
        self._recorder = recorder
        self._on_requeued = on_requeued

    async def find(self, selector: OrderSelector, conn: PgConnection | None = None) -> asyncpg.Record:
        """Return the tenant's order (locked when read on `conn`); raise OrderNotFound."""
        row = await find_dispatch(
            conn or self._pool,
            selector.tenant_id,
            selector.order_id,
            selector.channel_order_number,
            lock=conn is not None,
        )
        if row is None:
            raise OrderNotFound(f"{selector.describe()} is not known to fulfillment dispatch")
        return row

    async def retry(self, selector: OrderSelector, operator: Operator) -> asyncpg.Record:
        """Queue a Failed to Send order again; it is read back from the provider before any new post.

        An order that could not be queued (no provider order number yet) is numbered now;
        raises LookupError when its provider account is still not configured.
        """

        async def requeue(conn: PgConnection, row) -> None:
            number = "" if row["provider_order_number"] else await self._number(conn, row)
            await mark_for_retry(conn, row["order_id"], number)

        row = await self._transition(selector, Action.RETRY, operator, requeue)
        self._on_requeued()
        return row

    async def dont_send(self, selector: OrderSelector, operator: Operator) -> asyncpg.Record:
        """Keep a Failed to Send order in the channel for good, as Not Required to Send."""
        reason = f"Don't Send by {operator.name}: {operator.reason}"
        return await self._transition(
            selector, Action.DONT_SEND, operator, lambda conn, row: mark_dont_send(conn, row["order_id"], reason)
        )

    async def void(self, selector: OrderSelector, operator: Operator) -> asyncpg.Record:
        """Cancel a sent order at its provider; it becomes Voided and the channel is told.

        Refused (ActionRefused) for a provider that cannot cancel (no Capability.CANCEL).
        """
        row = await self.find(selector)
        state = self._state(row)
        check_allowed(Action.VOID, state)  # also refused when the provider cannot cancel
        opened = await self._opened(row)
        await self._log(row, Action.VOID, operator, f"Void Sync requested: {operator.reason}")
        try:
            await opened.connector.cancel(
                opened.client, opened.settings, row["provider_order_number"], f"{operator.reason} (by {operator.name})"
            )
        except ConnectorError as exc:
            message = f"{state.provider_label} did not cancel: {exc.message}"
            await self._log(row, Action.VOID, operator, message, kind="void_failed")
            raise _provider_error(state.provider_label, "cancel", exc) from None
        await self._read_back(row)
        return await self.find(selector)

    async def check_fulfillment(self, selector: OrderSelector, operator: Operator) -> tuple[asyncpg.Record, bool]:
        """Read the order back from its provider now; return it and whether anything changed."""
        row = await self.find(selector)
        check_allowed(Action.CHECK_FULFILLMENT, self._state(row))
        outcome = await self._read_back(row)
        found = "found an update" if outcome == "applied" else "no change"
        if outcome == "missing":
            found = f"{label(self._registry, row['provider'])} has no such order"
        await self._log(row, Action.CHECK_FULFILLMENT, operator, f"Check Fulfillment ({operator.reason}): {found}")
        return await self.find(selector), outcome == "applied"

    def _state(self, row) -> OrderState:
        return order_state(self._registry, row)

    async def _opened(self, row):
        assert self._accounts is not None, "provider actions need the accounts"
        return await self._accounts.provider(row["tenant_id"], row["provider_account"], row["provider"])

    async def _number(self, conn: PgConnection, row) -> str:
        """The provider order number of an order that never had one; raises LookupError or
        ActionRefused when it still cannot be numbered."""
        assert self._accounts is not None, "provider actions need the accounts"
        account = self._accounts.account(row["tenant_id"], row["provider_account"], row["provider"])
        order = order_pb2.Order()
        order.ParseFromString(await order_proto_of(conn, row["order_id"]))
        try:
            return self._accounts.provider_connector(account).order_number(account.settings, order)
        except (ConnectorError, ValueError) as exc:
            raise ActionRefused(f"the order cannot be numbered for {account.connector}: {exc}") from None

    async def _transition(self, selector: OrderSelector, action: Action, operator: Operator, apply) -> asyncpg.Record:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self.find(selector, conn)
            check_allowed(action, self._state(row))
            await apply(conn, row)
            await add_operator_activity(
                conn, row["order_id"], row["tenant_id"], f"operator_{action.value}", operator.name, operator.reason
            )
        return await self.find(selector)

    async def _read_back(self, row) -> str:
        assert self._accounts is not None and self._recorder is not None, "provider actions need the accounts"
        try:
            return await check_at_provider(self._accounts, self._recorder, row)
        except CannotReadBack as exc:
            raise ActionRefused(f"{exc}; check the order at the provider") from None
        except ConnectorError as exc:
            raise _provider_error(label(self._registry, row["provider"]), "read", exc) from None

    async def _log(self, row, action: Action, operator: Operator, message: str, *, kind: str = "") -> None:
        async with self._pool.acquire() as conn:
            await add_operator_activity(
                conn, row["order_id"], row["tenant_id"], kind or f"operator_{action.value}", operator.name, message
            )


def _provider_error(provider_label: str, what: str, exc: ConnectorError) -> Exception:
    if exc.retryable:
        return ProviderUnavailable(f"{provider_label} could not {what} the order now ({exc.message}); try again")
    return ProviderRefused(f"{provider_label} refused to {what} the order: {exc.message}")
