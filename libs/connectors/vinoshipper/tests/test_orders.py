"""Tests of the create-order request (build) and of create/compliance responses (parse)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base.errors import InvalidRequest, InvalidResponse
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.vinoshipper.orders import (
    build_create_order_request,
    parse_compliance_response,
    parse_create_order_response,
    provider_order_number,
)
from libs.connectors.vinoshipper.tests.builders import ORDER_NUMBER, SOURCE_URL, usd, valid_order


def build(order: order_pb2.Order | None = None, rate_code: str = "03") -> dict[str, Any]:
    return build_create_order_request(
        order or valid_order(), order_number=ORDER_NUMBER, rate_code=rate_code, source_url=SOURCE_URL
    )


def test_create_request_matches_the_reference_shape() -> None:
    assert build() == load_vendor_json("vinoshipper", "create_order_request.json")


def test_money_is_sent_as_exact_two_place_dollars() -> None:
    wire = json.dumps(build(valid_order(totals={"shipping": usd(2499), "total": usd(2999)})))
    body = json.loads(wire, parse_float=Decimal)
    assert body["shippingPrice"] == Decimal("24.99")
    assert body["totalPrice"] == Decimal("29.99")
    assert '"shippingPrice": 24.99' in wire


@pytest.mark.parametrize(("cents", "dollars"), [(1, "0.01"), (10, "0.1"), (1999999, "19999.99"), (29, "0.29")])
def test_cents_convert_without_float_drift(cents: int, dollars: str) -> None:
    body = json.loads(json.dumps(build(valid_order(totals={"tax": usd(cents)}))), parse_float=Decimal)
    assert body["tax"] == Decimal(dollars)


def test_the_channel_has_charged_and_emails_the_customer() -> None:
    body = build()
    assert body["isPaid"] is True
    assert body["suppressCustomerEmails"] is True


def test_only_lines_that_ship_become_products_by_sku() -> None:
    body = build()
    assert body["productIdType"] == "SKU"
    assert [p["productId"] for p in body["products"]] == ["CAB-2019-750", "CHARD-2021-750"]


def test_requested_ship_date_is_passed_and_flagged_in_the_instructions() -> None:
    body = build()
    assert body["requestedShipDate"] == "2024-05-06"
    assert body["specialInstructions"].splitlines()[0] == "Requested ship date: 2024-05-06"


def test_an_order_without_notes_or_date_has_no_instructions() -> None:
    body = build(valid_order(requested_ship_date="", customer_notes=""))
    assert "requestedShipDate" not in body
    assert "specialInstructions" not in body


def test_a_gift_message_travels_in_the_instructions() -> None:
    body = build(valid_order(gift=True, gift_message="Happy birthday!", requested_ship_date=""))
    assert body["specialInstructions"] == "Leave with the front desk\nGift message: Happy birthday!"


@pytest.mark.parametrize("rate_code", ["01", "02", "03", "12"])
def test_each_ups_rate_code_is_sent_with_carrier_ups(rate_code: str) -> None:
    assert build(rate_code=rate_code)["shippingRate"] == {"carrier": "UPS", "rateCode": rate_code}


@pytest.mark.parametrize(
    "order",
    [
        valid_order(ship_to=None),
        valid_order(currency_code="CAD"),
        valid_order(lines=[order_pb2.OrderLine(sku="FEE", quantity=1, requires_shipping=False)]),
        valid_order(lines=[order_pb2.OrderLine(sku="", quantity=1, requires_shipping=True)]),
        valid_order(lines=[order_pb2.OrderLine(sku="CAB-2019-750", quantity=0, requires_shipping=True)]),
    ],
    ids=["no ship-to", "not USD", "nothing ships", "line without SKU", "quantity 0"],
)
def test_an_order_vinoshipper_cannot_take_is_refused(order: order_pb2.Order) -> None:
    with pytest.raises(InvalidRequest):
        build(order)


def test_an_unknown_rate_code_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="rate code"):
        build(rate_code="07")


def test_a_gift_recipient_is_shipped_to_while_the_buyer_is_the_customer() -> None:
    recipient = valid_order().ship_to
    recipient.first_name, recipient.administrative_area = "Sam", "OR"
    del recipient.address_lines[1:]
    body = build(valid_order(ship_to=recipient))
    assert body["shipToAddress"]["firstName"] == "Sam"
    assert body["shipToAddress"]["stateCode"] == "OR"
    assert "street2" not in body["shipToAddress"]
    assert body["customer"]["firstName"] == "Jane"
    assert body["customer"]["address"]["stateCode"] == "CA"


def test_phone_numbers_are_sent_as_national_digits() -> None:
    recipient = valid_order().ship_to
    recipient.phone = "+1 (707) 555-0100"
    body = build(valid_order(ship_to=recipient))
    assert body["shipToAddress"]["phone"] == {"number": "7075550100", "country": 1}


def test_the_provider_order_number_is_the_tenant_prefix_and_the_channel_number() -> None:
    assert provider_order_number("C7-napa", valid_order()) == "C7-napa-1001"
    with pytest.raises(InvalidRequest):
        provider_order_number("C7-napa", valid_order(external_number=""))


def test_the_create_response_gives_the_order_number() -> None:
    detail = load_vendor_json("vinoshipper", "order_detail_pending.json")
    assert parse_create_order_response(detail) == "C7-napa-1001"


def test_a_create_response_without_order_number_is_invalid() -> None:
    with pytest.raises(InvalidResponse):
        parse_create_order_response({"status": "PENDING"})


def test_a_compliant_check_has_no_problems() -> None:
    assert parse_compliance_response(load_vendor_json("vinoshipper", "compliance_check_compliant.json")) == []


def test_compliance_problems_are_listed() -> None:
    body = load_vendor_json("vinoshipper", "error_not_compliant.json")
    assert parse_compliance_response(body) == [
        "Producer is not licensed to ship to UT",
        "Order exceeds the annual volume limit for this customer",
    ]


def test_not_compliant_without_a_reason_is_still_a_problem() -> None:
    assert parse_compliance_response({"isCompliant": False, "orderProblems": []}) != []


def test_problem_objects_are_read_by_their_message() -> None:
    body = {"isCompliant": False, "orderProblems": [{"code": "AGE", "message": "Customer is under 21"}]}
    assert parse_compliance_response(body) == ["Customer is under 21"]
