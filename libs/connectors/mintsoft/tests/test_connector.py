"""The Mintsoft connector on recorded HTTP: submit, callbacks, notices, polling, cancel, products."""

from __future__ import annotations

import json

import pytest
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.contract import CatalogProduct, NoticeHead, PushRequest, Submitted
from libs.connectors.base.errors import Conflict, InvalidRequest, InvalidWebhook, Rejected, UnknownProduct
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json, request_json, vendor_bytes
from libs.connectors.mintsoft.connector import CONNECTOR
from libs.connectors.mintsoft.settings import MintsoftSettings
from libs.connectors.mintsoft.tests.builders import (
    API_KEY,
    CALLBACK_TOKEN,
    ORDER_NUMBER,
    account,
    client,
    submission,
    valid_order,
)

AUTH = json_response(200, API_KEY)
STATUSES = load_vendor_json("mintsoft", "order_statuses.json")
CALLBACK_URL = f"https://hub.example.test/webhooks/mintsoft/tenant-a/{CALLBACK_TOKEN}"


def order_row(status_id: int = 1, **changes) -> dict:
    row = load_vendor_json("mintsoft", "order_despatched.json")
    row.update({"OrderStatusId": status_id, **changes})
    return row


async def submit(recorder: RequestRecorder, item=None, settings=None):
    async with client(recorder.transport) as ms:
        [result] = await CONNECTOR.submit(ms, settings or account(), [item or submission()])
    return result


@pytest.mark.asyncio
async def test_an_order_is_created_with_its_mapped_items_and_kept_line_ids_then_callbacks_registered():
    recorder = RequestRecorder(
        AUTH,
        json_response(200, load_vendor_json("mintsoft", "create_order_success.json")),
        json_response(200, {"ID": 48213, "Success": True, "Message": ""}),
    )
    result = await submit(recorder)
    assert isinstance(result, Submitted)
    assert "GR-1001 (order id 48213)" in result.activity and "callbacks registered" in result.activity
    _, create, actions = recorder.requests
    assert (create.method, create.url.path) == ("PUT", "/api/Order")
    body = request_json(create)
    assert body["OrderNumber"] == "GR-1001" and body["ExternalOrderReference"] == "dispatch-7a1c0b2e9f"
    assert (body["Country"], body["Town"], body["PostCode"], body["CourierService"]) == (
        "GB",
        "Leeds",
        "LS1 4AP",
        "AUTO",
    )
    assert (body["Address1"], body["Address2"]) == ("10 High Street", "Flat 2")
    assert body["OrderItems"] == [
        {"SKU": "WH-RED-750", "Quantity": 2, "Details": "54553918"},
        {"SKU": "WH-GLASS", "Quantity": 2, "Details": "54553919"},
        {"SKU": "WH-BOX", "Quantity": 1, "Details": "54553919"},
    ]
    # The channel's line ids with the channel's quantities (the bundle is one line of one).
    [kept] = body["OrderNameValues"]
    assert kept["Name"] == "ci_lineitem_ids" and json.loads(kept["Value"]) == {"54553918": 2, "54553919": 1}
    assert (actions.method, actions.url.path) == ("PUT", "/api/Order/48213/ConnectActions")
    assert request_json(actions) == {
        "Type": "API",
        "SourceOrderId": "FFB7A681BE",
        "Complete": False,
        "ExtraCode1": CALLBACK_URL,
        "ExtraCode2": CALLBACK_URL,
    }


@pytest.mark.asyncio
async def test_without_mapped_items_the_orders_own_lines_are_sent():
    recorder = RequestRecorder(AUTH, json_response(200, load_vendor_json("mintsoft", "create_order_success.json")))
    result = await submit(recorder, submission(items=()), account(callback_base_url="", callback_token=""))
    assert isinstance(result, Submitted) and "found by polling" in result.activity
    body = request_json(recorder.requests[1])
    assert [(i["SKU"], i["Quantity"]) for i in body["OrderItems"]] == [("GRP-RED", 2), ("GRP-SET", 1)]


@pytest.mark.asyncio
async def test_the_route_warehouse_overrides_the_accounts_and_the_client_id_is_sent():
    settings = account(warehouse_id=3, api=MintsoftSettings("u", "p", base_url="https://m.test/api/", client_id=12))
    recorder = RequestRecorder(
        AUTH,
        json_response(200, load_vendor_json("mintsoft", "create_order_success.json")),
        json_response(200, {"Success": True}),
    )
    await submit(recorder, submission(options={"warehouse_id": "9"}), settings)
    body = request_json(recorder.requests[1])
    assert (body["WarehouseId"], body["ClientId"]) == (9, 12)


@pytest.mark.asyncio
async def test_a_duplicate_answer_is_recognised_as_already_there():
    recorder = RequestRecorder(
        AUTH,
        json_response(200, load_vendor_json("mintsoft", "create_order_duplicate.json")),
        json_response(200, [order_row(1)]),
        json_response(200, {"Success": True}),
    )
    result = await submit(recorder)
    assert isinstance(result, Submitted) and "already in Mintsoft as GR-1001 (order id 48213)" in result.activity
    assert recorder.requests[2].url.path == "/api/Order/Search"


@pytest.mark.asyncio
async def test_an_unknown_sku_fails_the_order_naming_the_sku():
    recorder = RequestRecorder(AUTH, json_response(200, load_vendor_json("mintsoft", "create_order_unknown_sku.json")))
    result = await submit(recorder)
    assert isinstance(result, UnknownProduct)
    assert result.reason_code == "UNKNOWN_SKU" and not result.retryable and "WH-GLASS" in result.message


@pytest.mark.asyncio
async def test_a_refused_row_in_a_200_is_rejected_with_mintsofts_message():
    row = {"OrderId": 0, "OrderNumber": ORDER_NUMBER, "Success": False, "Message": "Invalid Country"}
    result = await submit(RequestRecorder(AUTH, json_response(200, [row])))
    assert isinstance(result, Rejected) and not isinstance(result, UnknownProduct)
    assert "Invalid Country" in result.message and not result.retryable


@pytest.mark.asyncio
async def test_an_order_without_a_country_is_refused_before_any_request():
    order = valid_order()
    order.ship_to.region_code = ""
    recorder = RequestRecorder(AUTH)
    result = await submit(recorder, submission(order=order))
    assert isinstance(result, InvalidRequest) and "country" in result.message


@pytest.mark.asyncio
async def test_a_5xx_on_create_is_retryable_and_a_retry_that_may_exist_finds_the_order():
    first = await submit(RequestRecorder(AUTH, json_response(503, {})))
    assert not isinstance(first, Submitted) and first.retryable
    recorder = RequestRecorder(AUTH, json_response(200, [order_row(1)]), json_response(200, {"Success": True}))
    result = await submit(recorder, submission(may_exist=True))
    assert isinstance(result, Submitted) and "after an interrupted attempt" in result.activity
    assert [r.method for r in recorder.requests] == ["POST", "GET", "PUT"]  # no second create


@pytest.mark.asyncio
async def test_a_failed_callback_registration_does_not_fail_the_submit():
    recorder = RequestRecorder(
        AUTH,
        json_response(200, load_vendor_json("mintsoft", "create_order_success.json")),
        json_response(403, {"Message": "Missing AdminEditOrder permission"}),
    )
    result = await submit(recorder)
    assert isinstance(result, Submitted)
    assert "could not be registered (UNAUTHORIZED)" in result.activity and "polling" in result.activity


def test_notices_authenticate_by_the_callback_token_only():
    settings = account()
    assert CONNECTOR.authenticate_notice(settings, PushRequest({}, CALLBACK_TOKEN))
    assert not CONNECTOR.authenticate_notice(settings, PushRequest({}, CALLBACK_TOKEN + "x"))
    assert not CONNECTOR.authenticate_notice(account(callback_token=""), PushRequest({}, ""))


def test_a_callback_parses_into_its_order_number_and_id():
    head = CONNECTOR.parse_notice(vendor_bytes("mintsoft", "order_despatched.json"))
    assert (head.order_number, head.reference) == ("GR-1001", "48213")


@pytest.mark.parametrize("body", [b"{}", b'{"ID": "x", "OrderNumber": "1"}', b'{"ID": 1}', b"[1]", b"nope"])
def test_a_malformed_callback_is_invalid(body: bytes):
    with pytest.raises(InvalidWebhook):
        CONNECTOR.parse_notice(body)


@pytest.mark.asyncio
async def test_a_callback_is_believed_only_after_re_reading_the_order():
    # The body claims despatch; Mintsoft's own answer is what counts.
    head = CONNECTOR.parse_notice(vendor_bytes("mintsoft", "order_despatched.json"))
    recorder = RequestRecorder(AUTH, json_response(200, order_row(4)), json_response(200, STATUSES))
    async with client(recorder.transport) as ms:
        [notice] = await CONNECTOR.resolve_notice(ms, account(), head)
    assert recorder.requests[1].url.path == "/api/Order/48213"
    shipment = notice.shipment
    assert notice.order_number == "GR-1001" and shipment is not None
    assert shipment.status == shipment_pb2.SHIPMENT_STATUS_SHIPPED
    assert list(shipment.tracking_numbers) == ["RM123456785GB"]
    assert shipment.service_code == "Royal Mail Tracked 48"
    assert shipment.shipped_time.ToJsonString() == "2024-05-02T14:31:07Z"
    assert [(i.channel_line_id, i.quantity) for i in shipment.items] == [("54553918", 2), ("54553919", 1)]


@pytest.mark.asyncio
async def test_a_forged_despatch_of_an_order_still_new_gives_no_shipment():
    head = CONNECTOR.parse_notice(vendor_bytes("mintsoft", "order_despatched.json"))
    recorder = RequestRecorder(
        AUTH, json_response(200, order_row(1, TrackingNumber=None)), json_response(200, STATUSES)
    )
    async with client(recorder.transport) as ms:
        [notice] = await CONNECTOR.resolve_notice(ms, account(), head)
    assert notice.shipment is None


@pytest.mark.asyncio
async def test_a_callback_naming_another_order_number_is_refused():
    recorder = RequestRecorder(AUTH, json_response(200, order_row(4, OrderNumber="GR-9999")))
    async with client(recorder.transport) as ms:
        with pytest.raises(InvalidWebhook):
            await CONNECTOR.resolve_notice(ms, account(), NoticeHead("GR-1001", "callback", reference="48213"))


@pytest.mark.asyncio
async def test_a_cancelled_order_reads_back_cancelled():
    recorder = RequestRecorder(
        AUTH, json_response(200, [order_row(5)]), json_response(200, order_row(5)), json_response(200, STATUSES)
    )
    async with client(recorder.transport) as ms:
        notice = await CONNECTOR.read_back(ms, account(), ORDER_NUMBER)
    assert notice is not None and notice.shipment is not None
    assert notice.shipment.status == shipment_pb2.SHIPMENT_STATUS_CANCELLED


@pytest.mark.asyncio
async def test_read_back_of_an_unknown_order_is_none():
    async with client(RequestRecorder(AUTH, json_response(200, [])).transport) as ms:
        assert await CONNECTOR.read_back(ms, account(), "GR-404") is None


def page_of(count: int, stamp: str, start: int = 1, status_id: int = 1) -> list[dict]:
    return [order_row(status_id, ID=start + i, OrderNumber=f"GR-{start + i}", LastUpdated=stamp) for i in range(count)]


@pytest.mark.asyncio
async def test_polling_asks_from_a_second_before_the_watermark_and_never_moves_it_back():
    rows = page_of(2, "2024-05-02T14:31:09", status_id=4) + page_of(1, "2024-05-02T14:31:08", start=10)
    recorder = RequestRecorder(AUTH, json_response(200, rows), json_response(200, STATUSES))
    async with client(recorder.transport) as ms:
        page = await CONNECTOR.read_back_since(ms, account(), "2024-05-02T14:31:09|1|")
    params = recorder.requests[1].url.params
    assert params["SinceLastUpdated"] == "2024-05-02T14:31:08" and params["IncludeOrderItems"] == "true"
    assert (params["PageNo"], params["Limit"]) == ("1", "100")
    assert [n.order_number for n in page.notices] == ["GR-1", "GR-2"]  # the despatched ones
    assert page.next_cursor == "2024-05-02T14:31:09|1|" and not page.more


@pytest.mark.asyncio
async def test_a_full_page_of_orders_updated_in_one_second_is_followed_by_the_next_page():
    stamp = "2024-05-02T14:31:09"
    recorder = RequestRecorder(
        AUTH,
        json_response(200, page_of(100, stamp)),
        json_response(200, STATUSES),
        json_response(200, page_of(100, stamp, start=101)),
        json_response(200, page_of(3, "2024-05-02T14:31:10", start=201, status_id=4)),
    )
    async with client(recorder.transport) as ms:
        first = await CONNECTOR.read_back_since(ms, account(), f"{stamp}|1|")
        assert first.more and first.next_cursor == f"{stamp}|2|{stamp}"
        second = await CONNECTOR.read_back_since(ms, account(), first.next_cursor)
        assert second.more and second.next_cursor == f"{stamp}|3|{stamp}"
        third = await CONNECTOR.read_back_since(ms, account(), second.next_cursor)
    assert [r.url.params["PageNo"] for r in recorder.requests if r.url.path == "/api/Order/List"] == ["1", "2", "3"]
    assert len(third.notices) == 3 and not third.more
    assert third.next_cursor == "2024-05-02T14:31:10|1|"


@pytest.mark.asyncio
async def test_a_full_sorted_page_past_the_watermark_moves_it_and_starts_again_at_page_one():
    rows = page_of(99, "2024-05-02T14:00:00") + page_of(1, "2024-05-02T15:00:00", start=100)
    recorder = RequestRecorder(AUTH, json_response(200, rows), json_response(200, STATUSES))
    async with client(recorder.transport) as ms:
        page = await CONNECTOR.read_back_since(ms, account(), "")
    assert recorder.requests[1].url.params["SinceLastUpdated"] == "1999-12-31T23:59:59"
    assert page.more and page.next_cursor == "2024-05-02T15:00:00|1|2024-05-02T15:00:00"


@pytest.mark.asyncio
async def test_cancel_uses_the_generic_result_and_a_refusal_is_a_conflict():
    ok = RequestRecorder(
        AUTH,
        json_response(200, [order_row(1)]),
        json_response(200, STATUSES),
        json_response(200, {"ID": 48213, "Success": True}),
    )
    async with client(ok.transport) as ms:
        await CONNECTOR.cancel(ms, account(), ORDER_NUMBER, "customer asked")
    assert ok.last.url.path == "/api/Order/48213/Cancel" and ok.last.method == "GET"
    refused = RequestRecorder(
        AUTH,
        json_response(200, [order_row(4)]),
        json_response(200, STATUSES),
        json_response(200, {"ID": 48213, "Success": False, "Message": "Order already despatched"}),
    )
    async with client(refused.transport) as ms:
        with pytest.raises(Conflict, match="already despatched"):
            await CONNECTOR.cancel(ms, account(), ORDER_NUMBER, "customer asked")


@pytest.mark.asyncio
async def test_cancelling_a_cancelled_order_sends_nothing_more():
    recorder = RequestRecorder(AUTH, json_response(200, [order_row(5)]), json_response(200, STATUSES))
    async with client(recorder.transport) as ms:
        await CONNECTOR.cancel(ms, account(), ORDER_NUMBER, "again")
    assert len(recorder.requests) == 3


@pytest.mark.asyncio
async def test_products_are_listed_over_every_page_and_created_unless_the_sku_exists():
    first = [{"ID": i, "SKU": f"SKU-{i}", "Name": f"P{i}"} for i in range(100)]
    recorder = RequestRecorder(
        AUTH,
        json_response(200, first),
        json_response(200, [{"ID": 100, "SKU": "SKU-100", "Name": "Last"}]),
        json_response(200, {"ProductId": 5, "SKU": "NEW", "Success": True}),
        json_response(200, {"ProductId": 0, "SKU": "SKU-1", "Success": False, "Message": "SKU already exists"}),
    )
    async with client(recorder.transport) as ms:
        products = await CONNECTOR.list_products(ms, account())
        assert len(products) == 101 and products[-1] == CatalogProduct("SKU-100", "Last")
        assert await CONNECTOR.create_product(ms, account(), CatalogProduct("NEW", "New thing")) is True
        assert await CONNECTOR.create_product(ms, account(), CatalogProduct("SKU-1", "Again")) is False
    assert [r.url.params.get("PageNo") for r in recorder.requests[1:3]] == ["1", "2"]
    assert request_json(recorder.requests[3]) == {"SKU": "NEW", "Name": "New thing", "Weight": 0}


@pytest.mark.asyncio
async def test_a_plain_400_answer_to_a_create_is_a_refusal_with_its_message():
    result = await submit(RequestRecorder(AUTH, json_response(400, {"Message": "The request is invalid."})))
    assert isinstance(result, Rejected) and "The request is invalid." in result.message


@pytest.mark.asyncio
async def test_a_429_on_create_is_waited_out_and_the_order_sent_once():
    recorder = RequestRecorder(
        AUTH,
        json_response(429, {"Message": "Too many requests"}, headers={"Retry-After": "1"}),
        json_response(200, load_vendor_json("mintsoft", "create_order_success.json")),
        json_response(200, {"Success": True}),
    )
    result = await submit(recorder)
    assert isinstance(result, Submitted)
    assert [r.method for r in recorder.requests] == ["POST", "PUT", "PUT", "PUT"]
    assert [r.url.path for r in recorder.requests[1:3]] == ["/api/Order", "/api/Order"]
