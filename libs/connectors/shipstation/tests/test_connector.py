"""ShipStation operations on a RequestRecorder, with values from the v1 reference and vendor/ samples."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from xml.etree import ElementTree

import httpx
import pytest
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.contract import (
    ExportedOrder,
    ExportPage,
    ExportStatus,
    Notice,
    NoticeHead,
    PullAction,
    PullRequest,
    PushRequest,
    Submission,
    Submitted,
)
from libs.connectors.base.errors import InvalidRequest, InvalidWebhook, Timeout, Unavailable
from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.base.testing import (
    FakeClock,
    RequestRecorder,
    json_response,
    load_vendor_json,
    request_json,
    vendor_bytes,
)
from libs.connectors.shipstation import codes, customstore
from libs.connectors.shipstation.connector import CONNECTOR
from libs.connectors.shipstation.errors import OrderRejected
from libs.connectors.shipstation.tests.builders import AUTHORIZATION, BASE_URL, account, client, valid_order

pytestmark = pytest.mark.timeout(10)

HEADERS_OK = {"X-Rate-Limit-Limit": "40", "X-Rate-Limit-Remaining": "39", "X-Rate-Limit-Reset": "59"}


def item(number: str, key: str, *, may_exist: bool = False) -> Submission:
    return Submission(valid_order(number), number, key, may_exist=may_exist)


@pytest.mark.asyncio
async def test_submit_sends_one_bulk_call_and_maps_each_result_to_its_order():
    recorder = RequestRecorder(
        json_response(200, load_vendor_json("shipstation", "create_orders_partial.json"), headers=HEADERS_OK)
    )
    async with client(recorder) as ss:
        results = await CONNECTOR.submit(ss, account(), [item("1001", "dispatch-aaa"), item("1002", "dispatch-bbb")])

    assert len(recorder.requests) == 1
    sent = recorder.last
    assert sent.method == "POST" and sent.url.path == "/orders/createorders"
    assert sent.headers["Authorization"] == AUTHORIZATION
    body = request_json(sent)
    assert [o["orderKey"] for o in body] == ["dispatch-aaa", "dispatch-bbb"]
    first = body[0]
    assert first["orderNumber"] == "1001" and first["orderStatus"] == "awaiting_shipment"
    assert first["shipTo"]["street1"] == "100 Vine Street" and first["shipTo"]["country"] == "US"
    assert [i["sku"] for i in first["items"]] == ["CAB-750"]  # the tasting fee does not ship
    assert first["items"][0]["unitPrice"] == 45.0 and first["amountPaid"] == 105.0
    assert first["weight"] == {"value": 2800, "units": "grams"}
    assert first["gift"] is True and first["giftMessage"] == "Happy birthday"
    assert first["internalNotes"] == "VIP" and first["customerNotes"] == "Leave at the door"

    assert isinstance(results[0], Submitted) and "123456789" in results[0].activity
    assert isinstance(results[1], OrderRejected) and not results[1].retryable
    assert "The shipTo.country field is invalid." in results[1].message


@pytest.mark.asyncio
async def test_an_order_that_cannot_be_built_fails_alone_and_the_rest_are_sent():
    broken = valid_order("1003")
    broken.ClearField("ship_to")
    answer = {"hasErrors": False, "results": [{"orderId": 1, "orderNumber": "1001", "orderKey": "k1", "success": True}]}
    recorder = RequestRecorder(json_response(200, answer))
    async with client(recorder) as ss:
        results = await CONNECTOR.submit(ss, account(), [Submission(broken, "1003", "k3"), item("1001", "k1")])
    assert isinstance(results[0], InvalidRequest) and isinstance(results[1], Submitted)
    assert [o["orderKey"] for o in request_json(recorder.last)] == ["k1"]


@pytest.mark.asyncio
async def test_a_result_missing_from_the_answer_is_a_failure_never_a_success():
    answer = {"hasErrors": False, "results": [{"orderId": 1, "orderNumber": "1001", "orderKey": "k1", "success": True}]}
    recorder = RequestRecorder(json_response(200, answer))
    async with client(recorder) as ss:
        results = await CONNECTOR.submit(ss, account(), [item("1001", "k1"), item("1002", "k2")])
    assert isinstance(results[0], Submitted) and isinstance(results[1], OrderRejected)


@pytest.mark.asyncio
async def test_a_refused_upsert_of_an_order_that_may_exist_is_found_there():
    answer = {"results": [{"orderNumber": "1001", "orderKey": "k1", "success": False, "errorMessage": "shipped"}]}
    recorder = RequestRecorder(
        json_response(200, answer),
        json_response(200, {"orders": [{"orderNumber": "1001", "orderStatus": "shipped"}], "page": 1, "pages": 1}),
    )
    async with client(recorder) as ss:
        results = await CONNECTOR.submit(ss, account(), [item("1001", "k1", may_exist=True)])
    assert isinstance(results[0], Submitted) and "already at ShipStation" in results[0].activity


@pytest.mark.asyncio
async def test_a_whole_call_5xx_is_retried_then_raised_as_retryable():
    recorder = RequestRecorder(*[json_response(503) for _ in range(4)])
    async with client(recorder) as ss:
        with pytest.raises(Unavailable) as raised:
            await CONNECTOR.submit(ss, account(), [item("1001", "k1")])
    assert raised.value.retryable and len(recorder.requests) == 4


@pytest.mark.asyncio
async def test_a_timeout_of_the_whole_call_raises():
    recorder = RequestRecorder(*[httpx.ReadTimeout] * 4)
    async with client(recorder) as ss:
        with pytest.raises(Timeout) as raised:
            await CONNECTOR.submit(ss, account(), [item("1001", "k1")])
    assert raised.value.retryable and len(recorder.requests) == 4  # an upsert is safe to repeat


@pytest.mark.asyncio
async def test_a_spent_window_pauses_every_caller_until_the_reset():
    clock = FakeClock()
    spent = {"X-Rate-Limit-Limit": "40", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "17"}
    empty = {"shipments": [], "page": 1, "pages": 0}
    recorder = RequestRecorder(json_response(200, empty, headers=spent), json_response(200, empty, headers=HEADERS_OK))
    async with client(recorder, clock) as ss:
        started = clock.now
        await ss.list_shipments("1001")
        await ss.list_shipments("1001")
    assert clock.now - started >= 17  # the second request waited for the window to reset
    assert 17 in [round(s) for s in clock.sleeps]


@pytest.mark.asyncio
async def test_a_429_waits_its_retry_after_then_succeeds():
    clock = FakeClock()
    empty = {"shipments": [], "page": 1, "pages": 0}
    recorder = RequestRecorder(
        json_response(
            429,
            {"Message": "Too many requests"},
            headers={"Retry-After": "12", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "12"},
        ),
        json_response(200, empty, headers=HEADERS_OK),
    )
    async with client(recorder, clock) as ss:
        assert await ss.list_shipments("1001") == []
    assert len(recorder.requests) == 2 and clock.now - 1000 >= 12


@pytest.mark.asyncio
async def test_read_back_returns_the_live_label_as_a_shipped_shipment():
    recorder = RequestRecorder(json_response(200, load_vendor_json("shipstation", "shipments_shipped.json")))
    async with client(recorder) as ss:
        notice = await CONNECTOR.read_back(ss, account(), "1001")
    assert recorder.last.url.params["orderNumber"] == "1001"
    assert isinstance(notice, Notice) and notice.shipment is not None
    shipment = notice.shipment
    assert shipment.status == shipment_pb2.SHIPMENT_STATUS_SHIPPED
    assert list(shipment.tracking_numbers) == ["9400111899223197428490"]
    assert shipment.carrier == "USPS" and shipment.service == "USPS_PRIORITY_MAIL"
    assert shipment.service_code == "usps_priority_mail"
    assert shipment.carrier_fee.minor_units == 954
    assert shipment.shipped_time.ToJsonString() == "2024-05-02T00:00:00Z"
    assert [(i.sku, i.quantity, i.channel_line_id) for i in shipment.items] == [("CAB-750", 2, "line-1")]


@pytest.mark.asyncio
async def test_read_back_of_an_order_whose_only_label_was_voided_is_no_shipment_but_names_the_voided_label():
    orders = {"orders": [{"orderNumber": "1001", "orderStatus": "awaiting_shipment"}], "page": 1, "pages": 1}
    recorder = RequestRecorder(
        json_response(200, load_vendor_json("shipstation", "shipments_voided.json")), json_response(200, orders)
    )
    async with client(recorder) as ss:
        notice = await CONNECTOR.read_back(ss, account(), "1001")
    assert notice is not None and "awaiting_shipment" in notice.event
    assert notice.shipment is not None and notice.shipment.status == shipment_pb2.SHIPMENT_STATUS_FULFILLED
    assert list(notice.shipment.tracking_numbers) == []
    assert list(notice.shipment.voided_tracking_numbers) == ["9400111899223197428400"]


@pytest.mark.asyncio
async def test_read_back_of_an_order_cancelled_in_shipstation_says_cancelled():
    orders = {"orders": [{"orderNumber": "1001", "orderStatus": "cancelled"}], "page": 1, "pages": 1}
    recorder = RequestRecorder(json_response(200, {"shipments": [], "pages": 0}), json_response(200, orders))
    async with client(recorder) as ss:
        notice = await CONNECTOR.read_back(ss, account(), "1001")
    assert notice is not None and notice.shipment is not None
    assert notice.shipment.status == shipment_pb2.SHIPMENT_STATUS_CANCELLED


@pytest.mark.asyncio
async def test_read_back_of_an_unknown_order_is_none():
    recorder = RequestRecorder(
        json_response(200, {"shipments": [], "pages": 0}), json_response(200, {"orders": [], "pages": 0})
    )
    async with client(recorder) as ss:
        assert await CONNECTOR.read_back(ss, account(), "1001") is None


@pytest.mark.asyncio
async def test_cancel_upserts_the_order_with_status_cancelled():
    stored = {"orderId": 5, "orderNumber": "1001", "orderKey": "k1", "orderStatus": "awaiting_shipment"}
    recorder = RequestRecorder(json_response(200, {"orders": [stored], "pages": 1}), json_response(200, {**stored}))
    async with client(recorder) as ss:
        await CONNECTOR.cancel(ss, account(), "1001", "customer asked")
    assert recorder.last.url.path == "/orders/createorder"
    assert request_json(recorder.last) == {**stored, "orderStatus": "cancelled"}


@pytest.mark.asyncio
async def test_a_notice_is_authenticated_by_its_token_and_resolved_by_rereading_its_resource():
    settings = account()
    assert CONNECTOR.authenticate_notice(settings, PushRequest({}, "path-token"))
    assert not CONNECTOR.authenticate_notice(settings, PushRequest({}, "path-tokex"))
    body = json.loads(vendor_bytes("shipstation", "webhook_ship_notify.json"))
    body["resource_url"] = body["resource_url"].replace("https://ssapi.shipstation.com", BASE_URL)
    head = CONNECTOR.parse_notice(json.dumps(body).encode())
    # A batch names no order: the order numbers come from the re-read.
    # A printed batch says the same at every re-read: redeliveries may share the first one's.
    assert head == NoticeHead("", "SHIP_NOTIFY", reference=body["resource_url"], same_news_on_reread=True)
    recorder = RequestRecorder(json_response(200, load_vendor_json("shipstation", "shipments_shipped.json")))
    async with client(recorder) as ss:
        (notice,) = await CONNECTOR.resolve_notice(ss, settings, head)
    assert recorder.last.url.params["batchId"] == "12345678"
    assert recorder.last.url.params["includeShipmentItems"] == "true"  # the items are what shipped
    assert notice.order_number == "1001" and notice.shipment is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.test/shipments?batchId=1",
        "https://ssapi.shipstation.test/accounts/listtags",
        "https://user:pw@ssapi.shipstation.test/shipments",
        "http://ssapi.shipstation.test/shipments",
    ],
)
@pytest.mark.asyncio
async def test_a_resource_url_elsewhere_is_refused_before_any_request(url):
    recorder = RequestRecorder()
    async with client(recorder) as ss:
        with pytest.raises(InvalidRequest):
            await ss.fetch_resource(url)
    assert recorder.requests == []


def test_order_notices_are_kept_aside_and_malformed_ones_refused():
    head = CONNECTOR.parse_notice(
        b'{"resource_url": "https://x.test/orders?batchId=1", "resource_type": "ORDER_NOTIFY"}'
    )
    assert head.ignored_reason
    with pytest.raises(InvalidWebhook):
        CONNECTOR.parse_notice(b'{"resource_url": "not a url", "resource_type": "SHIP_NOTIFY"}')


@pytest.mark.asyncio
async def test_rates_are_quoted_per_carrier_exactly():
    recorder = RequestRecorder(json_response(200, load_vendor_json("shipstation", "getrates_response.json")))
    async with client(recorder) as ss:
        quotes = await CONNECTOR.quote_rates(ss, account(rate_carriers=("stamps_com",)), valid_order())
    body = request_json(recorder.last)
    assert recorder.last.url.path == "/shipments/getrates"
    assert body["carrierCode"] == "stamps_com" and body["fromPostalCode"] == "95476"
    assert body["toPostalCode"] == "94558" and body["weight"] == {"value": 2800, "units": "grams"}
    # 7.33 + 0.015 = 7.345 exactly, not rounded (the markup applies first), never through a float
    assert [(q.carrier, q.service, str(q.amount)) for q in quotes] == [
        ("USPS", "usps_first_class_mail", "3.2"),
        ("USPS", "usps_priority_mail", "7.345"),
    ]


def test_export_renders_the_documented_xml_with_cdata_and_dates():
    order = valid_order()
    order.customer_notes = "fragile ]]> <b>"
    modified = datetime(2024, 5, 3, 14, 5, 59, tzinfo=UTC)
    page = ExportPage([ExportedOrder(order, "1001", ExportStatus.AWAITING_SHIPMENT, modified)])
    xml = CONNECTOR.render_export(account(), page)
    assert b"<![CDATA[fragile ]]]]><![CDATA[> <b>]]>" in xml
    root = ElementTree.fromstring(xml)
    assert root.tag == "Orders" and root.get("pages") == "1"
    (element,) = root.findall("Order")
    assert element.findtext("OrderNumber") == "1001"
    assert element.findtext("OrderDate") == "05/01/2024 09:00"
    assert element.findtext("LastModified") == "05/03/2024 14:05"
    assert element.findtext("OrderStatus") == "Fully Picked"
    assert element.findtext("CustomerNotes") == "fragile ]]> <b>"
    assert element.findtext("Customer/ShipTo/PostalCode") == "94558"
    assert element.findtext("Customer/BillTo/Email") == "jane.doe@example.com"
    assert element.findtext("OrderTotal") == "105.00" and element.findtext("Gift") == "true"
    assert [i.findtext("SKU") for i in element.findall("Items/Item")] == ["CAB-750"]


def test_export_statuses_are_the_accounts_store_words_for_each_state():
    mapping = codes.validate_status_mapping({codes.SHIPPED: "Sent out", codes.CANCELLED: "Voided"})
    settings = account(status_mapping=tuple(mapping.items()))
    orders = [
        ExportedOrder(valid_order(str(n)), str(n), status, datetime(2024, 5, 3, tzinfo=UTC))
        for n, status in enumerate(ExportStatus, start=1)
    ]
    root = ElementTree.fromstring(CONNECTOR.render_export(settings, ExportPage(orders, page=2, pages=2)))
    assert root.get("pages") == "2"
    assert [o.findtext("OrderStatus") for o in root.findall("Order")] == ["Fully Picked", "Sent out", "Voided"]


def test_pulls_authenticate_with_the_store_credentials_only():
    settings = account(store_user="shipstation", store_password="pw")
    good = "Basic " + base64.b64encode(b"shipstation:pw").decode()
    assert CONNECTOR.authenticate_pull(settings, PushRequest({"Authorization": good}))
    for header in ("", "Basic !!", "Bearer x", "Basic " + base64.b64encode(b"shipstation:pW").decode()):
        assert not CONNECTOR.authenticate_pull(settings, PushRequest({"Authorization": header}))
    empty = "Basic " + base64.b64encode(b":").decode()
    assert not CONNECTOR.authenticate_pull(account(), PushRequest({"Authorization": empty}))  # no store configured


def test_store_calls_parse_as_shipstation_sends_them():
    export = CONNECTOR.parse_pull(
        account(),
        "GET",
        {"action": "export", "start_date": "05/01/2024 09:00", "end_date": "05/01/2024 10:30", "page": "3"},
    )
    assert export == PullRequest(
        PullAction.EXPORT,
        start=datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        end=datetime(2024, 5, 1, 10, 31, tzinfo=UTC),  # the end minute is included
        page=3,
    )
    posted = CONNECTOR.parse_pull(
        account(), "POST", {"action": "shipnotify", "order_number": "1001", "carrier": "USPS"}
    )
    assert posted == PullRequest(PullAction.POST_SHIPMENT, order_number="1001")
    window = {"action": "export", "start_date": "05/01/2024 09:00", "end_date": "05/01/2024 10:30"}
    assert CONNECTOR.parse_pull(account(), "GET", window).page == 1


@pytest.mark.parametrize(
    "method, query, problem",
    [
        ("GET", {"action": "shipnotify"}, "the store takes"),
        ("POST", {"action": "export"}, "the store takes"),
        ("GET", {"action": "export", "end_date": "05/01/2024 10:30"}, "start_date is required"),
        ("GET", {"action": "export", "start_date": "2024-05-01", "end_date": "05/01/2024 10:30"}, "MM/dd/yyyy"),
        ("GET", {"action": "export", "start_date": "05/02/2024 09:00", "end_date": "05/01/2024 10:30"}, "before"),
        (
            "GET",
            {"action": "export", "start_date": "05/01/2024 09:00", "end_date": "05/01/2024 10:30", "page": "0"},
            "page",
        ),
    ],
)
def test_malformed_store_calls_are_invalid_requests(method, query, problem):
    with pytest.raises(InvalidRequest, match=problem):
        CONNECTOR.parse_pull(account(), method, query)


def test_export_pages_say_how_many_there_are():
    xml = customstore.render_export([valid_order()], ["1001"], statuses=["New"], page=2, pages=3)
    assert ElementTree.fromstring(xml).get("pages") == "3"
    with pytest.raises(ValueError):
        customstore.render_export([valid_order()], ["1001"], statuses=["New"], page=4, pages=3)


def test_shipnotify_parses_into_the_orders_notice():
    notice = CONNECTOR.parse_posted_shipment(account(), vendor_bytes("shipstation", "shipnotice.xml"))
    assert notice.order_number == "1001" and notice.event == "shipnotify"
    shipment = notice.shipment
    assert shipment is not None and shipment.status == shipment_pb2.SHIPMENT_STATUS_SHIPPED
    assert list(shipment.tracking_numbers) == ["9400111899223197428490"]
    assert shipment.carrier == "USPS" and shipment.service_code == "Priority Mail"
    assert shipment.carrier_fee.minor_units == 954 and shipment.notes_to_buyer == "Thanks & enjoy <3"
    assert shipment.shipped_time.ToJsonString() == "2024-05-02T00:00:00Z"
    assert [(i.sku, i.quantity, i.channel_line_id) for i in shipment.items] == [("CAB-750", 2, "line-1")]


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><ShipNotice><OrderNumber>&a;</OrderNumber></ShipNotice>',
        b'<!DOCTYPE ShipNotice SYSTEM "http://evil.test/x.dtd"><ShipNotice/>',
        b"<ShipNotice><OrderNumber>1</OrderNumber>",
        b"<Other><OrderNumber>1</OrderNumber></Other>",
        b"<ShipNotice><OrderNumber></OrderNumber></ShipNotice>",
        b"",
    ],
)
def test_shipnotify_refuses_dtds_entities_and_malformed_bodies(body):
    with pytest.raises(InvalidWebhook):
        customstore.parse_shipnotify(body)


def test_status_mapping_defaults_custom_entries_and_clear_errors():
    mapping = codes.validate_status_mapping({"awaiting_shipment": "Ready to Ship"})
    assert mapping["awaiting_payment"] == "New" and mapping["awaiting_shipment"] == "Ready to Ship"
    assert codes.shipstation_status(mapping, "ready to ship") == "awaiting_shipment"
    assert codes.channel_status(codes.DEFAULT_STATUS_MAPPING, "shipped") == "Dispatched"
    with pytest.raises(codes.UnmappedStatus, match="Backordered"):
        codes.shipstation_status(mapping, "Backordered")
    with pytest.raises(codes.UnmappedStatus, match="On Hold is not supported"):
        codes.channel_status(mapping, "on_hold")
    with pytest.raises(ValueError, match="not supported"):
        codes.validate_status_mapping({"on_hold": "Held"})
    with pytest.raises(ValueError, match="not a ShipStation order status"):
        codes.validate_status_mapping({"packed": "Packed"})
    with pytest.raises(ValueError, match="both map to"):
        codes.validate_status_mapping({"awaiting_shipment": "New"})


def test_settings_read_a_custom_status_and_refuse_on_hold(monkeypatch):
    monkeypatch.setenv("S", "secret-value")
    section = {"api_key": "k", "api_secret": "env:S", "webhook_token": "env:S", "status_shipped": "Sent"}
    from libs.platform.secrets import resolve_secret_value

    parsed = CONNECTOR.parse_settings(section, resolve_secret_value, "tenant 't'")
    assert parsed.statuses["shipped"] == "Sent"
    with pytest.raises(ValueError, match="On Hold is not supported"):
        CONNECTOR.parse_settings({**section, "status_on_hold": "Held"}, resolve_secret_value, "tenant 't'")


def test_the_client_paces_by_the_services_shared_budget_per_key_pair():
    from libs.connectors.base.contract import ClientResources

    made: list[tuple[str, int, int]] = []
    limiter = KeyedRateLimiter(40, burst=2)

    def shared(scope: str, per_minute: int, burst: int) -> KeyedRateLimiter:
        made.append((scope, per_minute, burst))
        return limiter

    ss = CONNECTOR.open_client(account(), ClientResources(max_concurrency=8, rate_limiter=shared))
    assert made == [("shipstation", 40, 2)] and ss.rate_limiter is limiter
    assert "ss-key" not in ss.rate_key  # the budget's key is a digest, not the API key
