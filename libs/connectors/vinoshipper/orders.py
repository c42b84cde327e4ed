"""Canonical Order -> Vinoshipper create-order request, and create/compliance responses (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2
from pydantic import ValidationError

from ..base import convert
from ..base.errors import InvalidRequest, InvalidResponse
from ..base.models import describe_validation_error
from . import codes, schemas

CURRENCY = "USD"
_NON_DIGITS = re.compile(r"\D")


def provider_order_number(prefix: str, order: order_pb2.Order) -> str:
    """Return the Vinoshipper order number for `order`: `f"{prefix}-{order.external_number}"`.

    Vinoshipper order numbers are unique across all of Vinoshipper, and two wineries both
    have an order 1001, so each tenant gets its own prefix (VinoshipperSettings). The number
    is also our idempotency key there: sending it twice answers 409.

    Raises:
        InvalidRequest: empty prefix or an order without external_number.
    """
    if not prefix:
        raise InvalidRequest("vinoshipper order number: the tenant prefix is empty")
    number = order.external_number.strip()
    if not number:
        raise InvalidRequest("vinoshipper order number: the order has no external_number")
    return f"{prefix}-{number}"


def build_create_order_request(
    order: order_pb2.Order,
    *,
    order_number: str,
    rate_code: str,
    source_url: str | None = None,
) -> dict[str, Any]:
    """Build the body of `POST /api/v3/p/orders` (and `/check-compliance`) for a ship order.

    The sales channel has charged the customer and e-mails them, so `isPaid` and
    `suppressCustomerEmails` are true. Only lines that require shipping become products,
    identified by SKU. A requested ship date is sent as `requestedShipDate` and also written
    first in `specialInstructions` ("Requested ship date: YYYY-MM-DD") so the packing team
    sees it as a flag; the customer's notes and a gift message follow.

    Args:
        order: a canonical ship order in USD with ship_to and lines.
        order_number: from provider_order_number.
        rate_code: Vinoshipper UPS rate code ("01", "02", "03", "12"), usually resolved by
            carrier mapping from the channel's shipping method.
        source_url: link back to the order in the channel, if any.

    Returns:
        JSON-ready body; amounts are decimal dollars with two places; unset fields omitted.

    Raises:
        InvalidRequest: unknown rate code, currency other than USD, no ship_to, no
            shippable line, a shippable line without SKU or with quantity below 1.
    """
    if rate_code not in codes.RATES_BY_CODE:
        raise InvalidRequest(f"vinoshipper create_order: unknown UPS rate code {rate_code!r}")
    currency = order.currency_code or CURRENCY
    if currency != CURRENCY:
        raise InvalidRequest(f"vinoshipper create_order: currency {currency!r} is not USD")
    if not order.HasField("ship_to") or not order.ship_to.address_lines:
        raise InvalidRequest("vinoshipper create_order: the order has no ship-to address")

    products = [_product(line, index) for index, line in enumerate(order.lines) if line.requires_shipping]
    if not products:
        raise InvalidRequest("vinoshipper create_order: the order has no line that ships")

    ship_to = order.ship_to
    bill_to = order.bill_to if order.HasField("bill_to") and order.bill_to.address_lines else None
    totals = order.totals
    try:
        body = schemas.CreateOrderRequest(
            orderNumber=order_number,
            sourceUrl=source_url or None,
            orderDate=(convert.format_iso_millis(order.placed_time) if order.HasField("placed_time") else None),
            customer=_customer(order, bill_to or ship_to),
            shipToAddress=_ship_to(ship_to),
            productIdType=codes.PRODUCT_ID_TYPE_SKU,
            products=products,
            shippingRate=schemas.ShippingRateRequest(carrier=codes.CARRIER_UPS, rateCode=rate_code),
            totalPrice=_dollars(totals, "total"),
            shippingPrice=_dollars(totals, "shipping"),
            tax=_dollars(totals, "tax"),
            discount=_dollars(totals, "discount"),
            tipAmount=_dollars(totals, "tip"),
            isPaid=True,
            specialInstructions=_special_instructions(order),
            metaFields=_meta_fields(order),
            requestedShipDate=order.requested_ship_date or None,
            suppressCustomerEmails=True,
        )
    except ValidationError as exc:
        raise InvalidRequest(f"vinoshipper create_order: {describe_validation_error(exc)}") from exc
    return body.to_json_dict()


def parse_create_order_response(detail: Mapping[str, Any]) -> str:
    """Return the order number Vinoshipper confirmed in a create response (an order detail).

    Raises:
        InvalidResponse: the body is not an order detail or has no orderNumber.
    """
    parsed = validate_order_detail(detail)
    if not parsed.orderNumber:
        raise InvalidResponse("vinoshipper create_order: the response has no orderNumber")
    return parsed.orderNumber


def parse_compliance_response(body: Mapping[str, Any]) -> list[str]:
    """Return the compliance problems a compliance check (or a rejected create) reported.

    Args:
        body: the JSON of `POST /check-compliance`, or of a 422 "Order is not compliant".

    Returns:
        Problems as text, empty when the order is compliant. `isCompliant: false` without a
        listed problem yields one generic problem, so "not compliant" is never read as "ok".
    """
    problems = schemas.problem_texts(body.get("orderProblems") or body.get("problems") or [])
    if not problems and body.get("isCompliant") is False:
        return ["not compliant (Vinoshipper gave no reason)"]
    return problems


def validate_order_detail(detail: Mapping[str, Any]) -> schemas.OrderDetail:
    """Validate an order detail body.

    Raises:
        InvalidResponse: not an object, or a field of the wrong type.
    """
    try:
        return schemas.OrderDetail.model_validate(detail)
    except ValidationError as exc:
        raise InvalidResponse(f"vinoshipper order detail: {describe_validation_error(exc)}") from exc


def _product(line: order_pb2.OrderLine, index: int) -> schemas.ProductRequest:
    if not line.sku.strip():
        raise InvalidRequest(f"vinoshipper create_order: line {index} has no SKU")
    if line.quantity < 1:
        raise InvalidRequest(f"vinoshipper create_order: line {index} has quantity below 1")
    return schemas.ProductRequest(
        productId=line.sku.strip(),
        quantity=line.quantity,
        price=_money_dollars(line.unit_price) if line.HasField("unit_price") else None,
    )


def _customer(order: order_pb2.Order, address: postal_address_pb2.PostalAddress) -> schemas.CustomerRequest:
    customer = order.customer
    birth_date = customer.birth_date or address.birth_date or order.ship_to.birth_date
    return schemas.CustomerRequest(
        firstName=customer.first_name or address.first_name,
        lastName=customer.last_name or address.last_name,
        email=customer.email or address.email or None,
        phone=_phone_number(customer.phone or address.phone) or None,
        dateOfBirth=birth_date or None,
        address=schemas.CustomerAddress(
            street1=address.address_lines[0],
            street2=_street2(address),
            city=address.locality,
            postalCode=address.postal_code,
            stateCode=address.administrative_area,
        ),
    )


def _ship_to(address: postal_address_pb2.PostalAddress) -> schemas.ShipToAddressRequest:
    number = _phone_number(address.phone)
    country = address.region_code or "US"
    return schemas.ShipToAddressRequest(
        street1=address.address_lines[0],
        street2=_street2(address),
        city=address.locality,
        postalCode=address.postal_code,
        stateCode=address.administrative_area,
        country=country,
        phone=(schemas.PhoneRequest(number=number, country=codes.PHONE_COUNTRY_CODES.get(country)) if number else None),
        firstName=address.first_name or None,
        lastName=address.last_name or None,
        company=address.company or None,
    )


def _street2(address: postal_address_pb2.PostalAddress) -> str | None:
    return ", ".join(address.address_lines[1:]) or None


def _phone_number(phone: str) -> str:
    # Vinoshipper takes the national number as digits with the calling code separately;
    # an 11-digit North-American number has its leading 1 (the calling code) removed.
    digits = _NON_DIGITS.sub("", phone)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def _money_dollars(amount: money_pb2.Money) -> Decimal:
    if amount.currency_code and amount.currency_code != CURRENCY:
        raise InvalidRequest(f"vinoshipper create_order: amount in {amount.currency_code!r}")
    return convert.minor_units_to_decimal(amount.minor_units)


def _dollars(totals: order_pb2.OrderTotals, field_name: str) -> Decimal | None:
    return _money_dollars(getattr(totals, field_name)) if totals.HasField(field_name) else None


def _special_instructions(order: order_pb2.Order) -> str | None:
    parts = []
    if order.requested_ship_date:
        parts.append(f"Requested ship date: {order.requested_ship_date}")
    if order.customer_notes.strip():
        parts.append(order.customer_notes.strip())
    if order.gift_message.strip():
        parts.append(f"Gift message: {order.gift_message.strip()}")
    return "\n".join(parts) or None


def _meta_fields(order: order_pb2.Order) -> dict[str, str]:
    # Lets an operator looking at the order in Vinoshipper find it in the channel and in
    # ordersync.
    fields = {
        "channel": order.channel,
        "channelOrderId": order.external_id,
        "channelOrderNumber": order.external_number,
        "ordersyncOrderId": order.order_id,
    }
    return {key: value for key, value in fields.items() if value}
