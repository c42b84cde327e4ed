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

from fulfillment_dispatch.domain.actions import Action, OrderState, check_allowed
from fulfillment_dispatch.domain.dispatch import Status
from fulfillment_dispatch.providers import ProviderClients
from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.status_checks import check_at_provider
from fulfillment_dispatch.storage.dispatches import (
    add_operator_activity,
    find_dispatch,
    mark_dont_send,
    mark_for_retry,
)
from libs.connectors.base.errors import ConnectorError

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
        providers: ProviderClients,
        recorder: ShipmentRecorder,
        *,
        on_requeued: Callable[[], None],
    ):
        self._pool = pool
        self._providers = providers
        self._recorder = recorder
        self._on_requeued = on_requeued

    async def find(self, selector: OrderSelector, conn: asyncpg.Connection | None = None) -> asyncpg.Record:
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
        """Queue a Failed to Send order again; it is read back from Vinoshipper before any new post."""
        row = await self._transition(selector, Action.RETRY, operator, mark_for_retry)
        self._on_requeued()
        return row

    async def dont_send(self, selector: OrderSelector, operator: Operator) -> asyncpg.Record:
        """Keep a Failed to Send order in the channel for good, as Not Required to Send."""
        reason = f"Don't Send by {operator.name}: {operator.reason}"
        return await self._transition(
            selector, Action.DONT_SEND, operator, lambda conn, order_id: mark_dont_send(conn, order_id, reason)
        )

    async def void(self, selector: OrderSelector, operator: Operator) -> asyncpg.Record:
        """Cancel a sent order at Vinoshipper; it becomes Voided in Vinoshipper and the channel is told."""
        row = await self.find(selector)
        check_allowed(Action.VOID, _state(row))
        await self._log(row, Action.VOID, operator, f"Void Sync requested: {operator.reason}")
        client = await self._providers.for_tenant(row["tenant_id"])
        try:
            await client.cancel_order(row["provider_order_number"], f"{operator.reason} (by {operator.name})")
        except ConnectorError as exc:
            await self._log(
                row, Action.VOID, operator, f"Vinoshipper did not cancel: {exc.message}", kind="void_failed"
            )
            raise _provider_error("cancel", exc) from None
        await self._read_back(row)
        return await self.find(selector)

    async def check_fulfillment(self, selector: OrderSelector, operator: Operator) -> tuple[asyncpg.Record, bool]:
        """Read the order back from Vinoshipper now; return it and whether anything changed."""
        row = await self.find(selector)
        check_allowed(Action.CHECK_FULFILLMENT, _state(row))
        outcome = await self._read_back(row)
        found = "found an update" if outcome == "applied" else "no change"
        if outcome == "missing":
            found = "Vinoshipper has no such order"
        await self._log(row, Action.CHECK_FULFILLMENT, operator, f"Check Fulfillment ({operator.reason}): {found}")
        return await self.find(selector), outcome == "applied"

    async def _transition(self, selector: OrderSelector, action: Action, operator: Operator, apply) -> asyncpg.Record:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self.find(selector, conn)
            check_allowed(action, _state(row))
            await apply(conn, row["order_id"])
            await add_operator_activity(
                conn, row["order_id"], row["tenant_id"], f"operator_{action.value}", operator.name, operator.reason
            )
        return await self.find(selector)

    async def _read_back(self, row) -> str:
        try:
            return await check_at_provider(self._providers, self._recorder, row)
        except ConnectorError as exc:
            raise _provider_error("read", exc) from None

    async def _log(self, row, action: Action, operator: Operator, message: str, *, kind: str = "") -> None:
        async with self._pool.acquire() as conn:
            await add_operator_activity(
                conn, row["order_id"], row["tenant_id"], kind or f"operator_{action.value}", operator.name, message
            )


def _state(row) -> OrderState:
    return OrderState(Status(row["status"]), row["shipment_status"], row["provider_order_number"])


def _provider_error(what: str, exc: ConnectorError) -> Exception:
    if exc.retryable:
        return ProviderUnavailable(f"Vinoshipper could not {what} the order now ({exc.message}); try again")
    return ProviderRefused(f"Vinoshipper refused to {what} the order: {exc.message}")
