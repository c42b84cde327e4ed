"""Cin7 sales orders -> canonical Orders (pure): the list request, its answer, normalisation.

Every order is returned with what keeps it from being imported, in two kinds: the import
rules' failures (`rules.py`: good data, not to be shipped yet, kept as *not imported*) and the
issues of bad data (fields the canonical Order cannot do without, kept as invalid). Either way
the order stays visible instead of vanishing, so an operator can see why nothing was shipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2
from pydantic import ValidationError

from ..base import convert
from ..base.contract import ParsedOrder
from ..base.errors import InvalidResponse
from ..base.issues import Issue
from ..base.json_text import check_carriable
from ..base.models import describe_validation_error
from . import codes, schemas
from .cursor import Cursor
from .rules import RuleContext, check_import, contact_phone, dispatch_lines

_INT32_MAX = 2**31 - 1


def build_list_params(cursor: Cursor, *, page_size: int) -> dict[str, str]:
    """The query of `GET /v1/SalesOrders` for the page after `cursor` (always its page 1:
    the cursor, not a page number, moves on, so an order changing meanwhile shifts nothing)."""
    params = {"fields": ",".join(codes.ORDER_FIELDS), "order": cursor.order(), "page": "1", "rows": str(page_size)}
    where = cursor.where()
    if where:
        params["where"] = where
    return params


def parse_list_response(body: Any) -> list[dict[str, Any]]:
    """The orders of one `GET /v1/SalesOrders` answer (a bare JSON array).

    Raises:
        InvalidResponse: the body is not an array of objects each with an integer `id`.
    """
    if not isinstance(body, list):
        raise InvalidResponse("cin7 list_sales_orders: body is not a JSON array")
    for index, row in enumerate(body):
        if not isinstance(row, dict) or isinstance(row.get("id"), bool) or not isinstance(row.get("id"), int):
            raise InvalidResponse(f"cin7 list_sales_orders: row {index} is not a sales order with an id")
    return body


def validate_order(payload: Mapping[str, Any]) -> schemas.SalesOrder:
    """Validate raw sales-order JSON.

    Raises:
        InvalidResponse: not shaped like a sales order (names the first bad field).
    """
    check_carriable(payload, label="cin7 payload is not a sales order", error=InvalidResponse)
    try:
        return schemas.SalesOrder.model_validate(payload)
    except ValidationError as exc:
        raise InvalidResponse(f"cin7 payload is not a sales order: {describe_validation_error(exc)}") from exc


def parse_order(
    payload: Mapping[str, Any] | schemas.SalesOrder,
    *,
    tenant_id: str,
    context: RuleContext,
    option_names: tuple[str, ...] = codes.DEFAULT_OPTION_NAMES,
) -> ParsedOrder:
    """Normalise one Cin7 sales order into the canonical Order.

    Args:
        payload: the order as `GET /v1/SalesOrders` returns it, or already validated.
        tenant_id: the ordersync tenant it belongs to.
        context: the tenant's stage names and the clock, for the import rules.
        option_names: what the tenant calls a line's option1, option2, option3 (e.g. Colour).

    Returns:
        The order with every field that could be read; `rule_failures` the import rules it
        fails (each with its code), `issues` what else makes it unfit (no reference,
        unreadable dates, a line without SKU).

    Raises:
        InvalidResponse: the payload is not a sales order at all.
    """
    order = payload if isinstance(payload, schemas.SalesOrder) else validate_order(payload)
    rule_failures = [failure.issue() for failure in check_import(order, context)]
    issues: list[Issue] = []
    currency = (order.currencyCode or "").strip().upper() or codes.DEFAULT_CURRENCY
    result = order_pb2.Order(
        tenant_id=tenant_id,
        channel=codes.CHANNEL_NAME,
        external_id=str(order.id),
        external_number=(order.reference or "").strip(),
        currency_code=currency,
        order_type=order_pb2.ORDER_TYPE_SHIPPING,
        delivery_method=order_pb2.DELIVERY_METHOD_SHIP,
        customer_notes=(order.deliveryInstructions or "").strip(),
        internal_notes=(order.internalComments or "").strip(),
        # The stage is the tenant's workflow position; a status map reads it downstream.
        channel_status=_text(order.stage),
    )
    if not result.external_number:
        issues.append(Issue("reference", "missing"))
    _dates(result, order, issues)
    _parties(result, order)
    if _text(order.deliveryCountry) and not result.ship_to.region_code:
        issues.append(Issue("deliveryCountry", "names no country: write the country's name or its ISO code"))
    _lines(result, order, currency, issues, option_names)
    _amounts(result, order, currency, issues)
    return ParsedOrder(result, issues, rule_failures=rule_failures)


def _dates(result: order_pb2.Order, order: schemas.SalesOrder, issues: list[Issue]) -> None:
    modified = _timestamp(order.modifiedDate, "modifiedDate", issues)
    if modified is None:
        # Kept as Cin7 wrote it, so the order still has a revision to be deduplicated on.
        result.revision = (order.modifiedDate or "").strip()
        if not order.modifiedDate:
            issues.append(Issue("modifiedDate", "missing"))
    else:
        # One format, so revisions compare correctly as text.
        result.revision = convert.format_iso_millis(modified)
    placed = _timestamp(order.createdDate, "createdDate", issues)
    if placed is not None:
        result.placed_time.CopyFrom(placed)
    etd = order.estimatedDeliveryDate
    if etd:
        try:
            result.requested_ship_date = convert.parse_date(etd)
        except ValueError:
            issues.append(Issue(codes.ETD_FIELD, "not a date"))


def _parties(result: order_pb2.Order, order: schemas.SalesOrder) -> None:
    phone = contact_phone(order)
    result.customer.CopyFrom(
        order_pb2.Customer(
            customer_id=str(order.memberId or ""),
            first_name=_text(order.firstName),
            last_name=_text(order.lastName),
            email=_text(order.email) or _text(order.memberEmail),
            phone=phone,
        )
    )
    result.ship_to.CopyFrom(
        _address(
            order.deliveryFirstName,
            order.deliveryLastName,
            order.deliveryCompany,
            (order.deliveryAddress1, order.deliveryAddress2),
            order.deliveryCity,
            order.deliveryState,
            order.deliveryPostalCode,
            order.deliveryCountry,
            phone,
        )
    )
    result.bill_to.CopyFrom(
        _address(
            order.billingFirstName or order.firstName,
            order.billingLastName or order.lastName,
            order.billingCompany or order.company,
            (order.billingAddress1, order.billingAddress2),
            order.billingCity,
            order.billingState,
            order.billingPostalCode,
            order.billingCountry,
            phone,
        )
    )


def _address(
    first: str | None,
    last: str | None,
    company: str | None,
    lines: tuple[str | None, ...],
    city: str | None,
    state: str | None,
    postal_code: str | None,
    country: str | None,
    phone: str,
) -> postal_address_pb2.PostalAddress:
    return postal_address_pb2.PostalAddress(
        first_name=_text(first),
        last_name=_text(last),
        company=_text(company),
        address_lines=[_text(line) for line in lines if _text(line)],
        locality=_text(city),
        administrative_area=_text(state),
        postal_code=_text(postal_code),
        # Cin7 keeps the country as the tenant typed it (a code or a name): as ISO 3166 here,
        # so routes by country match; "" when it names no country (parse_order says so).
        region_code=convert.country_code(_text(country)) or "",
        phone=phone,
    )


def _lines(
    result: order_pb2.Order,
    order: schemas.SalesOrder,
    currency: str,
    issues: list[Issue],
    option_names: tuple[str, ...],
) -> None:
    # Cin7 ships a whole order from one branch; its id is the only stock location the
    # SalesOrders API gives (bin locations live on products, a call per line away).
    location = "" if order.branchId is None else f"branch {order.branchId}"
    # Only what is left to dispatch is sent on, as Cin7's ShipStation connector does.
    for index, line in dispatch_lines(order):
        quantity = (line.qty or 0) - (line.qtyShipped or 0)
        out = order_pb2.OrderLine(
            channel_line_id=str(line.id or ""),
            sku=_text(line.code),
            title=_text(line.name),
            requires_shipping=True,
            stock_location=location,
            options=_options(line, option_names),
        )
        if quantity != int(quantity) or quantity > _INT32_MAX:
            issues.append(Issue(f"lineItems[{index}].qty", "not a whole number of units"))
        else:
            out.quantity = int(quantity)
        if not out.sku:
            issues.append(Issue(f"lineItems[{index}].code", "missing"))
        price = _money(line.unitPrice, currency, f"lineItems[{index}].unitPrice", issues)
        if price is not None:
            out.unit_price.CopyFrom(price)
        result.lines.append(out)


def _options(line: schemas.LineItem, names: tuple[str, ...]) -> list[order_pb2.LineOption]:
    # Options the tenant named no name for keep Cin7's default one ("Option 3").
    named = (*names, *codes.DEFAULT_OPTION_NAMES[len(names) :])
    values = (line.option1, line.option2, line.option3)
    return [
        order_pb2.LineOption(name=name, value=_text(value))
        for name, value in zip(named, values, strict=True)
        if _text(value)
    ]


def _amounts(result: order_pb2.Order, order: schemas.SalesOrder, currency: str, issues: list[Issue]) -> None:
    freight = _money(order.freightTotal, currency, "freightTotal", issues)
    result.shipping_method.CopyFrom(
        order_pb2.ShippingMethod(
            carrier=_text(order.logisticsCarrier),
            title=_text(order.freightDescription),
            code=_text(order.freightDescription),
        )
    )
    if freight is not None:
        result.shipping_method.price.CopyFrom(freight)
        result.totals.shipping.CopyFrom(freight)
    total = _money(order.total, currency, "total", issues)
    if total is not None:
        result.totals.total.CopyFrom(total)
    _discount(result, order, currency, issues)


def _discount(result: order_pb2.Order, order: schemas.SalesOrder, currency: str, issues: list[Issue]) -> None:
    # One order-level discount: the coupon (voucher) code if one was used, else its description.
    amount = _money(order.discountTotal, currency, "discountTotal", issues)
    code = _text(order.voucherCode) or _text(order.discountDescription)
    if amount is None or (amount.minor_units == 0 and not code):
        return
    result.discounts.append(order_pb2.Discount(code=code, amount=amount))
    result.totals.discount.CopyFrom(amount)


def _money(value: float | None, currency: str, field_name: str, issues: list[Issue]) -> money_pb2.Money | None:
    """Cin7 sends amounts in major units as JSON numbers; via text to Decimal, exactly to cents."""
    if value is None:
        return None
    try:
        cents = (Decimal(str(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        issues.append(Issue(field_name, "not an amount"))
        return None
    if abs(cents) > 2**63 - 1:
        issues.append(Issue(field_name, "amount out of range"))
        return None
    return convert.money(int(cents), currency)


def _timestamp(value: str | None, field_name: str, issues: list[Issue]) -> Timestamp | None:
    if not value:
        return None
    try:
        return convert.to_timestamp(convert.parse_datetime(value))
    except (ValueError, OverflowError):
        issues.append(Issue(field_name, "not an ISO-8601 date-time"))
        return None


def _text(value: str | None) -> str:
    return (value or "").strip()
