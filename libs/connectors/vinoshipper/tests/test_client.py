"""Tests of VinoshipperClient on httpx.MockTransport: each operation sent, answered and refused."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest

from libs.connectors.base.errors import InvalidRequest, NotFound, Timeout, Unavailable
from libs.connectors.base.testing import (
    FakeClock,
    RequestRecorder,
    json_response,
    load_vendor_json,
    request_json,
)
from libs.connectors.vinoshipper.client import VinoshipperClient
from libs.connectors.vinoshipper.errors import ComplianceRejected, OrderAlreadyExists, UnknownSku
from libs.connectors.vinoshipper.orders import (
    build_create_order_request,
    parse_compliance_response,
    parse_create_order_response,
)
from libs.connectors.vinoshipper.shipments import parse_order_detail
from libs.connectors.vinoshipper.tests.builders import (
    AUTHORIZATION,
    BASE_URL,
    ORDER_NUMBER,
    SOURCE_URL,
    settings,
    valid_order,
)

pytestmark = pytest.mark.asyncio

CREATE_BODY = load_vendor_json("vinoshipper", "create_order_request.json")
ORDER_PATH = f"/api/v3/p/orders/{ORDER_NUMBER}"


def client(recorder: RequestRecorder, **changes: object) -> VinoshipperClient:
    """The suite's client: demo producer, mock transport, fake sleep."""
    return VinoshipperClient(settings(**changes), transport=recorder.transport, sleep=FakeClock().sleep)


def detail(sample: str) -> dict[str, object]:
    return load_vendor_json("vinoshipper", f"order_detail_{sample}.json")


async def test_create_order_puts_the_built_body_with_basic_auth() -> None:
    # PUT /api/v3/p/orders is Vinoshipper's create-or-update keyed by the order number.
    body = build_create_order_request(valid_order(), order_number=ORDER_NUMBER, rate_code="03", source_url=SOURCE_URL)
    recorder = RequestRecorder(json_response(201, detail("pending")))
    async with client(recorder) as vs:
        answer = await vs.create_order(body)
    request = recorder.last
    assert (request.method, str(request.url)) == ("PUT", f"{BASE_URL}/api/v3/p/orders")
    assert request.headers["Authorization"] == AUTHORIZATION
    assert request.headers["Content-Type"] == "application/json"
    assert "tenant" not in request.headers
    assert request_json(request) == CREATE_BODY
    assert answer.created and parse_create_order_response(answer.detail) == ORDER_NUMBER


async def test_an_order_an_earlier_attempt_created_is_found_not_created_again() -> None:
    # A slow first attempt created it after we stopped waiting: the PUT answers 200, not 409.
    recorder = RequestRecorder(json_response(200, detail("pending")))
    async with client(recorder) as vs:
        answer = await vs.create_order(CREATE_BODY)
    assert not answer.created and parse_create_order_response(answer.detail) == ORDER_NUMBER


async def test_create_order_needs_the_order_number_it_is_keyed_by() -> None:
    recorder = RequestRecorder(json_response(201, detail("pending")))
    async with client(recorder) as vs:
        with pytest.raises(InvalidRequest):
            await vs.create_order({key: value for key, value in CREATE_BODY.items() if key != "orderNumber"})
    assert recorder.requests == []


async def test_create_order_sends_money_as_exact_decimal_dollars() -> None:
    recorder = RequestRecorder(json_response(201, detail("pending")))
    async with client(recorder) as vs:
        await vs.create_order(CREATE_BODY)
    sent = json.loads(recorder.last.content, parse_float=Decimal)
    assert sent["shippingPrice"] == Decimal("24.99")
    assert sent["totalPrice"] == Decimal("153.61")
    assert b'"shippingPrice":24.99' in recorder.last.content


async def test_create_order_is_not_repeated_after_a_read_timeout() -> None:
    # PUT is idempotent, but the caller reads back before any repeat, as a recorded attempt.
    recorder = RequestRecorder(httpx.ReadTimeout)
    async with client(recorder) as vs:
        with pytest.raises(Timeout):
            await vs.create_order(CREATE_BODY)
    assert len(recorder.requests) == 1


async def test_create_order_is_not_repeated_after_a_502() -> None:
    recorder = RequestRecorder(json_response(502))
    async with client(recorder) as vs:
        with pytest.raises(Unavailable):
            await vs.create_order(CREATE_BODY)
    assert len(recorder.requests) == 1


async def test_create_order_is_repeated_after_a_429_or_a_refused_connection() -> None:
    recorder = RequestRecorder(
        json_response(429, {"message": "slow down"}, headers={"Retry-After": "0.01"}),
        httpx.ConnectError,
        json_response(201, detail("pending")),
    )
    async with client(recorder) as vs:
        await vs.create_order(CREATE_BODY)
    assert len(recorder.requests) == 3


async def test_a_non_compliant_create_is_rejected_with_its_problems() -> None:
    recorder = RequestRecorder(json_response(422, load_vendor_json("vinoshipper", "error_not_compliant.json")))
    async with client(recorder) as vs:
        with pytest.raises(ComplianceRejected) as caught:
            await vs.create_order(CREATE_BODY)
    assert caught.value.details[0] == "Producer is not licensed to ship to UT"


async def test_an_unknown_sku_on_create_is_unknown_sku() -> None:
    recorder = RequestRecorder(json_response(400, load_vendor_json("vinoshipper", "error_unknown_sku.json")))
    async with client(recorder) as vs:
        with pytest.raises(UnknownSku):
            await vs.create_order(CREATE_BODY)


async def test_a_number_that_cannot_be_created_or_updated_is_order_already_exists() -> None:
    recorder = RequestRecorder(json_response(409, load_vendor_json("vinoshipper", "error_order_exists.json")))
    async with client(recorder) as vs:
        with pytest.raises(OrderAlreadyExists):
            await vs.create_order(CREATE_BODY)


async def test_get_order_reads_the_detail() -> None:
    recorder = RequestRecorder(json_response(200, detail("shipped")))
    async with client(recorder) as vs:
        answer = await vs.get_order(ORDER_NUMBER)
    request = recorder.last
    assert (request.method, request.url.path) == ("GET", ORDER_PATH)
    assert request.headers["Authorization"] == AUTHORIZATION
    assert answer is not None
    shipment = parse_order_detail(answer)
    assert shipment is not None
    assert list(shipment.tracking_numbers) == ["1Z999AA10123456784", "1Z999AA10123456795"]


async def test_get_order_answers_none_for_an_unknown_order() -> None:
    recorder = RequestRecorder(json_response(404, {"message": f"Order {ORDER_NUMBER} not found"}))
    async with client(recorder) as vs:
        assert await vs.get_order(ORDER_NUMBER) is None


async def test_get_order_is_retried_after_a_read_timeout_and_a_503() -> None:
    recorder = RequestRecorder(httpx.ReadTimeout, json_response(503), json_response(200, detail("pending")))
    async with client(recorder) as vs:
        assert await vs.get_order(ORDER_NUMBER) is not None
    assert len(recorder.requests) == 3


async def test_compliance_check_posts_the_body_and_reads_problems() -> None:
    answer = {"isCompliant": False, "orderProblems": ["Shipping to UT is not permitted for this producer"]}
    recorder = RequestRecorder(json_response(200, answer))
    async with client(recorder) as vs:
        result = await vs.check_compliance(CREATE_BODY)
    request = recorder.last
    assert (request.method, request.url.path) == ("POST", "/api/v3/p/orders/check-compliance")
    assert request_json(request) == CREATE_BODY
    assert parse_compliance_response(result) == ["Shipping to UT is not permitted for this producer"]


async def test_a_422_compliance_answer_is_the_result_of_the_check() -> None:
    body = load_vendor_json("vinoshipper", "error_not_compliant.json")
    recorder = RequestRecorder(json_response(422, body))
    async with client(recorder) as vs:
        result = await vs.check_compliance(CREATE_BODY)
    assert len(parse_compliance_response(result)) == 2


async def test_a_compliance_check_creates_nothing_so_it_is_retried() -> None:
    recorder = RequestRecorder(
        httpx.ReadTimeout, json_response(200, load_vendor_json("vinoshipper", "compliance_check_compliant.json"))
    )
    async with client(recorder) as vs:
        assert parse_compliance_response(await vs.check_compliance(CREATE_BODY)) == []
    assert len(recorder.requests) == 2


async def test_a_compliance_check_with_an_unknown_sku_raises() -> None:
    recorder = RequestRecorder(json_response(400, load_vendor_json("vinoshipper", "error_unknown_sku.json")))
    async with client(recorder) as vs:
        with pytest.raises(UnknownSku):
            await vs.check_compliance(CREATE_BODY)


async def test_cancel_order_posts_the_reason() -> None:
    recorder = RequestRecorder(json_response(200, detail("cancelled")))
    async with client(recorder) as vs:
        answer = await vs.cancel_order(ORDER_NUMBER, "Voided in the sales channel")
    request = recorder.last
    assert (request.method, request.url.path) == ("POST", f"{ORDER_PATH}/cancel")
    assert request_json(request) == {"cancelReason": "Voided in the sales channel"}
    shipment = parse_order_detail(answer)
    assert shipment is not None
    assert shipment.cancel_reason == "Customer changed the delivery address"


async def test_cancelling_an_unknown_order_is_not_found() -> None:
    recorder = RequestRecorder(json_response(404, {"message": "Order C7-napa-9 not found"}))
    async with client(recorder) as vs:
        with pytest.raises(NotFound):
            await vs.cancel_order("C7-napa-9", "duplicate")


async def test_fetch_href_reads_a_webhook_link_on_the_configured_host() -> None:
    recorder = RequestRecorder(json_response(200, detail("shipped")))
    async with client(recorder) as vs:
        answer = await vs.fetch_href(f"{BASE_URL}{ORDER_PATH}")
    assert str(recorder.last.url) == f"{BASE_URL}{ORDER_PATH}"
    assert recorder.last.headers["Authorization"] == AUTHORIZATION
    assert answer["orderNumber"] == ORDER_NUMBER


async def test_fetch_href_honours_a_base_url_with_a_path() -> None:
    recorder = RequestRecorder(json_response(200, detail("shipped")))
    async with client(recorder, base_url="http://127.0.0.1:8081/vs") as vs:
        await vs.fetch_href(f"http://127.0.0.1:8081/vs{ORDER_PATH}")
    assert str(recorder.last.url) == f"http://127.0.0.1:8081/vs{ORDER_PATH}"


@pytest.mark.parametrize(
    "href",
    [
        f"https://attacker.test{ORDER_PATH}",
        f"http://vinoshipper.test{ORDER_PATH}",
        f"https://vinoshipper.test:8443{ORDER_PATH}",
        f"https://user:pw@vinoshipper.test{ORDER_PATH}",
        f"https://vinoshipper.test.attacker.test{ORDER_PATH}",
        "https://vinoshipper.test/api/v3/p/customers/1",
        "https://vinoshipper.test/api/v3/p/orders/",
        "https://vinoshipper.test/api/v3/p/orders/../../admin",
        "https://vinoshipper.test/api/v3/p/orders/%2e%2e/%2e%2e/admin",
        f"{ORDER_PATH}",
        "not a url at all",
    ],
)
async def test_fetch_href_refuses_anything_but_an_order_url_of_vinoshipper(href: str) -> None:
    recorder = RequestRecorder()
    async with client(recorder) as vs:
        with pytest.raises(InvalidRequest):
            await vs.fetch_href(href)
    assert recorder.requests == []


async def test_requests_in_flight_are_capped_by_max_concurrency() -> None:
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        return json_response(200, detail("pending"))

    recorder = RequestRecorder(*([slow] * 6))
    async with client(recorder, max_concurrency=2) as vs:
        await asyncio.gather(*(vs.get_order(ORDER_NUMBER) for _ in range(6)))
    assert len(recorder.requests) == 6
    assert peak == 2


async def test_settings_repr_hides_the_secret_and_the_prefix_is_checked() -> None:
    text = repr(settings())
    assert "vs-secret" not in text
    assert "api_secret='***'" in text
    for prefix in ("", "-lead", "trail-", "has space", "x" * 25):
        with pytest.raises(ValueError, match="order_number_prefix"):
            settings(order_number_prefix=prefix)
