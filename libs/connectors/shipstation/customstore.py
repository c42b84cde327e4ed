"""ShipStation Custom Store (pull mode): the export XML we serve and the ShipNotice XML we take (pure).

ShipStation is the client: it GETs `?action=export&start_date=&end_date=&page=` from the store
and POSTs `?action=shipnotify` with a `<ShipNotice>`. Dates are `MM/dd/yyyy HH:mm` (UTC here);
free text is CDATA. The XML comes from the standard library: rendering is string building (the
stdlib's ElementTree cannot write CDATA), parsing is ElementTree after expat has refused any
DTD, so no entity can be declared or expanded (defusedxml is not a dependency; refusing the
DTD outright is the part of it this needs).
"""

from __future__ import annotations

import xml.parsers.expat
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import order_pb2, shipment_pb2

from ..base import convert
from ..base.contract import Notice, PullAction, PullRequest
from ..base.errors import InvalidRequest, InvalidWebhook
from . import codes
from .shipments import money_minor

DATE_FORMAT = "%m/%d/%Y %H:%M"
MAX_BODY = 1 << 20  # a ShipNotice is a few kilobytes
EVENT_SHIPNOTIFY = "shipnotify"
ACTION_EXPORT = "export"
MAX_PAGE = 1_000_000


def format_date(moment: datetime | Timestamp) -> str:
    """`MM/dd/yyyy HH:mm` in UTC."""
    if isinstance(moment, Timestamp):
        moment = convert.timestamp_to_datetime(moment)
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def parse_date(text: str) -> datetime:
    """Read `MM/dd/yyyy HH:mm` (or `MM/dd/yyyy`) as UTC.

    Raises:
        ValueError: neither shape.
    """
    value = text.strip()
    shape = DATE_FORMAT if " " in value else "%m/%d/%Y"
    return datetime.strptime(value, shape).replace(tzinfo=UTC)


def parse_store_request(method: str, query: Mapping[str, str]) -> PullRequest:
    """ShipStation's call to the store: `GET ?action=export&start_date=&end_date=&page=` (dates
    `MM/dd/yyyy HH:mm`, read as UTC; the end minute is included, so the window's end is the
    next minute) or `POST ?action=shipnotify&order_number=...`.

    Raises:
        InvalidRequest: another method or action, a missing or unreadable date, an end before
            the start, or a page that is not a whole number from 1 to MAX_PAGE.
    """
    action = query.get("action", "")
    if method == "POST" and action == EVENT_SHIPNOTIFY:
        return PullRequest(PullAction.POST_SHIPMENT, order_number=query.get("order_number", ""))
    if method != "GET" or action != ACTION_EXPORT:
        raise InvalidRequest(f"the store takes GET ?action={ACTION_EXPORT} and POST ?action={EVENT_SHIPNOTIFY}")
    start, end = _query_date(query, "start_date"), _query_date(query, "end_date")
    if end < start:
        raise InvalidRequest("end_date is before start_date")
    page = query.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise InvalidRequest(f"page must be a whole number from 1 to {MAX_PAGE}")
    return PullRequest(PullAction.EXPORT, start=start, end=end + timedelta(minutes=1), page=int(page))


def _query_date(query: Mapping[str, str], name: str) -> datetime:
    text = query.get(name, "")
    if not text:
        raise InvalidRequest(f"{name} is required (MM/dd/yyyy HH:mm)")
    try:
        return datetime.strptime(text.strip(), DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidRequest(f"{name} must be MM/dd/yyyy HH:mm") from None


def cdata(text: str) -> str:
    """`text` as CDATA; a `]]>` inside is split across two sections, as XML requires."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_export(
    orders: Sequence[order_pb2.Order],
    numbers: Sequence[str],
    *,
    statuses: Sequence[str],
    page: int = 1,
    pages: int = 1,
    last_modified: Sequence[datetime | None] | None = None,
) -> bytes:
    """One page of `?action=export`: `<Orders pages="N">` with an `<Order>` per order.

    Args:
        orders: the page's orders.
        numbers: each order's number at ShipStation (the OrderNumber it posts back).
        statuses: each order's status string for the store (ShipStation's user maps them),
            e.g. the channel's stage via codes.channel_status.
        page: this page, 1-based (ShipStation asks for page 1, 2, ... up to `pages`).
        pages: how many pages the export window has.
        last_modified: each order's LastModified; the placed time when absent.

    Raises:
        ValueError: the lists differ in length, or page is outside 1..pages.
    """
    if not (len(orders) == len(numbers) == len(statuses)) or (last_modified and len(last_modified) != len(orders)):
        raise ValueError("render_export: orders, numbers and statuses must have one entry per order")
    if not 1 <= page <= max(pages, 1):
        raise ValueError("render_export: page is outside 1..pages")
    parts = ['<?xml version="1.0" encoding="utf-8"?>', f'<Orders pages="{max(pages, 1)}">']
    for index, order in enumerate(orders):
        modified = (last_modified or [None] * len(orders))[index]
        parts.append(_order_xml(order, numbers[index], statuses[index], modified))
    parts.append("</Orders>")
    return "\n".join(parts).encode("utf-8")


def parse_shipnotify(body: bytes) -> Notice:
    """Parse a posted `<ShipNotice>` into the order's Notice.

    The shipment is SHIPPED with the TrackingNumber, the Carrier (canonical: upper-cased,
    "STAMPS_COM" stays as written), the Service as written in `service_code` and upper-snake
    in `service`, ShippingCost as the carrier fee, NotesToCustomer as the notes to the buyer,
    ShipDate as the shipped time and the Items (LineItemID, SKU, Quantity).

    Raises:
        InvalidWebhook: too large, a DTD or entity, not well-formed, not a ShipNotice, no
            OrderNumber, or an unreadable date, cost or quantity.
    """
    root = safe_xml(body, label="shipstation shipnotify")
    if root.tag != "ShipNotice":
        raise InvalidWebhook("shipstation shipnotify: the root element is not ShipNotice")
    number = _text(root, "OrderNumber")
    if not number:
        raise InvalidWebhook("shipstation shipnotify: OrderNumber is missing")
    service = _text(root, "Service")
    tracking = _text(root, "TrackingNumber")
    shipment = shipment_pb2.Shipment(
        status=shipment_pb2.SHIPMENT_STATUS_SHIPPED,
        tracking_numbers=[tracking] if tracking else [],
        carrier=codes.canonical_carrier(_text(root, "Carrier")),
        service="_".join(service.upper().split()),
        service_code=service,
        notes_to_buyer=_text(root, "NotesToCustomer"),
        items=[_item(item) for item in root.findall("./Items/Item")],
    )
    cost = _text(root, "ShippingCost")
    if cost:
        try:
            shipment.carrier_fee.CopyFrom(money_minor(Decimal(cost)))
        except InvalidOperation:
            raise InvalidWebhook("shipstation shipnotify: ShippingCost is not a number") from None
    shipped = _text(root, "ShipDate") or _text(root, "LabelCreateDate")
    if shipped:
        try:
            shipment.shipped_time.CopyFrom(convert.to_timestamp(parse_date(shipped)))
        except ValueError:
            raise InvalidWebhook("shipstation shipnotify: ShipDate is not MM/dd/yyyy") from None
    return Notice(number, shipment, EVENT_SHIPNOTIFY)


def safe_xml(body: bytes, *, label: str) -> ElementTree.Element:
    """Parse untrusted XML: no DTD (so no entity declarations), bounded size.

    Raises:
        InvalidWebhook: too large, a DTD, or not well-formed.
    """
    if len(body) > MAX_BODY:
        raise InvalidWebhook(f"{label}: body is larger than {MAX_BODY} bytes")
    guard = xml.parsers.expat.ParserCreate()

    def refuse(*_: object) -> None:
        raise InvalidWebhook(f"{label}: a DTD or entity declaration is refused")

    guard.StartDoctypeDeclHandler = refuse
    guard.EntityDeclHandler = refuse
    try:
        guard.Parse(body, True)
        return ElementTree.fromstring(body)
    except (xml.parsers.expat.ExpatError, ElementTree.ParseError):
        raise InvalidWebhook(f"{label}: body is not well-formed XML") from None


def _order_xml(order: order_pb2.Order, number: str, status: str, modified: datetime | None) -> str:
    placed = format_date(order.placed_time) if order.HasField("placed_time") else ""
    ship_to, bill_to = order.ship_to, order.bill_to if order.HasField("bill_to") else order.ship_to
    totals = order.totals
    fields = [
        _el("OrderID", cdata(order.order_id)),
        _el("OrderNumber", cdata(number)),
        _el("OrderDate", placed),
        _el("OrderStatus", cdata(status)),
        _el("LastModified", format_date(modified) if modified else placed),
        _el("ShippingMethod", cdata(order.shipping_method.title or order.shipping_method.service)),
        _el("PaymentMethod", cdata(order.payment.status)),
        _el("CurrencyCode", order.currency_code or codes.CURRENCY),
        _el("OrderTotal", _dollars(totals.total.minor_units)),
        _el("TaxAmount", _dollars(totals.tax.minor_units)),
        _el("ShippingAmount", _dollars(totals.shipping.minor_units)),
        _el("CustomerNotes", cdata(order.customer_notes)),
        _el("InternalNotes", cdata(order.internal_notes)),
        _el("Gift", "true" if order.gift else "false"),
        _el("GiftMessage", cdata(order.gift_message)),
        _el("CustomField1", cdata(order.external_id)),
        "<Customer>",
        _el("CustomerCode", cdata(order.customer.email or order.customer.customer_id)),
        "<BillTo>",
        _el("Name", cdata(_name(bill_to))),
        _el("Company", cdata(bill_to.company)),
        _el("Phone", cdata(bill_to.phone or order.customer.phone)),
        _el("Email", cdata(order.customer.email or bill_to.email)),
        "</BillTo>",
        "<ShipTo>",
        _el("Name", cdata(_name(ship_to))),
        _el("Company", cdata(ship_to.company)),
        _el("Address1", cdata(ship_to.address_lines[0] if ship_to.address_lines else "")),
        _el("Address2", cdata(", ".join(ship_to.address_lines[1:]))),
        _el("City", cdata(ship_to.locality)),
        _el("State", cdata(ship_to.administrative_area)),
        _el("PostalCode", cdata(ship_to.postal_code)),
        _el("Country", cdata(ship_to.region_code or "US")),
        _el("Phone", cdata(ship_to.phone or order.customer.phone)),
        "</ShipTo>",
        "</Customer>",
        "<Items>",
        *(_line_xml(line) for line in order.lines if line.requires_shipping),
        "</Items>",
    ]
    return "<Order>" + "".join(fields) + "</Order>"


def _line_xml(line: order_pb2.OrderLine) -> str:
    return (
        "<Item>"
        + _el("LineItemID", cdata(line.channel_line_id))
        + _el("SKU", cdata(line.sku))
        + _el("Name", cdata(line.title or line.sku))
        + _el("Weight", str(line.weight_grams))
        + _el("WeightUnits", "Grams")
        + _el("Quantity", str(line.quantity))
        + _el("UnitPrice", _dollars(line.unit_price.minor_units))
        + "</Item>"
    )


def _el(tag: str, inner: str) -> str:
    return f"<{tag}>{inner}</{tag}>"


def _name(address: object) -> str:
    first, last = getattr(address, "first_name", ""), getattr(address, "last_name", "")
    return " ".join(p for p in (first, last) if p)


def _dollars(minor: int) -> str:
    return escape(str(convert.minor_units_to_decimal(minor)))


def _text(element: ElementTree.Element, path: str) -> str:
    found = element.find(path)
    return (found.text or "").strip() if found is not None else ""


def _item(element: ElementTree.Element) -> shipment_pb2.ShipmentItem:
    quantity = _text(element, "Quantity") or "0"
    if not quantity.isdigit() or len(quantity) > 9:
        raise InvalidWebhook("shipstation shipnotify: an item's Quantity is not a whole number")
    return shipment_pb2.ShipmentItem(
        channel_line_id=_text(element, "LineItemID"), sku=_text(element, "SKU"), quantity=int(quantity)
    )
