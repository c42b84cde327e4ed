"""VinSuite request bodies and answers: AddOrder for a Customer Pickup order, members. Pure.

A reservation becomes a will-call order (`IsWillCallOrder` true, no confirmation e-mail, stock
left alone): its lines as OrderItems, the guest as the billing member. `OrderDate` and
`PickupDate` are ours (see the README): which date each carries is the account's choice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

from ordersync.common.v1 import order_pb2, postal_address_pb2

from ..base.contract import ClubMembership, DirectoryMember, MemberType
from ..base.convert import minor_units_to_decimal, timestamp_to_datetime
from ..base.errors import InvalidRequest, InvalidResponse


class DateSource(Enum):
    """Which of an order's dates an account puts on the VinSuite order."""

    BOOKED = "booked"  # when the reservation was placed (order.placed_time)
    EVENT = "event"  # the event's day (order.requested_ship_date)
    SYNC_DAY = "sync_day"  # the day it is sent, in UTC


def order_date(order: order_pb2.Order, source: DateSource, today: date) -> str:
    """The date `source` names for this order, as YYYY-MM-DD.

    Raises:
        InvalidRequest: the order lacks that date (no placed time, no event date).
    """
    if source is DateSource.SYNC_DAY:
        return today.isoformat()
    if source is DateSource.BOOKED:
        if not order.HasField("placed_time"):
            raise InvalidRequest("vinsuite: the order has no booked date (placed_time)")
        return timestamp_to_datetime(order.placed_time).astimezone(UTC).date().isoformat()
    event = order.requested_ship_date.strip()
    if not event:
        raise InvalidRequest("vinsuite: the order has no event date (requested_ship_date)")
    try:
        return date.fromisoformat(event).isoformat()
    except ValueError:
        raise InvalidRequest("vinsuite: the order's event date is not YYYY-MM-DD") from None


def today_utc() -> date:
    return datetime.now(UTC).date()


def order_items(order: order_pb2.Order) -> list[dict[str, Any]]:
    """The order's lines as OrderItems: SKU, quantity and unit price in major units."""
    if not order.lines:
        raise InvalidRequest("vinsuite: the order has no lines")
    items = []
    for line in order.lines:
        if not line.sku.strip():
            raise InvalidRequest(f"vinsuite: line {line.channel_line_id or '?'} has no SKU")
        price = minor_units_to_decimal(line.unit_price.minor_units) if line.HasField("unit_price") else 0
        items.append({"SKU": line.sku.strip(), "Quantity": line.quantity, "Price": float(price)})
    return items


def member_fields(customer: order_pb2.Customer, address: postal_address_pb2.PostalAddress | None) -> dict[str, Any]:
    """A customer (and their address) as VinSuite's billing member fields."""
    fields: dict[str, Any] = {
        "FirstName": customer.first_name or (address.first_name if address else ""),
        "LastName": customer.last_name or (address.last_name if address else ""),
        "Email": customer.email or (address.email if address else ""),
        "Phone": customer.phone or (address.phone if address else ""),
    }
    if address is not None:
        lines = list(address.address_lines)
        fields |= {
            "Address": lines[0] if lines else "",
            "Address2": ", ".join(lines[1:]),
            "City": address.locality,
            "State": address.administrative_area,
            "ZipCode": address.postal_code,
            "Country": address.region_code,
        }
    return fields


def build_add_order(order: order_pb2.Order, *, order_number: str, order_day: str, pickup_day: str) -> dict[str, Any]:
    """The AddOrder request (less WineryID and credentials, which the client adds)."""
    bill_to = order.bill_to if order.HasField("bill_to") else None
    buyer = member_fields(order.customer, bill_to)
    return {
        "Order": {
            "OrderNumber": order_number,
            "OrderItems": order_items(order),
            "BillingMember": buyer,
            "IsWillCallOrder": True,  # Customer Pickup
            "OrderDate": order_day,
            "PickupDate": pickup_day,
        },
        "IsDecrementInventory": False,
        "IsSendOrderConfirmation": False,  # CellarPass already told the guest
    }


def new_order_id(answer: dict[str, Any]) -> str:
    """The OrderID AddOrder answered."""
    order_id = answer.get("OrderID")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).strip():
        raise InvalidResponse("vinsuite AddOrder: the answer carries no OrderID")
    return str(order_id)


def created_products(answer: dict[str, Any]) -> list[str]:
    """SKUs VinSuite created (inactive) for this order, where the answer says (ours)."""
    created = answer.get("CreatedProducts")
    return [str(sku) for sku in created if isinstance(sku, str | int)] if isinstance(created, list) else []


def found_order_id(answer: dict[str, Any], order_number: str) -> str | None:
    """The OrderID of the SearchOrders row with exactly this OrderNumber, or None."""
    rows = answer.get("Orders")
    if rows is None:
        return None
    if not isinstance(rows, list):
        raise InvalidResponse("vinsuite SearchOrders: Orders is not a list")
    for row in rows:
        if isinstance(row, dict) and row.get("OrderNumber") == order_number and row.get("OrderID") is not None:
            return str(row["OrderID"])
    return None


def parse_members(answer: dict[str, Any]) -> list[DirectoryMember]:
    """GetMembers' Members as directory members."""
    rows = answer.get("Members")
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise InvalidResponse("vinsuite GetMembers: Members is not a list")
    return [_member(row) for row in rows]


def _member(row: Any) -> DirectoryMember:
    if not isinstance(row, dict) or row.get("MemberID") in (None, ""):
        raise InvalidResponse("vinsuite GetMembers: a member without MemberID")
    clubs = row.get("ClubMemberships") or []
    types = row.get("MemberTypes") or []
    if not isinstance(clubs, list) or not isinstance(types, list):
        raise InvalidResponse("vinsuite GetMembers: MemberTypes or ClubMemberships is not a list")
    return DirectoryMember(
        member_id=str(row["MemberID"]),
        first_name=_text(row.get("FirstName")),
        last_name=_text(row.get("LastName")),
        email=_text(row.get("Email")),
        phone=_text(row.get("Phone")),
        member_types=tuple(_text(t.get("Name") if isinstance(t, dict) else t) for t in types),
        clubs=tuple(
            ClubMembership(_text(c.get("ClubID")), _text(c.get("ClubName")), _text(c.get("Status")))
            for c in clubs
            if isinstance(c, dict)
        ),
    )


def parse_member_types(answer: dict[str, Any]) -> list[MemberType]:
    rows = answer.get("MemberTypes")
    if not isinstance(rows, list):
        raise InvalidResponse("vinsuite GetMemberTypes: MemberTypes is not a list")
    return [
        MemberType(_text(row.get("MemberTypeID")), _text(row.get("Name")))
        for row in rows
        if isinstance(row, dict) and row.get("MemberTypeID") is not None
    ]


def _text(value: Any) -> str:
    return "" if value is None else str(value)
