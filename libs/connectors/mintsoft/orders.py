"""Canonical Order -> Mintsoft `PUT /api/Order` body, and the create answer read per row (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ordersync.common.v1 import order_pb2
from pydantic import ValidationError

from ..base import convert
from ..base.contract import SubmissionItem
from ..base.errors import InvalidRequest, InvalidResponse
from ..base.models import describe_validation_error
from . import schemas

# The OrderNameValues entry keeping the channel's line ids and quantities with the order, so
# they come back with its tracking (Mintsoft's own Groupon connector keeps them in ExtraCode1).
LINE_IDS_NAME = "ci_lineitem_ids"
_ADDRESS_LINES = 3


def provider_order_number(prefix: str, order: order_pb2.Order) -> str:
    """The Mintsoft OrderNumber: the prefix and the channel's order number, e.g. "GR-1001".

    Raises:
        InvalidRequest: the order has no external_number.
    """
    number = order.external_number.strip()
    if not number:
        raise InvalidRequest("mintsoft order number: the order has no external_number")
    return f"{prefix}{number}"


@dataclass(frozen=True)
class OrderDefaults:
    """What an account (and route) adds to every order: where and how it ships."""

    client_id: int | None = None
    warehouse_id: int | None = None
    courier_service: str = "AUTO"
    channel: str = ""


def submission_items(order: order_pb2.Order, items: Sequence[SubmissionItem]) -> list[SubmissionItem]:
    """The items to send: the product-mapped ones, else the order's own lines (SKU unchanged).

    Raises:
        InvalidRequest: a line without SKU or with a quantity below 1.
    """
    chosen = list(items) or [
        SubmissionItem(line.channel_line_id, line.sku, line.quantity, line.title) for line in order.lines
    ]
    for item in chosen:
        if not item.sku.strip():
            raise InvalidRequest(f"mintsoft create_order: line {item.channel_line_id[:40]!r} has no SKU")
        if item.quantity < 1:
            raise InvalidRequest(f"mintsoft create_order: line {item.channel_line_id[:40]!r} has quantity below 1")
    if not chosen:
        raise InvalidRequest("mintsoft create_order: the order has no lines")
    return chosen


def kept_line_ids(order: order_pb2.Order, items: Sequence[SubmissionItem]) -> dict[str, int]:
    """Channel line id -> its quantity on the channel, for each line the items come from.

    The channel's quantity, not the warehouse's: a bundle of three components is still one
    channel line of quantity one, and tracking goes back per channel line.
    """
    channel_quantity = {line.channel_line_id: line.quantity for line in order.lines}
    kept: dict[str, int] = {}
    for item in items:
        if item.channel_line_id and item.channel_line_id not in kept:
            kept[item.channel_line_id] = channel_quantity.get(item.channel_line_id, item.quantity)
    return kept


def encode_line_ids(kept: Mapping[str, int]) -> str:
    """The OrderNameValues text for the kept line ids: compact JSON `{"<id>": quantity}`."""
    return json.dumps(dict(kept), separators=(",", ":"))


def decode_line_ids(text: str | None) -> dict[str, int]:
    """The kept line ids from their OrderNameValues text; {} when absent or unreadable."""
    try:
        value = json.loads(text or "")
    except (ValueError, RecursionError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0 and str(k)}


def build_order(
    order: order_pb2.Order,
    *,
    order_number: str,
    reference: str,
    items: Sequence[SubmissionItem],
    defaults: OrderDefaults,
) -> dict[str, Any]:
    """The body of `PUT /api/Order` for one order.

    Args:
        order: the canonical order with a ship-to address and a country.
        order_number: from provider_order_number (Mintsoft refuses a second order with it).
        reference: the stable idempotency key, sent as ExternalOrderReference (also refused
            when repeated).
        items: the lines as the warehouse knows them (submission_items).
        defaults: the account's and route's client, warehouse, courier service and channel.

    Raises:
        InvalidRequest: no ship-to address or country, a line without SKU.
    """
    ship_to = order.ship_to
    if not order.HasField("ship_to") or not ship_to.address_lines:
        raise InvalidRequest("mintsoft create_order: the order has no ship-to address")
    if not ship_to.region_code.strip():
        raise InvalidRequest("mintsoft create_order: the ship-to address has no country")
    chosen = submission_items(order, items)
    lines = list(ship_to.address_lines)
    # Mintsoft has three address lines; any further ones join the third rather than vanish.
    address = [*lines[: _ADDRESS_LINES - 1], ", ".join(lines[_ADDRESS_LINES - 1 :])]
    total = order.totals.total if order.HasField("totals") and order.totals.HasField("total") else None
    body = schemas.NewOrder(
        OrderNumber=order_number,
        ExternalOrderReference=reference,
        ClientId=defaults.client_id,
        WarehouseId=defaults.warehouse_id,
        FirstName=_text(ship_to.first_name or order.customer.first_name),
        LastName=_text(ship_to.last_name or order.customer.last_name),
        CompanyName=_text(ship_to.company),
        Address1=address[0],
        Address2=_text(address[1] if len(address) > 1 else ""),
        Address3=_text(address[2] if len(address) > 2 else ""),
        Town=_text(ship_to.locality),
        County=_text(ship_to.administrative_area),
        PostCode=_text(ship_to.postal_code),
        Country=ship_to.region_code.strip().upper(),
        Email=_text(ship_to.email or order.customer.email),
        Phone=_text(ship_to.phone or order.customer.phone),
        CourierService=defaults.courier_service or None,
        Channel=defaults.channel or None,
        Currency=_text(order.currency_code),
        DeliveryNotes=_text(order.customer_notes),
        GiftMessages=_text(order.gift_message),
        OrderValue=float(convert.minor_units_to_decimal(total.minor_units)) if total is not None else None,
        OrderNameValues=[schemas.NameValue(Name=LINE_IDS_NAME, Value=encode_line_ids(kept_line_ids(order, chosen)))],
        OrderItems=[
            schemas.NewOrderItem(SKU=item.sku, Quantity=item.quantity, Details=_text(item.channel_line_id))
            for item in chosen
        ],
    )
    return body.to_json_dict()


@dataclass(frozen=True)
class CreateOutcome:
    """Mintsoft's answer for the one order of a create: taken (with its id) or refused."""

    success: bool
    order_id: int | None
    message: str


def parse_create_response(answer: Any, order_number: str) -> CreateOutcome:
    """Read the create answer's row for `order_number` (HTTP 200 is not success: `Success` is).

    Mintsoft answers an array of rows; a single object (an ASP.NET error) is read as one
    refused row carrying its Message.

    Raises:
        InvalidResponse: no row, or a row that cannot be read.
    """
    rows = answer if isinstance(answer, list) else [answer]
    parsed = []
    for row in rows:
        if not isinstance(row, dict):
            raise InvalidResponse("mintsoft create_order: an answer row is not an object")
        try:
            parsed.append(schemas.CreateResult.model_validate(row))
        except ValidationError as exc:
            raise InvalidResponse(f"mintsoft create_order: {describe_validation_error(exc)}") from None
    if not parsed:
        raise InvalidResponse("mintsoft create_order: the answer has no row")
    row = next((r for r in parsed if r.OrderNumber == order_number), parsed[0])
    if not isinstance(answer, list) and "Success" not in answer:
        return CreateOutcome(False, None, str(answer.get("Message") or ""))
    return CreateOutcome(row.Success, row.OrderId, row.Message or "")


def _text(value: str) -> str | None:
    value = value.strip()
    return value or None
