"""Canonical Order -> ShipStation v1 order, and the per-order results of createorders (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2

from ..base import convert
from ..base.errors import InvalidRequest, InvalidResponse
from . import codes

MAX_TEXT = 200  # ShipStation truncates long free text in its UI; keep ours readable there too


def provider_order_number(prefix: str, order: order_pb2.Order) -> str:
    """The order's number at ShipStation: the channel's number, after the account's prefix.

    ShipStation's numbers are per account, so no prefix is needed unless two channels share
    one account.

    Raises:
        InvalidRequest: the order has no external_number.
    """
    number = order.external_number.strip()
    if not number:
        raise InvalidRequest("shipstation order number: the order has no external_number")
    return f"{prefix}{number}"


def build_order(
    order: order_pb2.Order,
    *,
    order_number: str,
    order_key: str,
    order_status: str = codes.AWAITING_SHIPMENT,
    service_code: str = "",
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one element of the `POST /orders/createorders` array.

    `orderKey` is the stable key ShipStation upserts by, so sending the order again updates
    it. Amounts are decimal dollars. Route options `store_id` and `warehouse_id` go to
    `advancedOptions`; a service code from carrier mapping, else the method the customer chose
    at checkout, becomes `requestedShippingService` (ShipStation's carrierCode/serviceCode are
    set by the shipper when the label is bought). ShipStation has no discount field: each
    discount is an `adjustment` item of negative price (what ShipStation shows as a coupon),
    and the codes are also in `customField2`. The order's weight is the channel's total, else
    the sum of the lines'.

    Raises:
        InvalidRequest: no ship-to address, no line that ships, a line without SKU or with
            quantity below 1, an order status that is no ShipStation status.
    """
    if order_status not in codes.ORDER_STATUSES:
        raise InvalidRequest(f"shipstation createorders: {order_status!r} is not a ShipStation order status")
    if not order.HasField("ship_to") or not order.ship_to.address_lines:
        raise InvalidRequest("shipstation createorders: the order has no ship-to address")
    items = [
        _item(line, index, order.currency_code) for index, line in enumerate(order.lines) if line.requires_shipping
    ]
    if not items:
        raise InvalidRequest("shipstation createorders: the order has no line that ships")
    items.extend(_discount_item(discount, index, order.currency_code) for index, discount in enumerate(order.discounts))
    bill_to = order.bill_to if order.HasField("bill_to") and order.bill_to.address_lines else order.ship_to
    totals = order.totals
    body: dict[str, Any] = {
        "orderNumber": order_number,
        "orderKey": order_key,
        "orderDate": _iso(order),
        "orderStatus": order_status,
        "paymentDate": _paid(order),
        "paymentMethod": order.payment.method.strip() or None,
        "customerUsername": order.customer.email or None,
        "customerEmail": order.customer.email or None,
        "billTo": _address(bill_to, order.customer.phone),
        "shipTo": _address(order.ship_to, order.customer.phone),
        "items": items,
        "amountPaid": _amount(totals, "total", order.currency_code),
        "taxAmount": _amount(totals, "tax", order.currency_code),
        "shippingAmount": _amount(totals, "shipping", order.currency_code),
        "customerNotes": order.customer_notes.strip() or None,
        "internalNotes": order.internal_notes.strip() or None,
        "gift": order.gift,
        "giftMessage": order.gift_message.strip() or None,
        "requestedShippingService": service_code or order.shipping_method.title or None,
        "advancedOptions": _advanced(order, options or {}),
    }
    weight = order.total_weight_grams or sum(
        line.weight_grams * line.quantity for line in order.lines if line.requires_shipping
    )
    if weight:
        body["weight"] = {"value": weight, "units": codes.WEIGHT_UNITS_GRAMS}
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class CreateResult:
    """One order's line of a createorders answer."""

    order_number: str
    order_key: str
    order_id: int | None
    success: bool
    error_message: str


def parse_create_orders_response(answer: Mapping[str, Any], sent: Sequence[Mapping[str, Any]]) -> list[CreateResult]:
    """Match a createorders answer `{hasErrors, results[]}` to the orders sent, in their order.

    Results are matched by `orderKey` (ShipStation keeps the array's order, but a key is
    proof); an order the answer does not mention is a failure of its own, never a success.

    Raises:
        InvalidResponse: no `results` list, or a result of the wrong shape.
    """
    results = answer.get("results")
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise InvalidResponse("shipstation createorders: the answer has no 'results' list")
    by_key: dict[str, Mapping[str, Any]] = {}
    for result in results:
        key = result.get("orderKey")
        if not isinstance(key, str) or not isinstance(result.get("success"), bool):
            raise InvalidResponse("shipstation createorders: a result lacks orderKey or success")
        by_key.setdefault(key, result)
    parsed = []
    for order in sent:
        key = str(order["orderKey"])
        result = by_key.get(key)
        if result is None:
            parsed.append(CreateResult(str(order["orderNumber"]), key, None, False, "not in ShipStation's answer"))
            continue
        order_id = result.get("orderId")
        parsed.append(
            CreateResult(
                order_number=str(result.get("orderNumber") or order["orderNumber"]),
                order_key=key,
                order_id=order_id if isinstance(order_id, int) and not isinstance(order_id, bool) else None,
                success=result["success"],
                error_message=str(result.get("errorMessage") or ("" if result["success"] else "no reason given")),
            )
        )
    return parsed


def _iso(order: order_pb2.Order) -> str | None:
    return convert.format_iso_millis(order.placed_time) if order.HasField("placed_time") else None


def _paid(order: order_pb2.Order) -> str | None:
    paid = order.payment.paid_time if order.HasField("payment") and order.payment.HasField("paid_time") else None
    return convert.format_iso_millis(paid) if paid is not None else None


def _address(address: postal_address_pb2.PostalAddress, fallback_phone: str) -> dict[str, Any]:
    lines = list(address.address_lines)
    return {
        "name": " ".join(p for p in (address.first_name, address.last_name) if p) or None,
        "company": address.company or None,
        "street1": lines[0] if lines else None,
        "street2": lines[1] if len(lines) > 1 else None,
        "street3": ", ".join(lines[2:]) or None,
        "city": address.locality or None,
        "state": address.administrative_area or None,
        "postalCode": address.postal_code or None,
        "country": address.region_code or "US",
        "phone": address.phone or fallback_phone or None,
        "residential": None if address.company else True,
    }


def _item(line: order_pb2.OrderLine, index: int, currency: str) -> dict[str, Any]:
    if not line.sku.strip():
        raise InvalidRequest(f"shipstation createorders: line {index} has no SKU")
    if line.quantity < 1:
        raise InvalidRequest(f"shipstation createorders: line {index} has quantity below 1")
    item: dict[str, Any] = {
        "lineItemKey": line.channel_line_id or None,
        "sku": line.sku.strip(),
        "name": line.title or line.sku.strip(),
        "quantity": line.quantity,
        "unitPrice": _money(line.unit_price, currency) if line.HasField("unit_price") else None,
        "imageUrl": line.image_url.strip() or None,
        "warehouseLocation": line.stock_location.strip() or None,
        "options": [{"name": o.name, "value": o.value} for o in line.options if o.name or o.value] or None,
    }
    if line.weight_grams:
        item["weight"] = {"value": line.weight_grams, "units": codes.WEIGHT_UNITS_GRAMS}
    return {k: v for k, v in item.items() if v is not None}


def _discount_item(discount: order_pb2.Discount, index: int, currency: str) -> dict[str, Any]:
    # ShipStation's own marketplaces send coupons this way: an adjustment line, never picked.
    amount = _money(discount.amount, currency) if discount.HasField("amount") else Decimal(0)
    return {
        "lineItemKey": f"discount-{index}",
        "name": f"Discount {discount.code.strip()}".strip()[:MAX_TEXT],
        "quantity": 1,
        "unitPrice": -abs(amount),
        "adjustment": True,
    }


def _advanced(order: order_pb2.Order, options: Mapping[str, Any]) -> dict[str, Any]:
    codes_used = ", ".join(d.code.strip() for d in order.discounts if d.code.strip())
    advanced: dict[str, Any] = {
        "customField1": order.order_id or None,
        "customField2": f"Discounts: {codes_used}"[:MAX_TEXT] if codes_used else None,
        "source": order.channel or None,
    }
    if options.get("store_id") is not None:
        advanced["storeId"] = options["store_id"]
    if options.get("warehouse_id") is not None:
        advanced["warehouseId"] = options["warehouse_id"]
    return {k: v for k, v in advanced.items() if v is not None}


def _money(amount: money_pb2.Money, currency: str) -> Decimal:
    if (amount.currency_code or currency or codes.CURRENCY) != codes.CURRENCY:
        raise InvalidRequest(f"shipstation createorders: amount in {amount.currency_code or currency!r}, not USD")
    return convert.minor_units_to_decimal(amount.minor_units)


def _amount(totals: order_pb2.OrderTotals, name: str, currency: str) -> Decimal | None:
    return _money(getattr(totals, name), currency) if totals.HasField(name) else None
