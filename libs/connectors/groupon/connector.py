"""The Groupon connector: Groupon Goods orders through CommerceInterface's supplier API (v4).

A pulled channel without a cursor: get_orders lists every line item not yet marked exported,
so one fetch reads every page back to back and builds each order from all its lines, wherever
the page boundaries fall (`orders.py`). With `mark_exported` on, an order's lines are marked
exported (they then leave the listing) only once the warehouse accepted the order
(AckMoment.ON_HANDOVER); off, they keep being listed and re-listed orders dedupe in intake.
Tracking goes back per line with Groupon's approved courier code (`tracking.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..base.contract import (
    AckMoment,
    Capability,
    ChannelConnector,
    ChannelUpdate,
    ClientResources,
    ConnectorInfo,
    Limits,
    OrderPage,
    ParsedOrder,
    Role,
    SecretResolver,
    WritebackStep,
)
from ..base.errors import InvalidRequest
from ..base.settings import SectionReader, SettingsError
from . import codes
from .client import BURST, REQUESTS_PER_MINUTE, GrouponClient
from .errors import ListingChanged
from .orders import Page, build_get_orders_params, build_orders, line_ids_of, parse_page
from .settings import GrouponSettings
from .tracking import build_upload, check_tracking_response, wire_id


class GrouponConnector(ChannelConnector):
    info = ConnectorInfo(
        id="groupon",
        label="Groupon",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset({Capability.PULL_ORDERS, Capability.ACKNOWLEDGE, Capability.WRITE_BACK}),
        limits=Limits(batch_size=1, requests_per_minute=REQUESTS_PER_MINUTE, concurrency=2),
        needs_carrier_code=True,
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> GrouponSettings:
        read = SectionReader(section, resolve, where)
        try:
            settings = GrouponSettings(
                supplier_id=read.text("supplier_id"),
                token=read.secret("token"),
                base_url=read.text("base_url", codes.DEFAULT_BASE_URL),
                mark_exported=read.boolean("mark_exported", False),
                currency=read.text("currency", codes.DEFAULT_CURRENCY),
                timeout_s=read.positive_number("timeout_s", 30.0),
            )
        except ValueError as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(f"{where}: {exc}") from None
        read.finish()
        return settings

    def open_client(self, settings: GrouponSettings, resources: ClientResources) -> GrouponClient:
        limiter = resources.limiter_for(self.info.id, REQUESTS_PER_MINUTE, BURST)
        return GrouponClient(settings, rate_limiter=limiter)

    async def fetch_page(
        self, client: GrouponClient, settings: GrouponSettings, cursor: str, tenant_id: str
    ) -> OrderPage:
        """Every order listed now, each whole; no cursor (the listing is what is not exported).

        Raises:
            ListingChanged: the listing shifted under every one of MAX_LISTING_PASSES reads.
            The errors of GrouponClient.get_orders.
        """
        entries = await self._read_listing(client)
        orders = build_orders(entries, tenant_id=tenant_id, currency=settings.currency)
        return OrderPage(orders, next_cursor="", more=False)

    async def _read_listing(self, client: GrouponClient) -> list[Any]:
        """The entries of pages 1..no_of_pages of one pass over a listing that held still."""
        for _ in range(codes.MAX_LISTING_PASSES):
            entries = await self._read_pass(client)
            if entries is not None:
                return entries
        raise ListingChanged(
            f"groupon get_orders: the listing changed while its pages were read, "
            f"{codes.MAX_LISTING_PASSES} times in a row (lines marked exported or added meanwhile); "
            "read again at the next poll"
        )

    async def _read_pass(self, client: GrouponClient) -> list[Any] | None:
        first = parse_page(await client.get_orders(build_get_orders_params(1)))
        pages: list[Page] = [first]
        for number in range(2, first.meta.no_of_pages + 1):
            page = parse_page(await client.get_orders(build_get_orders_params(number)))
            if page.listing != first.listing:
                return None
            pages.append(page)
        entries = [entry for page in pages for entry in page.entries]
        ids = line_ids_of(entries)
        if len(ids) != len(set(ids)):
            # A line on two pages: lines were added before it while we read, so others may have
            # moved past a page we had read already.
            return None
        return entries

    def acknowledge_when(self, settings: GrouponSettings) -> AckMoment:
        # Marked lines leave get_orders: only once the warehouse has the order, never before.
        return AckMoment.ON_HANDOVER if settings.mark_exported else AckMoment.NEVER

    async def acknowledge(
        self, client: GrouponClient, settings: GrouponSettings, orders: Sequence[ParsedOrder]
    ) -> None:
        """Mark the orders' lines exported, MARK_EXPORTED_CHUNK line ids a call. Marking a line
        exported again changes nothing, so a repeat is harmless.

        Raises:
            InvalidRequest: an ack_token this connector did not write, or CommerceInterface
                refused (an unknown line id), with its reason. The errors of the client.
        """
        if not settings.mark_exported:
            return
        line_ids = sorted({line_id for parsed in orders for line_id in _ack_ids(parsed)}, key=_id_order)
        size = codes.MARK_EXPORTED_CHUNK
        for start in range(0, len(line_ids), size):
            await client.mark_exported([wire_id(line_id) for line_id in line_ids[start : start + size]])

    async def write_back(self, client: GrouponClient, settings: GrouponSettings, update: ChannelUpdate) -> bool:
        """SHIP uploads tracking per line (Groupon tells the customer: True); DELIVER has no
        counterpart (no request); VOID and RETRACT cannot be done through the API.

        Raises:
            InvalidRequest: VOID or RETRACT (what to do instead in the message).
            TrackingRefused: tracking that is not acceptable, before any call, or refused.
        """
        steps = set(update.steps)
        unsupported = steps & {WritebackStep.VOID, WritebackStep.RETRACT}
        if unsupported:
            raise InvalidRequest(_unsupported_message(update, unsupported))
        if WritebackStep.SHIP not in steps:
            return False
        upload = build_upload(update.external_id, update.shipment, update.carrier, update.order_lines)
        if upload.whole:
            check_tracking_response(await client.tracking_notification(upload.whole))
        if upload.partial:
            check_tracking_response(await client.lineitem_tracking_notification(upload.partial))
        return True


def _ack_ids(parsed: ParsedOrder) -> list[str]:
    try:
        ids = json.loads(parsed.ack_token)
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise InvalidRequest(
            f"groupon acknowledge: order {parsed.order.external_id}: ack_token is not a list of line ids"
        )
    return ids


def _id_order(line_id: str) -> tuple[int, int, str]:
    return (0, int(line_id), line_id) if line_id.isdigit() else (1, 0, line_id)


def _unsupported_message(update: ChannelUpdate, steps: set[WritebackStep]) -> str:
    order = update.external_number or update.external_id
    if WritebackStep.VOID in steps:
        return (
            f"groupon order {order}: the warehouse voided the order, and CommerceInterface has no API to "
            "cancel it: cancel or refund its lines in the CommerceInterface portal (or ask Groupon support)"
        )
    return (
        f"groupon order {order}: tracking uploaded to Groupon was voided at the warehouse, and "
        "CommerceInterface cannot correct uploaded tracking: ask Groupon support to correct it"
    )


CONNECTOR = GrouponConnector()
