"""Tests of parse_order_detail: Vinoshipper order detail -> canonical Shipment."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.errors import InvalidResponse
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.vinoshipper.shipments import parse_order_detail

TRACKING = ["1Z999AA10123456784", "1Z999AA10123456795"]
SHIPPED_AT = Timestamp(seconds=1714760400)  # 2024-05-03T18:20:00Z
DELIVERED_AT = Timestamp(seconds=1715115930)  # 2024-05-07T21:05:30Z


def detail(sample: str = "shipped", **changes: Any) -> dict[str, Any]:
    """A recorded order detail (default: shipped with two packages); changes replace fields."""
    body = load_vendor_json("vinoshipper", f"order_detail_{sample}.json")
    body.update(changes)
    return body


def test_a_pending_order_has_nothing_to_report() -> None:
    assert parse_order_detail(detail("pending")) is None


def test_a_label_without_a_carrier_scan_is_fulfilled() -> None:
    shipment = parse_order_detail(detail("fulfilled"))
    assert shipment is not None
    assert shipment.status == shipment_pb2.SHIPMENT_STATUS_FULFILLED
    assert list(shipment.tracking_numbers) == [TRACKING[0]]
    assert not shipment.HasField("shipped_time")


def test_shipped_at_with_tracking_is_shipped_by_ups_ground() -> None:
    shipment = parse_order_detail(detail("shipped"))
    assert shipment == shipment_pb2.Shipment(
        status=shipment_pb2.SHIPMENT_STATUS_SHIPPED,
        tracking_numbers=TRACKING,
        carrier="UPS",
        service="UPS_GROUND",
        service_code="03",
        shipped_time=SHIPPED_AT,
    )


def test_delivered_at_makes_it_delivered() -> None:
    shipment = parse_order_detail(detail("delivered"))
    assert shipment is not None
    assert shipment.status == shipment_pb2.SHIPMENT_STATUS_DELIVERED
    assert shipment.delivered_time == DELIVERED_AT
    assert shipment.shipped_time == SHIPPED_AT
    assert list(shipment.tracking_numbers) == TRACKING


def test_canceled_at_makes_it_cancelled_with_the_reason() -> None:
    shipment = parse_order_detail(detail("cancelled"))
    assert shipment is not None
    assert shipment.status == shipment_pb2.SHIPMENT_STATUS_CANCELLED
    assert shipment.cancel_reason == "Customer changed the delivery address"


def test_cancelled_wins_over_delivered() -> None:
    shipment = parse_order_detail(detail("delivered", canceledAt="2024-05-08T00:00:00Z"))
    assert shipment is not None
    assert shipment.status == shipment_pb2.SHIPMENT_STATUS_CANCELLED


def test_shipped_at_without_any_tracking_number_is_not_yet_shipped() -> None:
    body = detail("shipped", status="PENDING")
    for package in body["shipping"]["packages"]:
        package["trackingNumber"] = None
    assert parse_order_detail(body) is None


@pytest.mark.parametrize(
    ("rate_code", "service"),
    [
        ("01", "UPS_NEXT_DAY_AIR"),
        ("02", "UPS_2ND_DAY_AIR"),
        ("03", "UPS_GROUND"),
        ("12", "UPS_3_DAY_SELECT"),
        ("99", ""),
    ],
)
def test_the_rate_code_gives_the_canonical_service(rate_code: str, service: str) -> None:
    body = detail("shipped")
    body["shipping"]["rateCode"] = rate_code
    shipment = parse_order_detail(body)
    assert shipment is not None
    assert shipment.service == service


def test_repeated_and_blank_tracking_numbers_are_dropped() -> None:
    body = detail("shipped")
    body["shipping"]["packages"] += [{"trackingNumber": TRACKING[0]}, {"trackingNumber": " "}]
    shipment = parse_order_detail(body)
    assert shipment is not None
    assert list(shipment.tracking_numbers) == TRACKING


def test_an_unreadable_timestamp_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponse, match="shippedAt"):
        parse_order_detail(detail("shipped", shippedAt="Friday"))


def test_a_detail_of_the_wrong_shape_is_an_invalid_response() -> None:
    with pytest.raises(InvalidResponse):
        parse_order_detail(detail("shipped", shipping=["not", "an", "object"]))


def test_a_detail_holding_text_no_store_can_keep_is_refused_naming_where() -> None:
    with pytest.raises(InvalidResponse) as caught:
        parse_order_detail(detail("cancelled", cancelReason="out\u0000of stock"))
    assert caught.value.message == (
        "vinoshipper order detail: cancelReason holds a NUL character (\\u0000), which cannot be stored"
    )


def test_a_timestamp_at_the_edge_of_the_calendar_is_refused_not_a_crash() -> None:
    with pytest.raises(InvalidResponse, match="shippedAt is not an ISO-8601 date-time"):
        parse_order_detail(detail("shipped", shippedAt="0001-01-01T00:00:00+01:00"))
