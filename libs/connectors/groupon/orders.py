"""CommerceInterface get_orders -> canonical Orders (pure): the request, a page, grouping, dates.

get_orders lists line items, up to 250 a page, each `data` entry an order with those of its
lines that are on the page; one order's lines can straddle pages. `parse_page` reads one page,
`build_orders` groups the entries of every page of one pass by `orderid` and normalises each
order from all its lines. Bad data comes back as the order's issues (kept and visible, never
routed), naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2
from pydantic import ValidationError

from ..base import convert
from ..base.contract import Ignored, ParsedOrder
from ..base.errors import InvalidResponse
from ..base.issues import Issue
from ..base.json_text import check_carriable
from ..base.models import describe_validation_error
from . import codes, schemas

_OUTPUT_DATE = re.compile(codes.OUTPUT_DATE_PATTERN)
_INT32_MAX = 2**31 - 1


# ---- dates ----------------------------------------------------------------------------------


def parse_ci_datetime(text: str) -> datetime:
    """Parse CommerceInterface's output date, e.g. "08/10/2021 07:40PM UTC", to an aware UTC datetime.

    Exactly that shape: two-digit month, day, hour (01-12) and minute, AM or PM, " UTC".
    12:xxAM is just after midnight, 12:xxPM just after noon.

    Raises:
        ValueError: any other text, or a date that does not exist.
    """
    match = _OUTPUT_DATE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError("not a date in the form MM/DD/YYYY hh:mmAM UTC")
    month, day, year, hour, minute = (int(match[i]) for i in range(1, 6))
    if not 1 <= hour <= 12:
        raise ValueError("hour must be 01 to 12")
    hour = hour % 12 + (12 if match[6] == "PM" else 0)
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def format_filter_datetime(moment: datetime) -> str:
    """A get_orders filter value (`start_datetime`, `end_datetime`): "MM/DD/YYYY HH:MM", UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime(codes.FILTER_DATE_FORMAT)


def build_get_orders_params(page: int, *, start: datetime | None = None, end: datetime | None = None) -> dict[str, str]:
    """The query of `GET get_orders` for `page` (1-based), without the credentials."""
    if page < 1:
        raise ValueError("page must be at least 1")
    params = {"page": str(page)}
    if start is not None:
        params["start_datetime"] = format_filter_datetime(start)
    if end is not None:
        params["end_datetime"] = format_filter_datetime(end)
    return params


# ---- one page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One get_orders page: its meta and its raw `data` entries (validated per order later)."""

    meta: schemas.Meta
    entries: list[Any]

    @property
    def listing(self) -> tuple[int, int]:
        """What must stay the same across the pages of one pass: (items, pages)."""
        return (self.meta.no_of_items, self.meta.no_of_pages)


def parse_page(body: Mapping[str, Any]) -> Page:
    """Read one successful get_orders answer.

    Raises:
        InvalidResponse: no readable `meta`, or `data` that is not a list.
    """
    try:
        meta = schemas.Meta.model_validate(body.get("meta"))
    except ValidationError as exc:
        raise InvalidResponse(f"groupon get_orders: meta is unreadable: {describe_validation_error(exc)}") from None
    data = body.get("data")
    if data is None:
        data = []
    if not isinstance(data, list):
        raise InvalidResponse("groupon get_orders: data is not a list")
    check_carriable(data, label="groupon get_orders", error=InvalidResponse)
    return Page(meta, data)


def line_ids_of(entries: Iterable[Any]) -> list[str]:
    """The ci_lineitemids of raw entries, as text (entries or lines without one are skipped)."""
    ids = []
    for entry in entries:
        lines = entry.get("line_items") if isinstance(entry, Mapping) else None
        for line in lines if isinstance(lines, list) else []:
            value = line.get("ci_lineitemid") if isinstance(line, Mapping) else None
            if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).strip():
                ids.append(str(value).strip())
    return ids


# ---- grouping and normalising ------------------------------------------------------------------


@dataclass
class _Group:
    first: schemas.OrderEntry
    lines: dict[str, schemas.LineItem] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)


def build_orders(entries: Sequence[Any], *, tenant_id: str, currency: str) -> list[ParsedOrder | Ignored]:
    """Group the entries of every page of one pass by `orderid` and normalise each order.

    Orders come in the order of their first entry; each order's lines sorted by ci_lineitemid,
    so a listing read again gives equal orders. An entry without an orderid cannot be told
    apart from another order's and is Ignored.
    """
    groups: dict[str, _Group] = {}
    ignored: list[ParsedOrder | Ignored] = []
    for index, raw in enumerate(entries):
        order_id = _order_id_of(raw)
        if not order_id:
            ignored.append(Ignored(f"get_orders entry {index} has no orderid"))
            continue
        try:
            entry = schemas.OrderEntry.model_validate(raw)
        except ValidationError as exc:
            group = groups.setdefault(order_id, _Group(schemas.OrderEntry(orderid=order_id)))
            group.issues.append(Issue("data", f"unreadable: {describe_validation_error(exc)}"))
            continue
        group = groups.setdefault(order_id, _Group(entry))
        for line in entry.line_items:
            key = (line.ci_lineitemid or "").strip()
            group.lines.setdefault(key or f"#{len(group.lines)}", line)
    return [*(_parse_group(g, tenant_id, currency) for g in groups.values()), *ignored]


def _order_id_of(raw: Any) -> str:
    value = raw.get("orderid") if isinstance(raw, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return ""
    return str(value).strip()


def _line_sort_key(line: schemas.LineItem) -> tuple[int, int, str]:
    text = (line.ci_lineitemid or "").strip()
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


def _parse_group(group: _Group, tenant_id: str, currency: str) -> ParsedOrder:
    entry = group.first
    issues = list(group.issues)
    lines = sorted(group.lines.values(), key=_line_sort_key)
    order_id = (entry.orderid or "").strip()
    result = order_pb2.Order(
        tenant_id=tenant_id,
        channel=codes.CHANNEL_NAME,
        external_id=order_id,
        external_number=order_id,
        currency_code=currency,
        order_type=order_pb2.ORDER_TYPE_SHIPPING,
        delivery_method=order_pb2.DELIVERY_METHOD_SHIP,
        origin=order_pb2.ORDER_ORIGIN_MARKETPLACE,
        channel_status=", ".join(dict.fromkeys(_text(line.status) for line in lines if _text(line.status))),
    )
    _date(result, entry, issues)
    _customer(result, entry, issues)
    _shipping(result, entry, currency, issues)
    _lines(result, lines, currency, issues)
    if not lines and not group.issues:
        issues.append(Issue("line_items", "missing"))
    ack = [(line.ci_lineitemid or "").strip() for line in lines if (line.ci_lineitemid or "").strip()]
    return ParsedOrder(result, issues, ack_token=json.dumps(ack))


def _date(result: order_pb2.Order, entry: schemas.OrderEntry, issues: list[Issue]) -> None:
    text = _text(entry.date)
    if not text:
        issues.append(Issue("date", "missing"))
        return
    try:
        placed = parse_ci_datetime(text)
    except ValueError:
        # Kept as written, so a re-listed order still dedupes on its revision.
        result.revision = text
        issues.append(Issue("date", "not a date in the form MM/DD/YYYY hh:mmAM UTC"))
        return
    result.placed_time.CopyFrom(convert.to_timestamp(placed))
    # CommerceInterface keeps no modification time: an order is listed as placed, so its
    # placed time is its one revision and a re-listed order is a duplicate of the first.
    result.revision = convert.format_iso_millis(placed)


def _customer(result: order_pb2.Order, entry: schemas.OrderEntry, issues: list[Issue]) -> None:
    customer = entry.customer or schemas.Customer()
    first, last = _split_name(_text(customer.name))
    phone = _text(customer.phone)
    result.customer.CopyFrom(order_pb2.Customer(first_name=first, last_name=last, phone=phone))
    country = _text(customer.country)
    region = convert.country_code(country)
    if country and region is None:
        issues.append(Issue("customer.country", "names no country: expected a country's name or ISO code"))
    elif not country:
        issues.append(Issue("customer.country", "missing"))
    result.ship_to.CopyFrom(
        postal_address_pb2.PostalAddress(
            first_name=first,
            last_name=last,
            address_lines=[t for t in (_text(customer.address1), _text(customer.address2)) if t],
            locality=_text(customer.city),
            administrative_area=_text(customer.state),
            postal_code=_text(customer.zip),
            region_code=region or "",
            phone=phone,
        )
    )
    if not _text(customer.address1):
        issues.append(Issue("customer.address1", "missing"))


def _split_name(name: str) -> tuple[str, str]:
    # CommerceInterface gives one name; its first word is taken as the first name, so first and
    # last joined again give the name as written.
    first, _, last = name.partition(" ")
    return first, last.strip()


def _shipping(result: order_pb2.Order, entry: schemas.OrderEntry, currency: str, issues: list[Issue]) -> None:
    shipping = entry.shipping or schemas.Shipping()
    carrier, method = _text(shipping.carrier), _text(shipping.method)
    result.shipping_method.CopyFrom(
        order_pb2.ShippingMethod(
            carrier=carrier,
            service=method,
            # What carrier mapping translates: Groupon's courier codes name carriers.
            code=codes.approved_code(carrier) or carrier,
            title=" ".join(t for t in (carrier, method) if t),
        )
    )
    amount = entry.amount or schemas.Amount()
    freight = _money(amount.shipping, currency, "amount.shipping", issues)
    if freight is not None:
        result.shipping_method.price.CopyFrom(freight)
        result.totals.shipping.CopyFrom(freight)
    total = _money(amount.total, currency, "amount.total", issues)
    if total is not None:
        result.totals.total.CopyFrom(total)


def _lines(result: order_pb2.Order, lines: list[schemas.LineItem], currency: str, issues: list[Issue]) -> None:
    gift_messages: list[str] = []
    ship_by: list[str] = []
    for line in lines:
        line_id = _text(line.ci_lineitemid)
        where = f"line_items[{line_id or '?'}]"
        groupon_sku, own_sku = _text(line.sku), _text(line.bom_sku)
        out = order_pb2.OrderLine(
            channel_line_id=line_id,
            # The supplier's own SKU is what its warehouse knows; Groupon's stays as an option.
            sku=own_sku or groupon_sku,
            title=_text(line.name),
            requires_shipping=True,
            options=_options(line),
        )
        if not line_id:
            issues.append(Issue(f"{where}.ci_lineitemid", "missing"))
        if not out.sku:
            issues.append(Issue(f"{where}.sku", "missing (and no bom_sku)"))
        quantity = _quantity(line.quantity)
        if quantity is None:
            issues.append(Issue(f"{where}.quantity", "not a whole number of at least 1"))
        else:
            out.quantity = quantity
        price = _money(line.unit_price, currency, f"{where}.unit_price", issues)
        if price is not None:
            out.unit_price.CopyFrom(price)
        result.lines.append(out)
        if _text(line.gift_message):
            gift_messages.append(_text(line.gift_message))
        if _text(line.ship_by_date):
            day = _day(_text(line.ship_by_date))
            if day is None:
                issues.append(Issue(f"{where}.ship_by_date", "not a date in the form MM/DD/YYYY"))
            else:
                ship_by.append(day)
    result.gift_message = "\n".join(dict.fromkeys(gift_messages))
    result.gift = bool(result.gift_message)
    # The earliest day Groupon wants any line shipped by.
    result.requested_ship_date = min(ship_by, default="")


def _options(line: schemas.LineItem) -> list[order_pb2.LineOption]:
    values = (
        (codes.OPTION_GROUPON_SKU, _text(line.sku)),
        (codes.OPTION_FULFILLMENT_LINE, _text(line.fulfillment_lineitem_id)),
        (codes.OPTION_PO_NUMBER, _text(line.po_number)),
    )
    return [order_pb2.LineOption(name=name, value=value) for name, value in values if value]


def _day(text: str) -> str | None:
    """A ship-by date ("MM/DD/YYYY", optionally followed by the time of day) as YYYY-MM-DD."""
    match = re.match(r"^(\d{2})/(\d{2})/(\d{4})(?:$| )", text)
    if match is None:
        return None
    try:
        return datetime(int(match[3]), int(match[1]), int(match[2])).date().isoformat()
    except ValueError:
        return None


def _quantity(text: str | None) -> int | None:
    value = _decimal(text)
    if value is None or value != value.to_integral_value() or not 1 <= value <= _INT32_MAX:
        return None
    return int(value)


def _money(text: str | None, currency: str, field_name: str, issues: list[Issue]) -> money_pb2.Money | None:
    """An amount in major units (a JSON number or a numeric string) as exact cents; an amount
    with a fraction of a cent is an issue, not rounded."""
    if text is None or not text.strip():
        return None
    value = _decimal(text)
    cents = value * 100 if value is not None else None
    if cents is None or cents != cents.to_integral_value() or abs(cents) > 2**63 - 1:
        issues.append(Issue(field_name, "not an amount in whole cents"))
        return None
    return convert.money(int(cents), currency)


def _decimal(text: str | None) -> Decimal | None:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _text(value: str | None) -> str:
    return (value or "").strip()
