"""Push mode on a RequestRecorder: the fields carried, the status mapping, voided labels, polling."""

from __future__ import annotations

import pytest
from ordersync.common.v1 import order_pb2, shipment_pb2

from libs.connectors.base.contract import Submission, Submitted
from libs.connectors.base.testing import RequestRecorder, json_response, request_json
from libs.connectors.shipstation import codes
from libs.connectors.shipstation.connector import CONNECTOR
from libs.connectors.shipstation.errors import OrderRejected
from libs.connectors.shipstation.tests.builders import account, client, usd, valid_order

pytestmark = pytest.mark.timeout(10)


def label(shipment_id: int, number: str, created: str, tracking: str, *, voided: bool = False) -> dict:
    return {
        "shipmentId": shipment_id,
        "orderId": 1,
        "orderKey": f"key-{number}",
        "orderNumber": number,
        "createDate": created,
        "shipDate": "2024-05-02",
        "shipmentCost": 9.54,
        "trackingNumber": tracking,
        "carrierCode": "ups",
        "serviceCode": "ups_ground",
        "voided": voided,
        "shipmentItems": [],
    }


def created_all(*numbers: str) -> dict:
    results = [
        {"orderId": i + 1, "orderNumber": n, "orderKey": f"key-{n}", "success": True, "errorMessage": None}
        for i, n in enumerate(numbers)
    ]
    return {"hasErrors": False, "results": results}


def full_order() -> order_pb2.Order:
    order = valid_order("2001")
    order.customer.phone = "707-555-0199"
    order.payment.method = "Credit Card"
    order.payment.paid_time.FromSeconds(1714557600)
    order.discounts.add(code="SPRING10", amount=usd(1000))
    order.total_weight_grams = 3100
    line = order.lines[0]
    line.image_url = "https://img.example.com/cab.jpg"
    line.stock_location = "Aisle 4 / Bin 12"
    line.options.add(name="Size", value="750ml")
    line.options.add(name="Colour", value="Red")
    order.channel_status = "Fully Picked"
    return order


@pytest.mark.asyncio
async def test_every_field_the_shipper_needs_is_carried_to_shipstation():
    recorder = RequestRecorder(json_response(200, created_all("2001")))
    async with client(recorder) as ss:
        (result,) = await CONNECTOR.submit(ss, account(), [Submission(full_order(), "2001", "key-2001")])
    assert isinstance(result, Submitted)
    (sent,) = request_json(recorder.last)
    assert sent["orderStatus"] == "awaiting_shipment"  # "Fully Picked" by the default mapping
    assert sent["customerEmail"] == "jane.doe@example.com"
    assert sent["shipTo"]["phone"] == "707-555-0100"  # the address's own phone first
    assert sent["paymentMethod"] == "Credit Card" and sent["paymentDate"].startswith("2024-05-01T10:00:00")
    assert sent["requestedShippingService"] == "USPS Priority"  # the method chosen at checkout
    assert sent["gift"] is True and sent["giftMessage"] == "Happy birthday"
    assert sent["internalNotes"] == "VIP" and sent["customerNotes"] == "Leave at the door"
    assert sent["weight"] == {"value": 3100, "units": "grams"}  # the channel's total, not the lines' sum
    wine, discount = sent["items"]
    assert wine["imageUrl"] == "https://img.example.com/cab.jpg"
    assert wine["warehouseLocation"] == "Aisle 4 / Bin 12"
    assert wine["options"] == [{"name": "Size", "value": "750ml"}, {"name": "Colour", "value": "Red"}]
    assert wine["weight"] == {"value": 1400, "units": "grams"}
    assert discount == {
        "lineItemKey": "discount-0",
        "name": "Discount SPRING10",
        "quantity": 1,
        "unitPrice": -10.0,
        "adjustment": True,
    }
    assert sent["advancedOptions"]["customField2"] == "Discounts: SPRING10"


@pytest.mark.asyncio
async def test_channel_statuses_go_as_the_accounts_mapping_says_and_an_unmapped_one_fails_alone():
    mapping = codes.validate_status_mapping({"awaiting_shipment": "Ready To Ship"})
    settings = account(status_mapping=tuple(mapping.items()))
    ready, unknown, new = valid_order("3001"), valid_order("3002"), valid_order("3003")
    ready.channel_status, unknown.channel_status, new.channel_status = "ready to ship", "Backordered", "New"
    recorder = RequestRecorder(json_response(200, created_all("3001", "3003")))
    batch = [Submission(o, o.external_number, f"key-{o.external_number}") for o in (ready, unknown, new)]
    async with client(recorder) as ss:
        results = await CONNECTOR.submit(ss, settings, batch)

    assert len(recorder.requests) == 1
    assert [(o["orderNumber"], o["orderStatus"]) for o in request_json(recorder.last)] == [
        ("3001", "awaiting_shipment"),
        ("3003", "awaiting_payment"),
    ]
    assert isinstance(results[0], Submitted) and isinstance(results[2], Submitted)
    failed = results[1]
    assert isinstance(failed, codes.UnmappedStatus) and not failed.retryable
    assert failed.reason_code == "UNMAPPED_STATUS"
    assert "'Backordered'" in failed.message and "status_<shipstation status> = 'Backordered'" in failed.message


def test_on_hold_is_refused_as_unsupported_in_both_directions():
    with pytest.raises(codes.UnmappedStatus, match="On Hold is not supported"):
        codes.shipstation_status(codes.DEFAULT_STATUS_MAPPING, "On Hold")
    with pytest.raises(ValueError, match="On Hold is not supported"):
        codes.validate_status_mapping({"on_hold": "Parked"})


@pytest.mark.asyncio
async def test_a_failed_item_of_a_200_answer_fails_that_order_with_shipstations_message():
    answer = created_all("4001", "4003")
    answer["hasErrors"] = True
    answer["results"].insert(
        1,
        {"orderId": 0, "orderNumber": "4002", "orderKey": "key-4002", "success": False, "errorMessage": "Bad zip."},
    )
    recorder = RequestRecorder(json_response(200, answer))
    batch = [Submission(valid_order(n), n, f"key-{n}") for n in ("4001", "4002", "4003")]
    async with client(recorder) as ss:
        results = await CONNECTOR.submit(ss, account(), batch)
    assert isinstance(results[0], Submitted) and isinstance(results[2], Submitted)
    assert isinstance(results[1], OrderRejected) and not results[1].retryable
    assert results[1].message == "ShipStation refused order 4002: Bad zip."


@pytest.mark.asyncio
async def test_a_voided_label_is_carried_as_voided_and_never_as_tracking():
    labels = [
        label(1, "5001", "2024-05-02T09:00:00.0000000", "1Z-VOIDED", voided=True),
        label(2, "5001", "2024-05-02T10:00:00.0000000", "1Z-LIVE"),
    ]
    recorder = RequestRecorder(json_response(200, {"shipments": labels, "total": 2, "page": 1, "pages": 1}))
    async with client(recorder) as ss:
        notice = await CONNECTOR.read_back(ss, account(), "5001")
    assert notice is not None and notice.shipment is not None
    assert notice.shipment.status == shipment_pb2.SHIPMENT_STATUS_SHIPPED
    assert list(notice.shipment.tracking_numbers) == ["1Z-LIVE"]
    assert list(notice.shipment.voided_tracking_numbers) == ["1Z-VOIDED"]


@pytest.mark.asyncio
async def test_polling_lists_labels_after_the_watermark_one_notice_per_order():
    page = {
        "shipments": [
            label(1, "6001", "2024-05-02T09:00:00.0000000", "T-1"),
            label(2, "6002", "2024-05-02T09:05:00.0000000", "T-2"),
            label(3, "6001", "2024-05-02T09:10:00.0000000", "T-3"),
        ],
        "total": 1200,
        "page": 1,
        "pages": 3,
    }
    recorder = RequestRecorder(json_response(200, page))
    async with client(recorder) as ss:
        polled = await CONNECTOR.read_back_since(ss, account(), "2024-05-02T08:00:00.0000000")

    params = recorder.last.url.params
    assert recorder.last.url.path == "/shipments"
    assert params["createDateStart"] == "2024-05-02T08:00:00.0000000"
    assert (params["sortBy"], params["sortDir"], params["pageSize"]) == ("CreateDate", "ASC", "500")
    assert params["includeShipmentItems"] == "true"
    by_number = {n.order_number: n for n in polled.notices}
    assert list(by_number) == ["6001", "6002"]
    assert by_number["6001"].shipment is not None and list(by_number["6001"].shipment.tracking_numbers) == [
        "T-1",
        "T-3",
    ]
    assert polled.next_cursor == "2024-05-02T09:10:00.0000000" and polled.more


@pytest.mark.asyncio
async def test_polling_from_the_start_asks_no_date_and_an_empty_page_keeps_the_watermark():
    recorder = RequestRecorder(
        json_response(200, {"shipments": [], "total": 0, "page": 1, "pages": 0}),
        json_response(200, {"shipments": [], "total": 0, "page": 1, "pages": 0}),
    )
    async with client(recorder) as ss:
        first = await CONNECTOR.read_back_since(ss, account(), "")
        assert "createDateStart" not in recorder.last.url.params
        later = await CONNECTOR.read_back_since(ss, account(), "2024-05-02T09:00:00.0000000")
    assert (first.notices, first.next_cursor, first.more) == ([], "", False)
    assert (later.next_cursor, later.more) == ("2024-05-02T09:00:00.0000000", False)


def test_a_batch_notice_names_no_order_and_one_by_number_names_it():
    batch = CONNECTOR.parse_notice(
        b'{"resource_url": "https://ssapi.shipstation.com/shipments?batchId=9", "resource_type": "SHIP_NOTIFY"}'
    )
    one = CONNECTOR.parse_notice(
        b'{"resource_url": "https://ssapi.shipstation.com/shipments?orderNumber=77", "resource_type": "SHIP_NOTIFY"}'
    )
    assert (batch.order_number, batch.reference.endswith("batchId=9")) == ("", True)
    assert one.order_number == "77"
