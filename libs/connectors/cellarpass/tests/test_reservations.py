"""Reservations -> canonical orders: every field from the vendor sample, the sync rules, bad data."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base import convert
from libs.connectors.base.contract import Ignored, ParsedOrder
from libs.connectors.cellarpass import codes
from libs.connectors.cellarpass.reservations import parse_reservation, split_price
from libs.connectors.cellarpass.tests.builders import reservation


def parse(raw) -> ParsedOrder:
    parsed = parse_reservation(raw, tenant_id="harbour")
    assert isinstance(parsed, ParsedOrder)
    return parsed


def options(line: order_pb2.OrderLine) -> list[tuple[str, str]]:
    return [(o.name, o.value) for o in line.options]


def test_a_paid_web_reservation_becomes_a_pickup_reservation_order_with_one_line_per_guest_price():
    parsed = parse(reservation(0))
    order = parsed.order
    assert parsed.issues == [] and parsed.rule_failures == []
    assert (order.channel, order.tenant_id) == ("cellarpass", "harbour")
    assert (order.external_id, order.external_number) == ("R-10041", "CP7K2M")
    assert order.revision == "2026-12-01T17:02:11.120Z"
    assert order.order_type == order_pb2.ORDER_TYPE_RESERVATION
    assert order.delivery_method == order_pb2.DELIVERY_METHOD_PICKUP
    assert order.origin == order_pb2.ORDER_ORIGIN_WEB
    assert convert.format_iso_millis(order.placed_time) == "2026-11-28T15:40:00.000Z"
    assert order.requested_ship_date == "2026-12-12"
    assert (order.customer.first_name, order.customer.last_name) == ("Dana", "Whitfield")
    assert (order.customer.email, order.customer.phone) == ("dana.whitfield@example.com", "707-555-0142")
    assert list(order.bill_to.address_lines) == ["18 Vine Street"]
    assert (order.bill_to.locality, order.bill_to.administrative_area, order.bill_to.postal_code) == (
        "Napa",
        "CA",
        "94558",
    )
    assert order.bill_to.region_code == "US" and not order.HasField("ship_to")
    (line,) = order.lines
    assert (line.sku, line.title, line.quantity) == ("TAST-EST", "Estate Tasting", 3)
    assert (line.unit_price.minor_units, line.unit_price.currency_code) == (4000, "USD")
    assert options(line) == [
        ("eventId", "EV-220"),
        ("eventStartTime", "14:00"),
        ("bookingSource", "WGT"),
        ("customerType", "Wine Club"),
        ("customerType", "Trade"),
    ]
    assert order.totals.total.minor_units == 12000
    assert order.customer_notes == "Celebrating an anniversary"
    assert order.channel_status == "Paid" and order.payment.status == "Paid"
    assert parsed.ack_token == "R-10041"


def test_a_complimentary_back_office_reservation_is_synced_at_no_charge():
    parsed = parse(reservation(1))
    assert parsed.issues == [] and parsed.rule_failures == []
    assert parsed.order.origin == order_pb2.ORDER_ORIGIN_ADMIN
    assert parsed.order.lines[0].unit_price.minor_units == 0 and parsed.order.totals.total.minor_units == 0
    assert parsed.order.payment.status == "Complimentary"
    assert not parsed.order.HasField("bill_to")


def test_a_reservation_with_a_balance_due_fails_the_paid_rule_with_the_amounts():
    parsed = parse(reservation(2))
    assert parsed.issues == []
    (failure,) = parsed.rule_failures
    assert failure.code == codes.NOT_PAID and failure.field == "balanceDue"
    assert failure.message == "balance due 40.00 of 120.00: only fully paid or complimentary reservations are synced"


def test_a_complimentary_reservation_with_a_balance_shown_is_still_synced():
    parsed = parse(reservation(2, isComplimentary=True))
    assert parsed.rule_failures == []


def test_a_ticket_order_is_never_synced():
    (failure,) = parse(reservation(0, orderType="Ticket")).rule_failures
    assert failure.code == codes.TICKET_ORDER
    assert failure.message == "CellarPass ticket orders are never synced to VinSuite"


def test_a_reservation_cellarpass_shows_synced_already_is_never_sent_again():
    (failure,) = parse(reservation(0, syncStatus="Processed", externalOrderId="84512")).rule_failures
    assert failure.code == codes.ALREADY_SYNCED and failure.field == "syncStatus"
    assert failure.message == (
        "CellarPass shows this reservation synced already as VinSuite order 84512: "
        "a synced reservation is never sent again"
    )
    assert parse(reservation(0, syncStatus="Error")).rule_failures == []


@pytest.mark.parametrize("status", ["Cancelled", "NoShow"])
def test_cancelled_and_no_show_reservations_are_not_synced(status):
    (failure,) = parse(reservation(0, status=status)).rule_failures
    assert failure.code == codes.CANCELLED and failure.message == "cancelled reservations are not synced"


def test_every_failed_rule_is_named_at_once():
    failures = parse(reservation(2, orderType="Ticket", status="Cancelled")).rule_failures
    assert [f.code for f in failures] == [codes.TICKET_ORDER, codes.CANCELLED, codes.NOT_PAID]


def test_an_event_without_a_sku_is_bad_data_telling_what_to_map():
    parsed = parse(reservation(0, eventSku=""))
    (issue,) = parsed.issues
    assert issue.field == "eventSku"
    assert issue.message == "event 'Estate Tasting' has no SKU: map a SKU/Item Lookup Code to the event in CellarPass"


def test_a_total_not_dividing_into_whole_cents_splits_into_two_lines_adding_up_to_it():
    parsed = parse(reservation(0, total="100.00", totalPaid="100.00"))
    assert parsed.issues == []
    lines = [(line.quantity, line.unit_price.minor_units) for line in parsed.order.lines]
    assert lines == [(1, 3334), (2, 3333)]
    assert sum(q * p for q, p in lines) == parsed.order.totals.total.minor_units == 10000
    assert len({line.channel_line_id for line in parsed.order.lines}) == 2


def test_split_price_is_exact():
    assert split_price(Decimal("120.00"), 3) == [(3, Decimal("40.00"))]
    assert split_price(Decimal("0.05"), 4) == [(1, Decimal("0.02")), (3, Decimal("0.01"))]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"guestCount": 0}, "guestCount"),
        ({"total": "12.345"}, "total"),
        ({"total": "lots"}, "total"),
        ({"bookedAt": None}, "bookedAt"),
        ({"bookedAt": "yesterday"}, "bookedAt"),
        ({"eventDate": "12/12/2026"}, "eventDate"),
        ({"updatedAt": None}, "updatedAt"),
    ],
)
def test_bad_data_is_an_issue_naming_the_field(changes, field):
    parsed = parse(reservation(0, **changes))
    assert [issue.field for issue in parsed.issues] == [field]


def test_an_entry_without_reservation_id_is_ignored_and_an_unreadable_one_kept_with_an_issue():
    assert isinstance(parse_reservation({"bookingCode": "X"}, tenant_id="t", index=4), Ignored)
    parsed = parse(reservation(0, guestCount="three"))
    assert parsed.order.external_id == "R-10041" and parsed.issues[0].field == "reservation"
    assert "three" not in parsed.issues[0].message


def test_parsing_is_pure():
    raw = reservation(0)
    assert parse(raw).order == parse(raw).order
