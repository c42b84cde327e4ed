"""Listing sales orders: the request built, sent (RequestRecorder), its answer parsed, errors."""

from __future__ import annotations

import httpx
import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base.errors import InvalidResponse, NotFound, RateLimited, Unauthorized
from libs.connectors.base.testing import FakeClock, RequestRecorder, json_response, load_vendor_json
from libs.connectors.cin7 import codes
from libs.connectors.cin7.cursor import Cursor
from libs.connectors.cin7.orders import build_list_params, parse_list_response, parse_order
from libs.connectors.cin7.tests.builders import AUTHORIZATION, client, connector, context, sales_order

pytestmark = pytest.mark.asyncio


def parsed(**changes):
    result = parse_order(sales_order(**changes), tenant_id="harbour", context=context())
    return result.order, result.issues


def rule_failures(**changes):
    return parse_order(sales_order(**changes), tenant_id="harbour", context=context()).rule_failures


# ---- build


async def test_list_params_trim_fields_and_filter_on_the_watermark():
    params = build_list_params(Cursor("2024-05-01T00:00:00Z"), page_size=250)
    assert params == {
        "fields": ",".join(codes.ORDER_FIELDS),
        "where": "ModifiedDate>='2024-05-01T00:00:00Z'",
        "order": "ModifiedDate ASC",
        "page": "1",
        "rows": "250",
    }
    assert "lineItems" in params["fields"] and "billingCompany" in params["fields"]


async def test_list_params_walk_one_instant_by_id_and_then_move_past_it():
    walk = build_list_params(Cursor("2024-05-01T00:00:00Z", after_id=17), page_size=10)
    assert walk["where"] == "ModifiedDate='2024-05-01T00:00:00Z' AND Id>17" and walk["order"] == "Id ASC"
    past = build_list_params(Cursor("2024-05-01T00:00:00Z", past=True), page_size=10)
    assert past["where"] == "ModifiedDate>'2024-05-01T00:00:00Z'"


# ---- send


async def test_list_sends_basic_auth_and_the_query():
    recorder = RequestRecorder(json_response(200, [sales_order()]))
    async with client(recorder.transport) as cin7:
        body = await cin7.list_sales_orders({"where": "ModifiedDate>='2024-05-01T00:00:00Z'", "rows": "5"})
    request = recorder.last
    assert request.method == "GET" and request.url.path == "/api/v1/SalesOrders"
    assert request.headers["Authorization"] == AUTHORIZATION
    assert request.url.params["where"] == "ModifiedDate>='2024-05-01T00:00:00Z'"
    assert body[0]["id"] == 41872


async def test_429_is_retried_after_retry_after():
    clock = FakeClock()
    recorder = RequestRecorder(
        json_response(429, {"message": "Rate exceeded"}, headers={"Retry-After": "2"}), json_response(200, [])
    )
    async with client(recorder.transport, clock) as cin7:
        assert await cin7.list_sales_orders({}) == []
    assert len(recorder.requests) == 2 and sum(clock.sleeps) >= 2.0


@pytest.mark.parametrize(
    ("status", "error"), [(401, Unauthorized), (403, Unauthorized), (404, NotFound), (400, Exception)]
)
async def test_errors_map_by_status_and_never_echo_credentials(status, error):
    recorder = RequestRecorder(json_response(status, load_vendor_json("cin7", "error_unauthorized.json")))
    async with client(recorder.transport) as cin7:
        with pytest.raises(error) as raised:
            await cin7.get_sales_order("41872")
    assert f"HTTP {status}" in str(raised.value) and "k3y-value" not in str(raised.value)
    assert not raised.value.retryable


async def test_429_after_every_attempt_is_retryable():
    recorder = RequestRecorder(*[json_response(429, {"message": "Rate exceeded"}) for _ in range(4)])
    async with client(recorder.transport) as cin7:
        with pytest.raises(RateLimited) as raised:
            await cin7.list_sales_orders({})
    assert raised.value.retryable


async def test_a_body_that_is_not_json_is_an_invalid_response():
    recorder = RequestRecorder(httpx.Response(200, text="<html>"))
    async with client(recorder.transport) as cin7:
        with pytest.raises(InvalidResponse):
            await cin7.list_sales_orders({})


# ---- parse


async def test_the_sample_normalises_into_the_canonical_order():
    order, issues = parsed()
    assert issues == []
    assert (order.tenant_id, order.channel, order.external_id, order.external_number) == (
        "harbour",
        "cin7",
        "41872",
        "SO-10482",
    )
    assert order.revision == "2024-05-02T16:40:00.000Z"
    assert order.order_type == order_pb2.ORDER_TYPE_SHIPPING
    assert order.delivery_method == order_pb2.DELIVERY_METHOD_SHIP
    assert order.customer.email == "mere@harbourbistro.example"
    assert order.customer.phone == "+1 415 555 0142"  # phone empty: the mobile
    assert order.ship_to.address_lines == ["200 Embarcadero", "Suite 4"]
    assert (order.ship_to.locality, order.ship_to.administrative_area, order.ship_to.postal_code) == (
        "San Francisco",
        "CA",
        "94111",
    )
    assert order.ship_to.region_code == "US" and order.ship_to.phone == "+1 415 555 0142"
    assert order.bill_to.address_lines == ["PO Box 77"]
    assert [(line.sku, line.quantity, line.unit_price.minor_units) for line in order.lines] == [
        ("CAB-750", 6, 3500),
        ("CHARD-750", 4, 2250),
    ]  # the zero-quantity note line is dropped
    assert order.lines[0].channel_line_id == "90011"
    assert order.shipping_method.title == "UPS Ground"
    assert order.totals.shipping.minor_units == 1250 and order.totals.total.minor_units == 31250
    assert order.currency_code == "USD" and order.requested_ship_date == "2024-05-06"
    assert order.customer_notes == "Use the loading dock" and order.internal_notes == "Deliver before 11am"
    assert order.placed_time.seconds == 1714554900


async def test_partly_shipped_lines_send_what_is_left():
    order, issues = parsed(lineItems=[{"id": 1, "code": "CAB-750", "qty": 6, "qtyShipped": 2, "unitPrice": 35}])
    assert issues == [] and [line.quantity for line in order.lines] == [4]


async def test_an_order_failing_rules_is_kept_with_a_coded_rule_failure_per_rule():
    order, issues = parsed(stage="New", status="Draft")
    assert order.external_id == "41872" and issues == []
    failures = rule_failures(stage="New", status="Draft")
    assert [(f.field, f.code) for f in failures] == [("status", "NOT_APPROVED"), ("stage", "NOT_FULLY_PICKED")]
    assert all(f.code not in f.message for f in failures)


async def test_bad_data_and_rule_failures_are_told_apart():
    result = parse_order(sales_order(stage="New", reference=""), tenant_id="harbour", context=context())
    assert [i.field for i in result.issues] == ["reference"]
    assert [f.code for f in result.rule_failures] == ["NOT_FULLY_PICKED"]


async def test_the_fields_shipstation_shows_are_carried():
    lines = [
        {"id": 1, "code": "CAB-750", "qty": 6, "unitPrice": 35, "option1": "Red", "option2": "Magnum"},
        {"id": 2, "code": "NOTE", "qty": 0, "unitPrice": 0, "option1": "Hidden"},
    ]
    result = parse_order(
        sales_order(lineItems=lines, discountTotal=5.5, voucherCode="SPRING10", discountDescription="Spring sale"),
        tenant_id="harbour",
        context=context(),
        option_names=("Colour", "Size"),
    )
    order = result.order
    assert order.channel_status == "Fully Picked"
    assert len(order.lines) == 1  # the zero-quantity line is not sent
    line = order.lines[0]
    assert [(o.name, o.value) for o in line.options] == [("Colour", "Red"), ("Size", "Magnum")]
    assert line.stock_location == "branch 2"
    assert [(d.code, d.amount.minor_units) for d in order.discounts] == [("SPRING10", 550)]
    assert order.totals.discount.minor_units == 550
    assert order.customer.email == "mere@harbourbistro.example" and order.customer.phone == "+1 415 555 0142"
    assert order.shipping_method.title == "UPS Ground"
    assert order.internal_notes == "Deliver before 11am" and order.customer_notes == "Use the loading dock"


async def test_no_discount_without_an_amount_or_a_code():
    order, _ = parsed(discountTotal=0, voucherCode="", discountDescription="")
    assert list(order.discounts) == [] and not order.totals.HasField("discount")
    order, _ = parsed(discountTotal=None)
    assert list(order.discounts) == []


async def test_data_problems_are_issues_without_values():
    order, issues = parsed(
        reference="",
        modifiedDate="yesterday",
        lineItems=[{"id": 1, "code": "", "qty": 1.5, "unitPrice": 1}],
    )
    fields = [issue.field for issue in issues]
    assert {"reference", "modifiedDate", "lineItems[0].qty", "lineItems[0].code"} <= set(fields)
    assert all("yesterday" not in issue.message for issue in issues)
    assert order.revision == "yesterday"  # still a key to deduplicate on


@pytest.mark.parametrize(
    ("typed", "code"),
    [("US", "US"), ("us", "US"), ("USA", "US"), ("Canada", "CA"), ("New Zealand", "NZ"), ("UK", "GB")],
)
async def test_the_delivery_country_as_staff_type_it_becomes_its_iso_code(typed, code):
    order, issues = parsed(deliveryCountry=typed, billingCountry=typed)
    assert (order.ship_to.region_code, order.bill_to.region_code, issues) == (code, code, [])


async def test_a_delivery_country_naming_no_country_is_bad_data_not_a_guess():
    order, issues = parsed(deliveryCountry="Narnia")
    assert order.ship_to.region_code == ""
    assert [issue.field for issue in issues] == ["deliveryCountry"]
    assert "Narnia" not in issues[0].message


async def test_parsing_is_pure():
    assert parsed() == parsed()


# ---- parse error


@pytest.mark.parametrize("body", [{}, None, "x", [1], [{"id": "41872"}], [{"id": True}], [{"reference": "x"}]])
async def test_a_list_answer_that_is_not_an_array_of_orders_raises(body):
    with pytest.raises(InvalidResponse):
        parse_list_response(body)


@pytest.mark.parametrize("changes", [{"lineItems": "none"}, {"id": "abc"}, {"status": "\u0000"}])
async def test_a_payload_that_is_not_a_sales_order_raises(changes):
    with pytest.raises(InvalidResponse) as raised:
        parsed(**changes)
    assert not raised.value.retryable


async def test_option_names_are_a_setting_of_at_most_three_names():
    section = {"username": "u", "api_key": "env:CIN7_KEY", "option_names": ["Colour", "Size"]}
    settings = connector().parse_settings(section, lambda ref, where: "k", "tenant 'h' [accounts.cin7]")
    assert settings.option_names == ("Colour", "Size")
    assert connector().parse_settings({"username": "u", "api_key": "env:K"}, lambda r, w: "k", "w").option_names == (
        "Option 1",
        "Option 2",
        "Option 3",
    )
    with pytest.raises(ValueError, match="option_names: must be a list of at most 3"):
        connector().parse_settings({**section, "option_names": ["a", "b", "c", "d"]}, lambda r, w: "k", "w")
