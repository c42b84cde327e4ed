"""CellarPass reservations -> canonical Orders (pure): the list request, a page, one reservation.

Each reservation becomes one pickup order of type RESERVATION with one line: the event's SKU,
as many as there are guests, at the total divided by the guests. Bad data comes back as the
order's issues (kept and visible, never routed); the import rules CellarPass applies before a
sync (fully paid or complimentary, no ticket orders, not cancelled) come back as its
rule_failures, each with a stable code and an operator's sentence, so intake keeps the order as
not imported and evaluates its next change again.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation
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
from .cursor import Cursor

CENT = Decimal("0.01")


def build_list_params(cursor: Cursor, *, page_size: int) -> dict[str, str]:
    """The query of `GET /v1/reservations` for the cursor: every status and sync status (a
    change after a sync must come back too), oldest change first."""
    params = {"status": "all", "page": str(cursor.page), "pageSize": str(page_size)}
    if cursor.since:
        params["updatedSince"] = cursor.since
    return params


def parse_list_response(body: Mapping[str, Any]) -> schemas.ReservationPage:
    """Read one successful list answer.

    Raises:
        InvalidResponse: no readable page fields, or reservations that are not a list.
    """
    try:
        page = schemas.ReservationPage.model_validate(body)
    except ValidationError as exc:
        raise InvalidResponse(
            f"cellarpass list_reservations: unreadable page: {describe_validation_error(exc)}"
        ) from None
    check_carriable(page.reservations, label="cellarpass list_reservations", error=InvalidResponse)
    return page


def parse_reservation(raw: Any, *, tenant_id: str, index: int = 0) -> ParsedOrder | Ignored:
    """One listed reservation as a canonical order with its issues and rule failures."""
    if not isinstance(raw, Mapping) or not _text(raw.get("reservationId")):
        return Ignored(f"reservation entry {index} has no reservationId")
    try:
        reservation = schemas.Reservation.model_validate(raw)
    except ValidationError as exc:
        reservation_id = _text(raw.get("reservationId"))
        order = order_pb2.Order(
            tenant_id=tenant_id,
            channel=codes.CHANNEL_NAME,
            external_id=reservation_id,
            external_number=reservation_id,
            revision=_text(raw.get("updatedAt")),
        )
        issue = Issue("reservation", f"unreadable: {describe_validation_error(exc)}")
        return ParsedOrder(order, [issue], ack_token=reservation_id)
    return _parse(reservation, tenant_id)


def _parse(reservation: schemas.Reservation, tenant_id: str) -> ParsedOrder:
    issues: list[Issue] = []
    reservation_id = reservation.reservationId.strip()
    order = order_pb2.Order(
        tenant_id=tenant_id,
        channel=codes.CHANNEL_NAME,
        external_id=reservation_id,
        external_number=_text(reservation.bookingCode) or reservation_id,
        revision=_text(reservation.updatedAt),
        order_type=order_pb2.ORDER_TYPE_RESERVATION,
        delivery_method=order_pb2.DELIVERY_METHOD_PICKUP,
        origin=codes.ORIGINS.get(_text(reservation.bookingSource), codes.DEFAULT_ORIGIN),
        currency_code=codes.CURRENCY,
        customer_notes=_text(reservation.guestNotes),
        channel_status=_text(reservation.status),
    )
    if not order.revision:
        issues.append(Issue("updatedAt", "missing"))
    _dates(order, reservation, issues)
    _guest(order, reservation, issues)
    total = _amount(reservation.total, "total", issues)
    balance = _amount(reservation.balanceDue, "balanceDue", issues)
    _lines(order, reservation, total, issues)
    if total is not None:
        order.totals.total.CopyFrom(_money(total))
        order.totals.subtotal.CopyFrom(_money(total))
    order.payment.status = _payment_status(reservation, balance)
    failures = check_import(reservation, total, balance)
    return ParsedOrder(order, issues, ack_token=reservation_id, rule_failures=failures)


def check_import(reservation: schemas.Reservation, total: Decimal | None, balance: Decimal | None) -> list[Issue]:
    """CellarPass's sync rules the reservation fails (empty: it is synced), in this order:
    not synced already, not a ticket order, not cancelled, fully paid or complimentary.

    A reservation CellarPass shows Processed was synced before: by ordersync (its later edits
    reach intake as changes of an order already handed over, which intake locks whatever rule
    they fail) or by CellarPass's own sync before the hub took over, which must never send it
    again (AddOrder has no upsert).
    """
    failures: list[Issue] = []
    if _text(reservation.syncStatus) == codes.SYNC_STATUS_PROCESSED:
        order = f" as VinSuite order {_text(reservation.externalOrderId)}" if _text(reservation.externalOrderId) else ""
        failures.append(
            Issue(
                "syncStatus",
                f"CellarPass shows this reservation synced already{order}: a synced reservation is never sent again",
                code=codes.ALREADY_SYNCED,
            )
        )
    if _text(reservation.orderType).casefold() == codes.ORDER_TYPE_TICKET.casefold():
        failures.append(
            Issue("orderType", "CellarPass ticket orders are never synced to VinSuite", code=codes.TICKET_ORDER)
        )
    if _text(reservation.status) in codes.CANCELLED_STATUSES:
        failures.append(Issue("status", "cancelled reservations are not synced", code=codes.CANCELLED))
    if balance is not None and balance > 0 and not reservation.isComplimentary:
        of = f" of {total:.2f}" if total is not None else ""
        failures.append(
            Issue(
                "balanceDue",
                f"balance due {balance:.2f}{of}: only fully paid or complimentary reservations are synced",
                code=codes.NOT_PAID,
            )
        )
    return failures


def _dates(order: order_pb2.Order, reservation: schemas.Reservation, issues: list[Issue]) -> None:
    booked = _text(reservation.bookedAt)
    if not booked:
        issues.append(Issue("bookedAt", "missing"))
    else:
        try:
            order.placed_time.CopyFrom(convert.to_timestamp(convert.parse_datetime(booked)))
        except (ValueError, OverflowError):
            issues.append(Issue("bookedAt", "not an ISO-8601 date-time"))
    event_date = _text(reservation.eventDate)
    if not event_date:
        issues.append(Issue("eventDate", "missing"))
        return
    try:
        # The event's calendar day: the pickup (or order) date a tenant may choose.
        order.requested_ship_date = convert.parse_date(event_date)
    except ValueError:
        issues.append(Issue("eventDate", "not a date in the form YYYY-MM-DD"))


def _guest(order: order_pb2.Order, reservation: schemas.Reservation, issues: list[Issue]) -> None:
    guest = reservation.guest or schemas.Guest()
    order.customer.CopyFrom(
        order_pb2.Customer(
            first_name=_text(guest.firstName),
            last_name=_text(guest.lastName),
            email=_text(guest.email),
            phone=_text(guest.phone),
        )
    )
    if not (order.customer.first_name or order.customer.last_name):
        issues.append(Issue("guest", "has no name"))
    address = guest.address
    if address is None or not _text(address.address1):
        return
    country = _text(address.country)
    region = convert.country_code(country) if country else "US"  # CellarPass wineries are US ones
    if region is None:
        issues.append(Issue("guest.address.country", "names no country: expected a country's name or ISO code"))
    order.bill_to.CopyFrom(
        postal_address_pb2.PostalAddress(
            first_name=order.customer.first_name,
            last_name=order.customer.last_name,
            address_lines=[t for t in (_text(address.address1), _text(address.address2)) if t],
            locality=_text(address.city),
            administrative_area=_text(address.state),
            postal_code=_text(address.zipCode),
            region_code=region or "",
            phone=order.customer.phone,
        )
    )


def _lines(
    order: order_pb2.Order, reservation: schemas.Reservation, total: Decimal | None, issues: list[Issue]
) -> None:
    sku, event = _text(reservation.eventSku), _text(reservation.eventName)
    if not sku:
        issues.append(
            Issue(
                "eventSku",
                f"event {event or _text(reservation.eventId)!r} has no SKU: "
                "map a SKU/Item Lookup Code to the event in CellarPass",
            )
        )
    guests = reservation.guestCount
    if guests is None or guests < 1:
        issues.append(Issue("guestCount", "not a whole number of at least 1"))
        return
    options = _options(reservation)
    for index, (quantity, price) in enumerate(split_price(total, guests) if total is not None else [(guests, None)]):
        line = order_pb2.OrderLine(
            channel_line_id=f"{reservation.reservationId.strip()}:{index + 1}",
            sku=sku,
            title=event,
            quantity=quantity,
            requires_shipping=False,  # a visit, collected at the winery
            options=options,
        )
        if price is not None:
            line.unit_price.CopyFrom(_money(price))
        order.lines.append(line)


def split_price(total: Decimal, guests: int) -> list[tuple[int, Decimal]]:
    """The total over the guests as (quantity, unit price) lines adding up to the total exactly.

    One line when the total divides into whole cents per guest (120.00 / 3 = 40.00); otherwise
    the guests paying a cent more on a second line (100.00 / 3: 1 x 33.34 and 2 x 33.33), since
    a unit price has no fractions of a cent and the order's total is never changed.
    """
    cents = int((total / CENT).to_integral_value())
    base, rest = divmod(cents, guests)
    unit = Decimal(base) * CENT
    if rest == 0:
        return [(guests, unit)]
    return [(rest, unit + CENT), (guests - rest, unit)]


def _options(reservation: schemas.Reservation) -> list[order_pb2.LineOption]:
    values = [
        (codes.OPTION_EVENT_ID, _text(reservation.eventId)),
        (codes.OPTION_EVENT_START_TIME, _text(reservation.eventStartTime)),
        (codes.OPTION_BOOKING_SOURCE, _text(reservation.bookingSource)),
        *((codes.OPTION_CUSTOMER_TYPE, _text(t)) for t in reservation.customerTypes),
    ]
    return [order_pb2.LineOption(name=name, value=value) for name, value in values if value]


def _payment_status(reservation: schemas.Reservation, balance: Decimal | None) -> str:
    if reservation.isComplimentary:
        return codes.PAYMENT_COMPLIMENTARY
    if balance is not None and balance > 0:
        return codes.PAYMENT_BALANCE_DUE
    return codes.PAYMENT_PAID


def _amount(value: str | None, name: str, issues: list[Issue]) -> Decimal | None:
    text = _text(value)
    if not text:
        issues.append(Issue(name, "missing"))
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        issues.append(Issue(name, "not an amount of at least 0"))
        return None
    if amount != amount.quantize(CENT, rounding=ROUND_DOWN):
        issues.append(Issue(name, "not whole cents"))
        return None
    return amount


def _money(amount: Decimal) -> money_pb2.Money:
    return convert.money(int((amount / CENT).to_integral_value()), codes.CURRENCY)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
