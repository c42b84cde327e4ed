"""CommerceInterface's JSON shapes (API v4), field names as CommerceInterface spells them.

Numbers where text is declared (ids, amounts, quantities) are kept as text and converted
exactly by orders.py, since the API writes some of them as JSON numbers and some as strings.
"""

from __future__ import annotations

from pydantic import Field

from ..base.models import InboundModel, OutboundModel


class Meta(InboundModel):
    no_of_pages: int
    current_page: int
    max_items_per_page: int
    no_of_items: int


class Amount(InboundModel):
    total: str | None = None
    shipping: str | None = None


class Customer(InboundModel):
    name: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    phone: str | None = None


class Shipping(InboundModel):
    carrier: str | None = None
    method: str | None = None


class LineItem(InboundModel):
    ci_lineitemid: str | None = None
    fulfillment_lineitem_id: str | None = None
    sku: str | None = None
    bom_sku: str | None = None  # the supplier's own SKU (bill of materials), when set
    name: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    status: str | None = None  # e.g. "open"
    ship_by_date: str | None = None
    gift_message: str | None = None
    po_number: str | None = None
    groupon_cost: str | None = None


class OrderEntry(InboundModel):
    """One `data` entry: an order with those of its lines that are on this page."""

    orderid: str | None = None
    date: str | None = None  # "08/10/2021 07:40PM UTC"
    amount: Amount | None = None
    fulfillment_method: str | None = None
    supplier: str | None = None
    customer: Customer | None = None
    shipping: Shipping | None = None
    line_items: list[LineItem] = Field(default_factory=list)


class LineTrackingEntry(OutboundModel):
    """One entry of v4 lineitem_tracking_notification's `tracking_info`: a quantity of one
    fulfillment line shipped under one tracking number (a partial shipment)."""

    carrier: str
    fulfillment_lineitem_id: str
    tracking: str
    quantity: int


class TrackingEntry(OutboundModel):
    """One entry of tracking_notification's `tracking_info`: tracking of a quantity of one line."""

    carrier: str
    ci_lineitem_id: int | str
    tracking: str
    quantity: int
