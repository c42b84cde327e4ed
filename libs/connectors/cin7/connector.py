"""The Cin7 Omni connector: a sales channel polled for sales orders, taking dispatches back.

Cin7 has no webhook for sales-order changes, so intake polls: each page is read on the
ModifiedDate watermark (`cursor.py`) and every order is checked against the import rules
Cin7's own ShipStation connector applies (`rules.py`). Orders failing a rule come back with
their `rule_failures` (one coded Issue per failed rule), so intake keeps them as not imported
and evaluates their next change again; dispatched and cancelled orders (our own write-back
among them) are Ignored. Writing back marks the order dispatched with its tracking code, takes
back a tracking code whose label was voided, and stages a cancellation, after reading the
order, since Cin7 takes no idempotency key.
Cin7 has nothing to acknowledge pulled orders with (no "exported" flag), so the connector
declares no ACKNOWLEDGE.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base.contract import (
    Capability,
    ChannelConnector,
    ChannelUpdate,
    ClientResources,
    ConnectorInfo,
    Freight,
    Ignored,
    Limits,
    OrderPage,
    ParsedOrder,
    Role,
    SecretResolver,
    WritebackStep,
)
from ..base.errors import InvalidResponse
from ..base.settings import SectionReader, SettingsError
from . import codes
from .client import BURST, Cin7Client
from .cursor import Cursor, advance, decode, is_new
from .dispatch import Stages, build_update, check_update_response
from .freight import build_freight_update
from .orders import build_list_params, parse_list_response, parse_order, validate_order
from .rules import RuleContext
from .settings import Cin7Settings

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Cin7Connector(ChannelConnector):
    info = ConnectorInfo(
        id="cin7",
        label="Cin7 Omni",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset({Capability.PULL_ORDERS, Capability.WRITE_BACK, Capability.FREIGHT_WRITE}),
        limits=Limits(batch_size=1, requests_per_minute=60, concurrency=2),
    )

    def __init__(self, clock: Clock = _utc_now) -> None:
        # The import rules' "last 60 days" and the first poll's start read this clock.
        self._clock = clock

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> Cin7Settings:
        read = SectionReader(section, resolve, where)
        try:
            settings = Cin7Settings(
                username=read.text("username"),
                api_key=read.secret("api_key"),
                base_url=read.text("base_url", "https://api.cin7.com/api"),
                fully_picked_stage=read.text("fully_picked_stage", "Fully Picked"),
                dispatched_stage=read.text("dispatched_stage", "Dispatched"),
                cancelled_stage=read.text("cancelled_stage", "Cancelled"),
                page_size=read.positive_int("page_size", 100),
                lookback_days=read.positive_int("lookback_days", 60),
                rate_limit_per_minute=read.positive_int("rate_limit_per_minute", 60),
                timeout_s=read.positive_number("timeout_s", 15.0),
                option_names=read.texts("option_names", codes.DEFAULT_OPTION_NAMES, most=3),
            )
        except ValueError as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(f"{where}: {exc}") from None
        read.finish()
        return settings

    def open_client(self, settings: Cin7Settings, resources: ClientResources) -> Cin7Client:
        limiter = resources.limiter_for(self.info.id, settings.rate_limit_per_minute, BURST)
        return Cin7Client(settings, rate_limiter=limiter)

    async def fetch_page(self, client: Cin7Client, settings: Cin7Settings, cursor: str, tenant_id: str) -> OrderPage:
        now = self._clock()
        position = decode(cursor)
        if not position.watermark:
            # Older orders cannot pass the age rule, so the first poll starts at the lookback.
            start = now - timedelta(days=settings.lookback_days)
            position = Cursor(start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        rows = parse_list_response(
            await client.list_sales_orders(build_list_params(position, page_size=settings.page_size))
        )
        full = len(rows) >= settings.page_size
        context = RuleContext(settings.fully_picked_stage, now, settings.lookback_days)
        keys: list[tuple[int, str]] = []
        orders: list[ParsedOrder | Ignored] = []
        for row in rows:
            modified = row.get("modifiedDate")
            if isinstance(modified, str) and _is_instant(modified):
                keys.append((row["id"], modified))
                if not is_new(position, row["id"], modified):
                    continue
            orders.append(self._parse_row(row, settings, tenant_id, context))
        if full and not keys:
            # Nothing to move the watermark on: asking again would return this page forever.
            raise InvalidResponse("cin7 list_sales_orders: a full page without one readable modifiedDate")
        # A walk through one instant that ends leaves the later orders still to read: go on.
        more = full or position.after_id is not None
        return OrderPage(orders, advance(position, keys, full=full).encode(), more=more)

    def _parse_row(
        self, row: dict[str, Any], settings: Cin7Settings, tenant_id: str, context: RuleContext
    ) -> ParsedOrder | Ignored:
        parsed = parse_order(row, tenant_id=tenant_id, context=context, option_names=settings.option_names)
        stage = row.get("stage") or ""
        if stage in (settings.dispatched_stage, settings.cancelled_stage):
            # Dispatched (or cancelled) orders have nothing left to ship, and our own write-back
            # brings each one back on the next poll: it must not turn an order already taken back.
            order = parsed.order
            return Ignored(f"order {order.external_number or order.external_id} is {stage} in Cin7")
        return parsed

    async def write_back(self, client: Cin7Client, settings: Cin7Settings, update: ChannelUpdate) -> bool:
        # Delivery has no counterpart in Cin7 (no delivered stage): nothing to read or write.
        if not set(update.steps) - {WritebackStep.DELIVER}:
            return False
        current = validate_order(await client.get_sales_order(update.external_id))
        stages = Stages(settings.fully_picked_stage, settings.dispatched_stage, settings.cancelled_stage)
        row = build_update(
            current, update.steps, update.shipment, stages=stages, now=self._clock(), carrier=update.carrier
        )
        if row is not None:
            check_update_response(await client.update_sales_orders([row.to_json_dict()]), current.id)
        # Cin7 sends the customer nothing when an order is dispatched through the API.
        return False

    async def write_freight(
        self, client: Cin7Client, settings: Cin7Settings, external_id: str, freight: Freight
    ) -> bool:
        """Put a chosen rate quote on the order as its freight (FreightWrite; see freight.py)."""
        current = validate_order(await client.get_sales_order(external_id))
        row = build_freight_update(current, freight)
        if row is None:
            return False
        check_update_response(await client.update_sales_orders([row]), current.id, "write_freight")
        return True


def _is_instant(value: str) -> bool:
    if "'" in value:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


CONNECTOR = Cin7Connector()
