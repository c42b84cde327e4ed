"""Pull mode: orders held for a provider that fetches them from us (ShipStation's Custom Store).

A route chooses how its orders reach the provider with its option `mode`: "push" (the default)
hands them to the connector's `submit`; "custom_store" holds them, status awaiting_pull, for a
provider with PULLED_BY_PROVIDER to fetch from our store endpoint (api/custom_store.py). Any
other value is a configuration error the order waits on (retried, so a fixed tenants file lets
it through).

The provider pulls date windows page by page and pulls the same windows again: an order enters
the windows when it is held (`export_modified_at`), and the first page that carries it makes it
Sent, with the same OrderDispatched event a pushed order gets, so writeback and the journey see
it the same way. Fetching it again changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from ordersync.common.v1 import order_pb2
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.domain.dispatch import Outcome, ProviderError, Status
from fulfillment_dispatch.storage.custom_store import count_export_window, export_window_page, mark_fetched
from fulfillment_dispatch.storage.dispatches import add_activity
from libs.connectors.base.contract import (
    Capability,
    ExportedOrder,
    ExportPage,
    ExportStatus,
    ProviderConnector,
    PulledByProvider,
)
from libs.platform.accounts import AccountClients
from libs.platform.events import new_event
from libs.platform.outbox import write_events
from libs.platform.tenants import Account

MODE_OPTION = "mode"
PUSH, CUSTOM_STORE = "push", "custom_store"
MODES = (PUSH, CUSTOM_STORE)


def held_for_pull(
    accounts: AccountClients, row: asyncpg.Record, connector: ProviderConnector
) -> tuple[Outcome, str] | ProviderError | None:
    """What the sender does with a due order by its route's mode: None to push it; the held
    outcome and its activity line for a custom_store route; the error of an unusable mode."""
    route = accounts.tenant(row["tenant_id"]).route(row["route"]) if row["route"] else None
    mode = route.options.get(MODE_OPTION, PUSH) if route is not None else PUSH
    if mode == PUSH:
        return None
    where = f"route {route.name!r}" if route is not None else "the route"
    if mode != CUSTOM_STORE:
        message = f"{where} has option mode = {str(mode)[:40]!r}; use one of {', '.join(MODES)}"
        return ProviderError("INVALID_ROUTE_OPTION", message, retryable=True)
    if not connector.info.can(Capability.PULLED_BY_PROVIDER):
        message = f"{where} is in {CUSTOM_STORE} mode, but {connector.info.label} does not fetch orders; use {PUSH}"
        return ProviderError("INVALID_ROUTE_OPTION", message, retryable=True)
    return Outcome(
        Status.AWAITING_PULL
    ), f"held for {connector.info.label} to fetch ({where} is in {CUSTOM_STORE} mode)"


@dataclass(frozen=True)
class Window:
    """The date window and page the provider asks for; `end` is exclusive."""

    start: datetime
    end: datetime
    page: int


class PageOutOfRange(ValueError):
    """The provider asked for a page past the window's last."""


class Exporter:
    """Renders a provider account's export pages and marks the orders they carry as sent."""

    def __init__(self, pool: asyncpg.Pool, *, topic: str, producer: str, first_check_after: timedelta, page_size: int):
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._pool = pool
        self._topic = topic
        self._producer = producer
        self._first_check_after = first_check_after
        self._page_size = page_size

    async def export(self, tenant_id: str, account: Account, connector: PulledByProvider, window: Window) -> bytes:
        """One page of the account's orders that changed in the window, rendered by the connector.

        The held orders on it become Sent with their events, in the transaction that read the
        page: should the answer be lost, the provider's next pull renders the same page again.

        Raises:
            PageOutOfRange: `window.page` is past the last page.
            asyncpg / OSError: the database could not be used.
        """
        provider = account.connector
        async with self._pool.acquire() as conn, conn.transaction():
            total = await count_export_window(conn, tenant_id, provider, account.name, window.start, window.end)
            pages = max(1, math.ceil(total / self._page_size))
            if window.page > pages:
                raise PageOutOfRange(f"page {window.page} is past the last page of the window ({pages})")
            rows = await export_window_page(
                conn,
                tenant_id,
                provider,
                account.name,
                window.start,
                window.end,
                limit=self._page_size,
                offset=(window.page - 1) * self._page_size,
            )
            page = ExportPage([_exported(row) for row in rows], page=window.page, pages=pages)
            rendered = connector.render_export(account.settings, page)
            await self._mark_fetched(conn, rows, f"page {window.page} of {pages}")
        return rendered

    async def _mark_fetched(self, conn, rows, where: str) -> None:
        held = [row["order_id"] for row in rows if row["status"] == Status.AWAITING_PULL.value]
        if not held:
            return
        fetched = await mark_fetched(conn, held, first_check_after=self._first_check_after)
        await add_activity(
            conn,
            [(r["order_id"], r["tenant_id"], "sent", f"fetched by the provider (export {where})") for r in fetched],
        )
        await write_events(conn, [self._dispatched(row) for row in fetched])

    def _dispatched(self, row):
        """The OrderDispatched a pushed order gets when the provider takes it."""
        ref = order_pb2.ChannelOrderRef(
            channel=row["channel"],
            external_id=row["external_id"],
            external_number=row["external_number"],
            account=row["channel_account"],
        )
        message = events_pb2.OrderDispatched(
            order_id=row["order_id"],
            channel_ref=ref,
            provider=row["provider"],
            provider_order_number=row["provider_order_number"],
            provider_account=row["provider_account"],
        )
        return new_event(
            self._topic,
            message,
            aggregate_id=row["order_id"],
            tenant_id=row["tenant_id"],
            producer=self._producer,
            traceparent=row["traceparent"],
        )


def _exported(row) -> ExportedOrder:
    order = order_pb2.Order()
    order.ParseFromString(row["order_proto"])
    return ExportedOrder(order, row["provider_order_number"], _export_status(row), row["export_modified_at"])


def _export_status(row) -> ExportStatus:
    """The order as the provider must see it when it pulls the window again."""
    if row["status"] == Status.VOIDED.value or row["shipment_status"] == "cancelled":
        return ExportStatus.CANCELLED
    if row["shipment_status"] in ("shipped", "delivered"):
        return ExportStatus.SHIPPED
    return ExportStatus.AWAITING_SHIPMENT
