"""Commerce7 order -> canonical Order (pure): normalisation plus validation issues."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2
from pydantic import ValidationError

from ..base import convert
from ..base.errors import InvalidResponse
from ..base.issues import Issue
from ..base.json_text import check_carriable
from ..base.models import describe_validation_error
from . import codes, schemas

_Money = Callable[[int, str], money_pb2.Money | None]
# The canonical Order's integer fields; JSON numbers have no bound, so a larger one is an issue.
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


def parse_order(payload: Mapping[str, Any] | schemas.Order, *, tenant_id: str) -> tuple[order_pb2.Order, list[Issue]]:
    """Normalise a Commerce7 order into the canonical Order.

    Args:
        payload: the order as `GET /order/{id}` or a webhook's `payload` returns it, either
            raw JSON or an already validated `schemas.Order`.
        tenant_id: the ordersync tenant the order belongs to (set on the result).

    Returns:
        (order, issues). The order is always returned, with every field that could be read;
        `issues` lists what makes it unfit to process (missing id, number or revision, a ship
        order without address, state, zip or shipping method, no lines, a line without SKU or
        with quantity below 1, unreadable dates, a number too large for the canonical Order). `order_id` is left empty: order intake
        assigns ordersync's id.

    Raises:
        InvalidResponse: the payload is not shaped like an order at all (e.g. `items` is not
            a list), or holds text no store can keep (a NUL character or a lone surrogate).
            Business-validity problems never raise.
    """
    order = validate_order(payload)
    issues: list[Issue] = []
    currency = order.currencyCode or codes.DEFAULT_CURRENCY

    def money(minor_units: int, field_name: str) -> money_pb2.Money | None:
        if abs(minor_units) > _INT64_MAX:
            issues.append(Issue(field_name, "amount out of range"))
            return None
        return convert.money(minor_units, currency)

    result = order_pb2.Order(tenant_id=tenant_id, channel=codes.CHANNEL_NAME, currency_code=currency)
    _identify(result, order, issues)
    _classify(result, order, issues)
    _parties(result, order, issues)
    _goods(result, order, money, issues)
    _payment_and_dates(result, order, issues)
    _notes(result, order)
    _amounts(result, order, money)
    return result, issues


def _identify(result: order_pb2.Order, order: schemas.Order, issues: list[Issue]) -> None:
    if order.id:
        result.external_id = order.id
    else:
        issues.append(Issue("id", "missing"))
    if order.orderNumber is not None and str(order.orderNumber).strip():
        result.external_number = str(order.orderNumber).strip()
    else:
        issues.append(Issue("orderNumber", "missing"))
    if order.updatedAt:
        # Normalised to one format so revisions compare correctly as text.
        revision = _timestamp_text(order.updatedAt, "updatedAt", issues)
        result.revision = revision or order.updatedAt
    else:
        issues.append(Issue("updatedAt", "missing"))


def _classify(result: order_pb2.Order, order: schemas.Order, issues: list[Issue]) -> None:
    delivery = codes.DELIVERY_METHODS.get(order.orderDeliveryMethod or "")
    if delivery is None:
        delivery = order_pb2.DELIVERY_METHOD_UNSPECIFIED
        issues.append(_unknown("orderDeliveryMethod", order.orderDeliveryMethod))
    result.delivery_method = delivery
    result.order_type = _order_type(order, delivery)
    result.origin = codes.CHANNEL_TO_ORIGIN.get(order.channel or "", order_pb2.ORDER_ORIGIN_UNSPECIFIED)
    result.linked_order_id = _linked_order_id(order, result.order_type)


def _parties(result: order_pb2.Order, order: schemas.Order, issues: list[Issue]) -> None:
    result.customer.CopyFrom(_customer(order, issues))
    if order.billTo is not None:
        result.bill_to.CopyFrom(_address(order.billTo, "billTo", issues))
    if result.delivery_method == order_pb2.DELIVERY_METHOD_SHIP and order.shipTo is not None:
        result.ship_to.CopyFrom(_address(order.shipTo, "shipTo", issues))
    if result.order_type == order_pb2.ORDER_TYPE_SHIPPING:
        _check_ship_to(order.shipTo, issues)


def _goods(result: order_pb2.Order, order: schemas.Order, money: _Money, issues: list[Issue]) -> None:
    if not order.items:
        issues.append(Issue("items", "the order has no lines"))
    # Refund lines are never fulfilled (and may carry negative quantities), so they are not
    # checked for fulfilment.
    check_lines = result.order_type != order_pb2.ORDER_TYPE_REFUND
    for index, item in enumerate(order.items):
        result.lines.append(_line(item, index, money, issues, check_fulfilment=check_lines))
    if order.shipping:
        result.shipping_method.CopyFrom(_shipping_method(order.shipping[0], money))
    elif result.order_type == order_pb2.ORDER_TYPE_SHIPPING:
        issues.append(Issue("shipping", "a ship order has no shipping method"))


def _payment_and_dates(result: order_pb2.Order, order: schemas.Order, issues: list[Issue]) -> None:
    result.payment.status = order.paymentStatus or ""
    if order.orderPaidDate:
        paid = _timestamp(order.orderPaidDate, "orderPaidDate", issues)
        if paid is not None:
            result.payment.paid_time.CopyFrom(paid)
    if order.orderSubmittedDate:
        placed = _timestamp(order.orderSubmittedDate, "orderSubmittedDate", issues)
        if placed is not None:
            result.placed_time.CopyFrom(placed)
    requested = _requested_ship_date(order, order.metaData or {})
    if requested is not None:
        field_name, value = requested
        result.requested_ship_date = _date(value, field_name, issues) or ""


def _notes(result: order_pb2.Order, order: schemas.Order) -> None:
    result.gift_message = (order.giftMessage or "").strip()
    result.gift = bool(result.gift_message)
    result.customer_notes = (order.shippingInstructions or "").strip()
    notes = (order.metaData or {}).get(codes.META_INTERNAL_NOTES)
    if isinstance(notes, str):
        result.internal_notes = notes.strip()


def _amounts(result: order_pb2.Order, order: schemas.Order, money: _Money) -> None:
    discount_total = 0
    for index, promotion in enumerate(order.promotions):
        amount = _promotion_amount(promotion)
        discount = money(amount, f"promotions[{index}]") if amount else None
        if discount is not None:
            discount_total += amount
            code = promotion.title or promotion.promotionId or ""
            result.discounts.append(order_pb2.Discount(code=code, amount=discount))
    totals = result.totals
    for target, value, field_name in (
        (totals.subtotal, order.subTotal, "subTotal"),
        (totals.shipping, order.shipTotal, "shipTotal"),
        (totals.tax, order.taxTotal, "taxTotal"),
        (totals.tip, order.tipTotal, "tipTotal"),
        (totals.total, order.total, "total"),
    ):
        converted = money(value, field_name) if value is not None else None
        if converted is not None:
            target.CopyFrom(converted)
    if order.promotions:
        discount = money(discount_total, "promotions")
        if discount is not None:
            totals.discount.CopyFrom(discount)


def validate_order(payload: Mapping[str, Any] | schemas.Order) -> schemas.Order:
    """Validate raw order JSON into `schemas.Order` (a validated order is returned as is).

    Raises:
        InvalidResponse: the payload is not shaped like an order (names the first bad field).
    """
    if isinstance(payload, schemas.Order):
        return payload
    check_carriable(payload, label="commerce7 payload is not an order", error=InvalidResponse)
    try:
        return schemas.Order.model_validate(payload)
    except ValidationError as exc:
        raise InvalidResponse(f"commerce7 payload is not an order: {describe_validation_error(exc)}") from exc


def _order_type(order: schemas.Order, delivery: order_pb2.DeliveryMethod) -> order_pb2.OrderType:
    # See README "Order type": refunds and exchanges are separate orders linked to the
    # original; a refund marker wins over an exchange marker.
    by_purchase = codes.PURCHASE_TYPE_ORDER_TYPES.get((order.purchaseType or "").strip().lower())
    if by_purchase == order_pb2.ORDER_TYPE_REFUND or order.refundOrderId or (order.refundOrderNumber is not None):
        return order_pb2.ORDER_TYPE_REFUND
    if by_purchase == order_pb2.ORDER_TYPE_EXCHANGE or order.previousOrderId or (order.previousOrderNumber is not None):
        return order_pb2.ORDER_TYPE_EXCHANGE
    return codes.SALE_ORDER_TYPES.get(delivery, order_pb2.ORDER_TYPE_UNSPECIFIED)


def _linked_order_id(order: schemas.Order, order_type: order_pb2.OrderType) -> str:
    if order_type == order_pb2.ORDER_TYPE_REFUND:
        return order.refundOrderId or order.previousOrderId or ""
    if order_type == order_pb2.ORDER_TYPE_EXCHANGE:
        return order.previousOrderId or ""
    return ""


def _customer(order: schemas.Order, issues: list[Issue]) -> order_pb2.Customer:
    source = order.customer or schemas.Customer()
    bill_to = order.billTo or schemas.Address()
    email = next((e.email.strip() for e in source.emails if e.email and e.email.strip()), "")
    phone = source.phone or next((p.phone for p in source.phones if p.phone), None) or bill_to.phone
    customer = order_pb2.Customer(
        customer_id=source.id or order.customerId or "",
        first_name=source.firstName or bill_to.firstName or "",
        last_name=source.lastName or bill_to.lastName or "",
        email=email,
        phone=(phone or "").strip(),
    )
    if source.birthDate:
        customer.birth_date = _date(source.birthDate, "customer.birthDate", issues) or ""
    elif bill_to.birthDate:
        customer.birth_date = _date(bill_to.birthDate, "billTo.birthDate", issues) or ""
    return customer


def _address(address: schemas.Address, path: str, issues: list[Issue]) -> postal_address_pb2.PostalAddress:
    lines = [line.strip() for line in (address.address, address.address2) if line and line.strip()]
    result = postal_address_pb2.PostalAddress(
        first_name=(address.firstName or "").strip(),
        last_name=(address.lastName or "").strip(),
        company=(address.company or "").strip(),
        address_lines=lines,
        locality=(address.city or "").strip(),
        administrative_area=(address.stateCode or "").strip(),
        postal_code=(address.zipCode or "").strip(),
        region_code=(address.countryCode or "").strip(),
        phone=(address.phone or "").strip(),
    )
    if address.birthDate:
        result.birth_date = _date(address.birthDate, f"{path}.birthDate", issues) or ""
    return result


def _check_ship_to(ship_to: schemas.Address | None, issues: list[Issue]) -> None:
    if ship_to is None:
        issues.append(Issue("shipTo", "a ship order has no ship-to address"))
        return
    if not (ship_to.address or "").strip():
        issues.append(Issue("shipTo.address", "missing"))
    if not (ship_to.stateCode or "").strip():
        issues.append(Issue("shipTo.stateCode", "missing"))
    if not (ship_to.zipCode or "").strip():
        issues.append(Issue("shipTo.zipCode", "missing"))


def _line(
    item: schemas.Item, index: int, money: _Money, issues: list[Issue], *, check_fulfilment: bool
) -> order_pb2.OrderLine:
    line = order_pb2.OrderLine(
        channel_line_id=item.id or "",
        sku=(item.sku or "").strip(),
        title=(item.purchaseTitle or item.productVariantTitle or "").strip(),
        quantity=_int32(item.quantity or 0, f"items[{index}].quantity", issues),
        # A missing flag counts as "ships": dropping a wine line would bypass compliance,
        # while sending a non-shippable line fails loudly at the provider.
        requires_shipping=item.hasShipping if item.hasShipping is not None else True,
    )
    price = money(item.price, f"items[{index}].price") if item.price is not None else None
    if price is not None:
        line.unit_price.CopyFrom(price)
    if item.volumeInMl:
        line.volume_ml = _int32(round(item.volumeInMl), f"items[{index}].volumeInMl", issues)
    # `weight` is not converted: Commerce7 does not document its unit (see README).
    if check_fulfilment:
        if not line.sku:
            issues.append(Issue(f"items[{index}].sku", "missing"))
        if item.quantity is None or item.quantity < 1:
            issues.append(Issue(f"items[{index}].quantity", "must be at least 1"))
    return line


def _shipping_method(shipping: schemas.Shipping, money: _Money) -> order_pb2.ShippingMethod:
    method = order_pb2.ShippingMethod(
        carrier=(shipping.carrier or "").strip(),
        service=(shipping.service or "").strip(),
        code=(shipping.code or "").strip(),
        title=(shipping.title or "").strip(),
    )
    price = money(shipping.price, "shipping[0].price") if shipping.price is not None else None
    if price is not None:
        method.price.CopyFrom(price)
    return method


def _int32(value: int, field_name: str, issues: list[Issue]) -> int:
    if abs(value) > _INT32_MAX:
        issues.append(Issue(field_name, "number out of range"))
        return 0
    return value


def _promotion_amount(promotion: schemas.Promotion) -> int:
    # Commerce7 reports discounts as negative values; the canonical Discount holds the amount
    # taken off as a positive number.
    if promotion.totalValue is not None:
        return abs(promotion.totalValue)
    return abs((promotion.productValue or 0) + (promotion.shippingValue or 0))


def _requested_ship_date(order: schemas.Order, meta: Mapping[str, Any]) -> tuple[str, str] | None:
    # Commerce7 keeps the customer's choice in selectedShippingOptions (seen in public
    # clients, not in the API docs); metaData and a top-level field are fallbacks for tenants
    # that store it themselves.
    candidates = (
        (
            "selectedShippingOptions.requestedShipDate",
            order.selectedShippingOptions.requestedShipDate if order.selectedShippingOptions else None,
        ),
        (f"metaData.{codes.META_REQUESTED_SHIP_DATE}", meta.get(codes.META_REQUESTED_SHIP_DATE)),
        ("requestedShipDate", order.requestedShipDate),
    )
    for field_name, value in candidates:
        if isinstance(value, str) and value.strip():
            return field_name, value
    return None


def _unknown(field_name: str, value: str | None) -> Issue:
    if not value:
        return Issue(field_name, "missing")
    return Issue(field_name, f"unknown value {value[:40]!r}")


def _timestamp(value: str, field_name: str, issues: list[Issue]) -> Timestamp | None:
    try:
        return convert.to_timestamp(convert.parse_datetime(value))
    except (ValueError, OverflowError):  # OverflowError: a date at the calendar's edge, shifted to UTC
        issues.append(Issue(field_name, "not an ISO-8601 date-time"))
        return None


def _timestamp_text(value: str, field_name: str, issues: list[Issue]) -> str | None:
    try:
        return convert.format_iso_millis(convert.parse_datetime(value))
    except (ValueError, OverflowError):
        issues.append(Issue(field_name, "not an ISO-8601 date-time"))
        return None


def _date(value: str, field_name: str, issues: list[Issue]) -> str | None:
    try:
        return convert.parse_date(value)
    except ValueError:
        issues.append(Issue(field_name, "not a YYYY-MM-DD date"))
        return None
