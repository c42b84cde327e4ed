"""get_orders entries -> canonical orders: dates, mapping, grouping, issues (expected values from
the CommerceInterface v4 reference and the vendor/ sample)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import Ignored, ParsedOrder
from libs.connectors.base.errors import InvalidResponse
from libs.connectors.groupon.orders import (
    build_get_orders_params,
    build_orders,
    format_filter_datetime,
    parse_ci_datetime,
    parse_page,
)
from libs.connectors.groupon.tests.builders import entry_with, line, sample_entry, sample_page


def parse(*entries) -> list[ParsedOrder | Ignored]:
    return build_orders(list(entries), tenant_id="harbour", currency="GBP")


def orders(*entries) -> list[ParsedOrder]:
    parsed = parse(*entries)
    assert all(isinstance(p, ParsedOrder) for p in parsed)
    return [p for p in parsed if isinstance(p, ParsedOrder)]


def only(*entries) -> ParsedOrder:
    (parsed,) = parse(*entries)
    assert isinstance(parsed, ParsedOrder)
    return parsed


# ---- dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08/10/2021 07:40PM UTC", datetime(2021, 8, 10, 19, 40, tzinfo=UTC)),
        ("08/10/2021 07:40AM UTC", datetime(2021, 8, 10, 7, 40, tzinfo=UTC)),
        ("08/10/2021 12:05AM UTC", datetime(2021, 8, 10, 0, 5, tzinfo=UTC)),  # just after midnight
        ("08/10/2021 12:05PM UTC", datetime(2021, 8, 10, 12, 5, tzinfo=UTC)),  # just after noon
        ("08/10/2021 11:59PM UTC", datetime(2021, 8, 10, 23, 59, tzinfo=UTC)),
        ("12/31/2021 01:00AM UTC", datetime(2021, 12, 31, 1, 0, tzinfo=UTC)),
    ],
)
def test_output_dates_are_read_exactly_with_twelve_oclock_on_the_right_side_of_the_day(text, expected):
    assert parse_ci_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "08/10/2021 00:40AM UTC",  # no hour 00 on a 12-hour clock
        "08/10/2021 13:40PM UTC",
        "08/10/2021 07:40 PM UTC",
        "08/10/2021 07:40PM",
        "08/10/2021 07:40PM GMT",
        "8/10/2021 07:40PM UTC",
        "2021-08-10T19:40:00Z",
        "02/30/2021 07:40PM UTC",  # no such day
        "",
    ],
)
def test_anything_else_is_not_a_date(text):
    with pytest.raises(ValueError):
        parse_ci_datetime(text)


def test_filters_are_written_in_24_hour_time_in_utc():
    assert format_filter_datetime(datetime(2021, 8, 10, 19, 40, tzinfo=UTC)) == "08/10/2021 19:40"
    params = build_get_orders_params(
        2, start=datetime(2021, 8, 1, 0, 0, tzinfo=UTC), end=datetime(2021, 8, 2, 12, 30, tzinfo=UTC)
    )
    assert params == {"page": "2", "start_datetime": "08/01/2021 00:00", "end_datetime": "08/02/2021 12:30"}
    assert build_get_orders_params(1) == {"page": "1"}


# ---- the sample order


def test_the_sample_order_maps_to_the_canonical_order():
    parsed = only(sample_entry())
    order = parsed.order
    assert parsed.issues == []
    assert (order.channel, order.tenant_id, order.external_id, order.external_number) == (
        "groupon",
        "harbour",
        "FFB7A681BE",
        "FFB7A681BE",
    )
    assert order.placed_time.ToDatetime(tzinfo=UTC) == datetime(2021, 8, 10, 19, 40, tzinfo=UTC)
    assert order.revision == "2021-08-10T19:40:00.000Z"
    assert order.order_type == order_pb2.ORDER_TYPE_SHIPPING and order.origin == order_pb2.ORDER_ORIGIN_MARKETPLACE
    assert (order.customer.first_name, order.customer.last_name, order.customer.phone) == (
        "Jane",
        "Q Doe",
        "0117 496 0000",
    )
    ship_to = order.ship_to
    assert list(ship_to.address_lines) == ["12 Harbour Street", "Flat 3"]
    assert (ship_to.locality, ship_to.administrative_area, ship_to.postal_code, ship_to.region_code) == (
        "Bristol",
        "Avon",
        "BS1 4DJ",
        "GB",
    )
    assert order.totals.total.minor_units == 5497 and order.totals.total.currency_code == "GBP"
    assert order.totals.shipping.minor_units == 499 and order.shipping_method.price.minor_units == 499
    assert (order.shipping_method.carrier, order.shipping_method.service, order.shipping_method.code) == (
        "RYM",
        "Standard",
        "RYM",
    )
    assert order.gift and order.gift_message == "Happy birthday!"
    assert order.requested_ship_date == "2021-08-13"
    assert order.channel_status == "open"
    assert json.loads(parsed.ack_token) == ["54553920", "54553921"]


def test_lines_carry_the_suppliers_sku_and_keep_groupons_as_an_option():
    first, second = only(sample_entry()).order.lines
    assert (first.channel_line_id, first.sku, first.title, first.quantity, first.unit_price.minor_units) == (
        "54553920",
        "TEE-BLK-M",  # bom_sku: what the warehouse knows
        "Organic Tee, Black, M",
        2,
        1499,
    )
    assert {o.name: o.value for o in first.options} == {
        "groupon_sku": "GRP-TEE-BLK-M",
        "fulfillment_lineitem_id": "c1a0f6a2-6d52-4b1e-9a55-3f0e0b9c1d01",
        "po_number": "PO-88120",
    }
    assert second.sku == "GRP-MUG-01"  # no bom_sku: Groupon's sku
    assert first.requires_shipping


def test_numbers_as_strings_and_strings_as_numbers_read_the_same():
    as_numbers = sample_entry(amount={"total": 54.97, "shipping": 4.99})
    as_numbers["line_items"][0].update(quantity="2", unit_price=14.99, ci_lineitemid="54553920")
    assert only(as_numbers).order == only(sample_entry()).order


# ---- grouping


def test_entries_of_one_order_from_several_pages_make_one_order_with_every_line_sorted():
    parsed = orders(entry_with("A", 3, 1), entry_with("B", 4), entry_with("A", 2))
    assert [p.order.external_id for p in parsed] == ["A", "B"]
    assert [line.channel_line_id for line in parsed[0].order.lines] == ["1", "2", "3"]
    assert json.loads(parsed[0].ack_token) == ["1", "2", "3"]


def test_the_same_listing_in_another_page_order_parses_to_equal_orders():
    one = orders(entry_with("A", 1, 2), entry_with("A", 3))
    other = orders(entry_with("A", 3), entry_with("A", 2, 1))
    assert one[0].order == other[0].order and one[0].ack_token == other[0].ack_token


def test_an_entry_without_orderid_is_ignored():
    parsed = parse(sample_entry(orderid=None), sample_entry(orderid=""))
    assert all(isinstance(p, Ignored) and "orderid" in p.reason for p in parsed)


def test_statuses_of_the_lines_are_the_channel_status():
    entry = sample_entry(line_items=[line(1, status="open"), line(2, status="cancelled"), line(3, status="open")])
    assert only(entry).order.channel_status == "open, cancelled"


# ---- bad data is named


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"date": "2021-08-10 19:40"}, "date"),
        ({"date": None}, "date"),
        ({"customer": {"name": "A B", "address1": "1 Road", "country": "Atlantis"}}, "customer.country"),
        ({"customer": {"name": "A B", "country": "GB"}}, "customer.address1"),
        ({"amount": {"total": "12.345"}}, "amount.total"),
        ({"amount": {"total": "lots"}}, "amount.total"),
        ({"line_items": []}, "line_items"),
        ({"line_items": [line(7, quantity=0)]}, "line_items[7].quantity"),
        ({"line_items": [line(7, quantity="1.5")]}, "line_items[7].quantity"),
        ({"line_items": [line(7, sku="", bom_sku="")]}, "line_items[7].sku"),
        ({"line_items": [line(7, unit_price="abc")]}, "line_items[7].unit_price"),
        ({"line_items": [line(7, ship_by_date="soon")]}, "line_items[7].ship_by_date"),
        ({"line_items": [line(7, ci_lineitemid=None)]}, "line_items[?].ci_lineitemid"),
        ({"line_items": "not a list"}, "data"),
    ],
)
def test_bad_data_is_an_issue_naming_the_field(changes, field):
    parsed = only(sample_entry(**changes))
    assert field in [issue.field for issue in parsed.issues]
    assert parsed.order.external_id == "FFB7A681BE"


def test_an_unreadable_date_keeps_its_text_as_the_revision():
    assert only(sample_entry(date="yesterday")).order.revision == "yesterday"


# ---- the page


def test_a_page_without_meta_or_with_data_not_a_list_is_an_invalid_response():
    for body in ({"success": True, "data": []}, {**sample_page(), "data": {}}):
        with pytest.raises(InvalidResponse):
            parse_page(body)


def test_a_page_holding_text_no_store_can_keep_is_an_invalid_response():
    body = sample_page()
    body["data"][0]["customer"]["name"] = "a\x00b"
    with pytest.raises(InvalidResponse):
        parse_page(body)
