"""Tests of parse_order: Commerce7 order -> canonical Order, and its validation issues."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import order_pb2

from libs.connectors.base.errors import InvalidResponse
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.commerce7 import schemas
from libs.connectors.commerce7.orders import parse_order
from libs.connectors.commerce7.tests.builders import ORDER_ID, TENANT, web_ship_order

ORIGINAL_ID = ORDER_ID


def parse(payload: dict[str, Any]) -> tuple[order_pb2.Order, list[str]]:
    order, issues = parse_order(payload, tenant_id=TENANT)
    return order, [issue.field for issue in issues]


@pytest.mark.parametrize(
    ("sample", "order_type", "delivery", "origin", "linked"),
    [
        (
            "webhook_order_create_web_ship.json",
            order_pb2.ORDER_TYPE_SHIPPING,
            order_pb2.DELIVERY_METHOD_SHIP,
            order_pb2.ORDER_ORIGIN_WEB,
            "",
        ),
        (
            "order_pickup.json",
            order_pb2.ORDER_TYPE_PICKUP,
            order_pb2.DELIVERY_METHOD_PICKUP,
            order_pb2.ORDER_ORIGIN_WEB,
            "",
        ),
        (
            "order_pos_carry_out.json",
            order_pb2.ORDER_TYPE_PICKUP,
            order_pb2.DELIVERY_METHOD_CARRY_OUT,
            order_pb2.ORDER_ORIGIN_POS,
            "",
        ),
        (
            "order_refund.json",
            order_pb2.ORDER_TYPE_REFUND,
            order_pb2.DELIVERY_METHOD_SHIP,
            order_pb2.ORDER_ORIGIN_WEB,
            ORIGINAL_ID,
        ),
        (
            "order_exchange.json",
            order_pb2.ORDER_TYPE_EXCHANGE,
            order_pb2.DELIVERY_METHOD_SHIP,
            order_pb2.ORDER_ORIGIN_ADMIN,
            ORIGINAL_ID,
        ),
        (
            "order_club.json",
            order_pb2.ORDER_TYPE_SHIPPING,
            order_pb2.DELIVERY_METHOD_SHIP,
            order_pb2.ORDER_ORIGIN_CLUB,
            "",
        ),
    ],
)
def test_each_vendor_sample_is_classified_as_the_reference_says(
    sample: str, order_type: int, delivery: int, origin: int, linked: str
) -> None:
    payload = load_vendor_json("commerce7", sample)
    order, issues = parse(payload.get("payload", payload))
    assert (order.order_type, order.delivery_method, order.origin) == (
        order_type,
        delivery,
        origin,
    )
    assert order.linked_order_id == linked
    assert issues == []


def test_web_ship_order_is_normalised_field_by_field() -> None:
    order, issues = parse(web_ship_order())
    assert issues == []
    assert order.tenant_id == TENANT
    assert order.channel == "commerce7"
    assert order.order_id == ""
    assert order.external_id == ORDER_ID
    assert order.external_number == "1001"
    assert order.revision == "2024-05-01T17:03:15.120Z"
    assert order.currency_code == "USD"
    assert order.placed_time == Timestamp(seconds=1714582992)  # 2024-05-01T17:03:12Z
    assert order.payment.status == "Paid"
    assert order.payment.paid_time == Timestamp(seconds=1714582994)
    assert order.customer.customer_id == "0e6f2a4b-7c1d-4e9f-a3b5-d8c2e1f0a9b7"
    assert order.customer.email == "jane.doe@example.com"
    assert order.customer.phone == "707-555-0100"
    assert order.customer.birth_date == "1980-04-12"
    ship_to = order.ship_to
    assert list(ship_to.address_lines) == ["100 Vine Street", "Suite 2"]
    assert (ship_to.locality, ship_to.administrative_area, ship_to.postal_code) == (
        "Napa",
        "CA",
        "94558",
    )
    assert ship_to.region_code == "US"
    assert order.HasField("bill_to")
    method = order.shipping_method
    assert (method.carrier, method.service, method.code, method.title) == (
        "UPS",
        "Ground",
        "03",
        "UPS Ground",
    )
    assert method.price.minor_units == 2499
    assert [(line.sku, line.quantity, line.unit_price.minor_units) for line in order.lines] == [
        ("CAB-2019-750", 2, 4500),
        ("CHARD-2021-750", 1, 2800),
    ]
    first = order.lines[0]
    assert first.channel_line_id == "1a2b3c4d-0001-4e5f-8a9b-0c1d2e3f4a5b"
    assert first.title == "2019 Estate Cabernet Sauvignon"
    assert first.volume_ml == 750
    assert first.requires_shipping is True
    assert order.customer_notes == "Leave with the front desk"
    assert order.gift is False
    assert order.requested_ship_date == ""


def test_totals_are_integer_cents_in_usd() -> None:
    order, _ = parse(web_ship_order())
    totals = order.totals
    assert [
        (m.currency_code, m.minor_units)
        for m in (totals.subtotal, totals.shipping, totals.tax, totals.tip, totals.total)
    ] == [("USD", 11800), ("USD", 2499), ("USD", 1062), ("USD", 0), ("USD", 15361)]
    assert not totals.HasField("discount")


def test_a_currency_in_the_payload_is_used() -> None:
    order, _ = parse(web_ship_order(currencyCode="CAD"))
    assert order.currency_code == "CAD"
    assert order.totals.total.currency_code == "CAD"


def test_refund_order_is_normalised_as_refund() -> None:
    order, issues = parse(load_vendor_json("commerce7", "order_refund.json"))
    assert order.order_type == order_pb2.ORDER_TYPE_REFUND
    assert order.linked_order_id == ORIGINAL_ID
    assert order.totals.total.minor_units == -15361
    # Refund lines carry negative quantities and are never fulfilled: no line issues.
    assert issues == []


def test_refund_order_id_alone_makes_a_refund() -> None:
    order, _ = parse(web_ship_order(purchaseType="Order", refundOrderId="orig-1"))
    assert order.order_type == order_pb2.ORDER_TYPE_REFUND
    assert order.linked_order_id == "orig-1"


def test_previous_order_makes_an_exchange() -> None:
    order, _ = parse(web_ship_order(previousOrderId="orig-1", previousOrderNumber=999))
    assert order.order_type == order_pb2.ORDER_TYPE_EXCHANGE
    assert order.linked_order_id == "orig-1"


def test_previous_order_with_refund_purchase_type_is_a_refund() -> None:
    order, _ = parse(web_ship_order(previousOrderId="orig-1", purchaseType="Refund"))
    assert order.order_type == order_pb2.ORDER_TYPE_REFUND
    assert order.linked_order_id == "orig-1"


def test_pickup_order_has_no_ship_to_and_no_shipping_issues() -> None:
    order, issues = parse(load_vendor_json("commerce7", "order_pickup.json"))
    assert not order.HasField("ship_to")
    assert not order.HasField("shipping_method")
    assert issues == []


def test_carry_out_without_customer_keeps_an_empty_customer() -> None:
    order, _ = parse(load_vendor_json("commerce7", "order_pos_carry_out.json"))
    assert order.customer.email == ""
    assert order.totals.tip.minor_units == 500


def test_club_order_carries_gift_discount_and_requested_ship_date() -> None:
    order, _ = parse(load_vendor_json("commerce7", "order_club.json"))
    assert order.gift is True
    assert order.gift_message == "Happy birthday, Sam!"
    assert [(d.code, d.amount.minor_units) for d in order.discounts] == [("Reserve Club 15%", 1350)]
    assert order.totals.discount.minor_units == 1350
    assert order.requested_ship_date == "2024-06-10"
    assert order.shipping_method.code == "02"
    # The buyer is billed; the gift recipient is shipped to.
    assert order.customer.email == "maria.garcia@example.com"
    assert order.ship_to.first_name == "Sam"
    assert order.ship_to.company == "Lee & Co"
    assert list(order.ship_to.address_lines) == ["8 Harbor Road"]


def test_exchange_order_carries_internal_notes_from_metadata() -> None:
    order, _ = parse(load_vendor_json("commerce7", "order_exchange.json"))
    assert order.internal_notes == "Replacement for a corked bottle"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"metaData": {"requestedShipDate": "2024-05-20"}}, "2024-05-20"),
        ({"requestedShipDate": "2024-05-21T00:00:00.000Z"}, "2024-05-21"),
        (
            {
                "selectedShippingOptions": {"requestedShipDate": "2024-05-22"},
                "metaData": {"requestedShipDate": "2024-05-20"},
            },
            "2024-05-22",
        ),
    ],
)
def test_requested_ship_date_is_read_from_the_documented_places(changes: dict[str, Any], expected: str) -> None:
    order, issues = parse(web_ship_order(**changes))
    assert order.requested_ship_date == expected
    assert issues == []


def _without_ship_to_field(name: str) -> dict[str, Any]:
    order = web_ship_order()
    order["shipTo"][name] = None
    return order


def _with_item_field(name: str, value: Any) -> dict[str, Any]:
    order = web_ship_order()
    order["items"][1][name] = value
    return order


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (web_ship_order(id=None), "id"),
        (web_ship_order(orderNumber=None), "orderNumber"),
        (web_ship_order(updatedAt=None), "updatedAt"),
        (web_ship_order(updatedAt="last tuesday"), "updatedAt"),
        (web_ship_order(shipTo=None), "shipTo"),
        (_without_ship_to_field("stateCode"), "shipTo.stateCode"),
        (_without_ship_to_field("zipCode"), "shipTo.zipCode"),
        (web_ship_order(items=[]), "items"),
        (_with_item_field("sku", None), "items[1].sku"),
        (_with_item_field("quantity", 0), "items[1].quantity"),
        (web_ship_order(shipping=[]), "shipping"),
        (web_ship_order(orderDeliveryMethod="Drone"), "orderDeliveryMethod"),
        (web_ship_order(orderSubmittedDate="05/01/2024"), "orderSubmittedDate"),
        (web_ship_order(orderPaidDate="soon"), "orderPaidDate"),
        (web_ship_order(metaData={"requestedShipDate": "next week"}), "metaData.requestedShipDate"),
    ],
)
def test_one_broken_field_gives_one_issue_and_the_order_is_still_returned(payload: dict[str, Any], field: str) -> None:
    order, issues = parse(payload)
    assert issues == [field]
    assert order.channel == "commerce7"


def test_issue_messages_never_repeat_the_value() -> None:
    payload = web_ship_order()
    payload["customer"]["birthDate"] = "born 12 April 1980"
    _, issues = parse_order(payload, tenant_id=TENANT)
    assert [(i.field, i.message) for i in issues] == [("customer.birthDate", "not a YYYY-MM-DD date")]


def test_a_payload_that_is_not_shaped_like_an_order_raises() -> None:
    with pytest.raises(InvalidResponse, match="items"):
        parse_order(web_ship_order(items={"sku": "x"}), tenant_id=TENANT)


def test_a_validated_order_model_is_accepted() -> None:
    model = schemas.Order.model_validate(web_ship_order())
    order, issues = parse_order(model, tenant_id=TENANT)
    assert order.external_number == "1001"
    assert issues == []


def test_vendor_models_ignore_unknown_fields_but_refuse_misspelt_reads() -> None:
    model = schemas.Order.model_validate(web_ship_order(brandNewField=1))
    with pytest.raises(AttributeError):
        _ = model.orderNumbr  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        model.orderNumber = 2  # type: ignore[misc]


def test_null_lists_in_a_payload_read_as_empty():
    from libs.connectors.commerce7.schemas import Order

    order = Order.model_validate({"id": "o1", "promotions": None, "tags": None})
    assert order.promotions == [] and order.tags == []


def test_numbers_too_large_for_the_canonical_order_are_issues_naming_the_field() -> None:
    payload = web_ship_order(total=2**63, subTotal=-(2**63) - 1)
    payload["items"][0]["quantity"] = 2**31
    payload["items"][1]["price"] = 10**30
    payload["items"][1]["volumeInMl"] = 1e300
    payload["shipping"][0]["price"] = 2**64
    order, issues = parse_order(payload, tenant_id=TENANT)
    assert [(i.field, i.message) for i in issues] == [
        ("items[0].quantity", "number out of range"),
        ("items[1].price", "amount out of range"),
        ("items[1].volumeInMl", "number out of range"),
        ("shipping[0].price", "amount out of range"),
        ("subTotal", "amount out of range"),
        ("total", "amount out of range"),
    ]
    assert order.lines[0].quantity == 0 and not order.lines[1].HasField("unit_price")
    order.SerializeToString()  # the order that is returned is a valid message


def test_the_largest_numbers_the_canonical_order_holds_are_taken() -> None:
    payload = web_ship_order(total=2**63 - 1)
    payload["items"][0]["quantity"] = 2**31 - 1
    order, issues = parse_order(payload, tenant_id=TENANT)
    assert issues == []
    assert (order.totals.total.minor_units, order.lines[0].quantity) == (2**63 - 1, 2**31 - 1)


def test_a_date_at_the_edge_of_the_calendar_is_an_issue_not_a_crash() -> None:
    payload = web_ship_order(orderPaidDate="0001-01-01T00:00:00+05:00", updatedAt="9999-12-31T23:00:00-05:00")
    _, issues = parse_order(payload, tenant_id=TENANT)
    assert [(i.field, i.message) for i in issues] == [
        ("updatedAt", "not an ISO-8601 date-time"),
        ("orderPaidDate", "not an ISO-8601 date-time"),
    ]


def test_a_payload_holding_text_no_store_can_keep_raises_naming_where() -> None:
    payload = web_ship_order()
    payload["shipTo"]["city"] = "Na\ud800pa"
    with pytest.raises(InvalidResponse) as caught:
        parse_order(payload, tenant_id=TENANT)
    assert caught.value.message == (
        "commerce7 payload is not an order: shipTo.city holds a lone UTF-16 surrogate, which is not valid Unicode"
    )
