"""Tests of the writeback bodies and read-back checks (pure): build request and parse response."""

from __future__ import annotations

from typing import Any

import pytest
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.errors import InvalidRequest
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.commerce7.fulfillments import (
    build_delivered_update,
    build_shipped_fulfillment,
    build_voided_update,
    order_has_delivery_recorded,
    order_has_fulfillment_with_tracking,
)
from libs.connectors.commerce7.tests.builders import (
    EXPECTED_DELIVERED_BODY,
    EXPECTED_SHIPPED_BODY,
    TRACKING,
    shipment,
    web_ship_order,
)


def test_shipped_fulfillment_body_follows_the_reference() -> None:
    assert build_shipped_fulfillment(shipment(), notify_customer=True) == EXPECTED_SHIPPED_BODY


def test_customer_email_can_be_left_to_someone_else() -> None:
    body = build_shipped_fulfillment(shipment(), notify_customer=False)
    assert body["sendTransactionEmail"] is False


def test_repeated_or_blank_tracking_numbers_are_dropped() -> None:
    body = build_shipped_fulfillment(shipment(tracking_numbers=[TRACKING[0], " ", TRACKING[0]]), notify_customer=True)
    assert body["shipped"]["trackingNumbers"] == [TRACKING[0]]
    assert body["packageCount"] == 1


def test_canonical_carriers_use_commerce7_spelling() -> None:
    body = build_shipped_fulfillment(shipment(carrier="FEDEX"), notify_customer=True)
    assert body["shipped"]["carrier"] == "FedEx"


@pytest.mark.parametrize("changes", [{"tracking_numbers": []}, {"shipped_time": None}, {"carrier": ""}])
def test_a_shipment_missing_what_commerce7_needs_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        build_shipped_fulfillment(shipment(**changes), notify_customer=True)


def test_the_order_read_back_shows_the_fulfillment_with_its_tracking() -> None:
    order = web_ship_order(fulfillments=[load_vendor_json("commerce7", "fulfillment_shipped_response.json")])
    assert order_has_fulfillment_with_tracking(order, TRACKING) is True
    assert order_has_fulfillment_with_tracking(order, [TRACKING[1]]) is True


def test_an_order_without_those_tracking_numbers_needs_the_fulfillment() -> None:
    assert order_has_fulfillment_with_tracking(web_ship_order(), TRACKING) is False
    order = web_ship_order(fulfillments=[load_vendor_json("commerce7", "fulfillment_shipped_response.json")])
    assert order_has_fulfillment_with_tracking(order, ["1Z999AA10000000001"]) is False
    assert order_has_fulfillment_with_tracking(order, []) is False


def test_a_fulfillment_without_shipped_details_does_not_count() -> None:
    carry_out = load_vendor_json("commerce7", "order_pos_carry_out.json")
    assert order_has_fulfillment_with_tracking(carry_out, TRACKING) is False


def test_delivered_update_records_status_and_time_in_metadata() -> None:
    assert build_delivered_update(shipment()) == EXPECTED_DELIVERED_BODY


def test_delivered_update_keeps_other_metadata() -> None:
    body = build_delivered_update(shipment(), existing_meta_data={"giftWrap": "yes"})
    assert body["metaData"]["giftWrap"] == "yes"
    assert body["metaData"]["ordersync-shipping-status"] == "Delivered"


def test_delivered_update_needs_a_delivery_time() -> None:
    with pytest.raises(InvalidRequest):
        build_delivered_update(shipment(delivered_time=None))


def test_an_order_carrying_our_delivery_mark_is_recorded() -> None:
    order = web_ship_order(shippingStatus="Delivered", metaData=EXPECTED_DELIVERED_BODY["metaData"])
    assert order_has_delivery_recorded(order) is True


def test_an_order_without_our_delivery_mark_is_not_recorded() -> None:
    assert order_has_delivery_recorded(web_ship_order()) is False


def test_a_voided_order_is_marked_in_metadata_with_the_reason() -> None:
    cancelled = shipment(status=shipment_pb2.SHIPMENT_STATUS_CANCELLED, cancel_reason="Address undeliverable")
    assert build_voided_update(cancelled, existing_meta_data={"giftWrap": "yes"}) == {
        "metaData": {
            "giftWrap": "yes",
            "ordersync-shipping-status": "Voided",
            "ordersync-void-reason": "Address undeliverable",
        }
    }


def test_only_a_cancelled_shipment_can_be_written_as_voided() -> None:
    with pytest.raises(InvalidRequest):
        build_voided_update(shipment())


def test_shipped_fulfillment_takes_the_carrier_spelling_carrier_mapping_gave():
    body = build_shipped_fulfillment(shipment(carrier="FEDEX"), notify_customer=True, carrier="FedEx Ground")
    assert body["shipped"]["carrier"] == "FedEx Ground"
