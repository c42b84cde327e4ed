"""Tests of Commerce7Client on httpx.MockTransport: each operation sent, answered and refused."""

from __future__ import annotations

import httpx
import pytest

from libs.connectors.base.errors import (
    InvalidRequest,
    InvalidResponse,
    NotFound,
    RateLimited,
    Timeout,
    Unauthorized,
)
from libs.connectors.base.http import RetryPolicy
from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.base.testing import (
    FakeClock,
    RequestRecorder,
    json_response,
    load_vendor_json,
    request_json,
)
from libs.connectors.commerce7.client import Commerce7Client
from libs.connectors.commerce7.fulfillments import order_has_delivery_recorded
from libs.connectors.commerce7.orders import parse_order
from libs.connectors.commerce7.tests.builders import (
    AUTHORIZATION,
    EXPECTED_DELIVERED_BODY,
    EXPECTED_SHIPPED_BODY,
    ORDER_ID,
    TENANT,
    settings,
    web_ship_order,
)

pytestmark = pytest.mark.asyncio


def client(recorder: RequestRecorder, clock: FakeClock | None = None, **options: object) -> Commerce7Client:
    """The suite's client: demo tenant, mock transport, fake sleep."""
    clock = clock or FakeClock()
    return Commerce7Client(settings(), transport=recorder.transport, sleep=clock.sleep, **options)  # type: ignore[arg-type]


def assert_commerce7_headers(request: httpx.Request) -> None:
    assert request.headers["Authorization"] == AUTHORIZATION
    assert request.headers["tenant"] == TENANT


async def test_get_order_sends_auth_and_tenant_and_returns_the_order() -> None:
    recorder = RequestRecorder(json_response(200, web_ship_order()))
    async with client(recorder) as c7:
        order = await c7.get_order(ORDER_ID)
    request = recorder.last
    assert (request.method, str(request.url)) == ("GET", f"https://api.commerce7.test/v1/order/{ORDER_ID}")
    assert_commerce7_headers(request)
    parsed, issues = parse_order(order, tenant_id=TENANT)
    assert parsed.external_number == "1001"
    assert issues == []


async def test_get_order_quotes_the_id_into_one_path_segment() -> None:
    recorder = RequestRecorder(json_response(200, web_ship_order()))
    async with client(recorder) as c7:
        await c7.get_order("a/b?c")
    assert recorder.last.url.raw_path == b"/v1/order/a%2Fb%3Fc"


async def test_get_order_refuses_an_id_that_would_change_the_path() -> None:
    async with client(RequestRecorder()) as c7:
        with pytest.raises(InvalidRequest):
            await c7.get_order("..")


async def test_a_missing_order_is_not_found() -> None:
    recorder = RequestRecorder(json_response(404, load_vendor_json("commerce7", "error_not_found.json")))
    async with client(recorder) as c7:
        with pytest.raises(NotFound):
            await c7.get_order(ORDER_ID)


async def test_refused_credentials_are_unauthorized_and_not_retried() -> None:
    body = {"statusCode": 401, "type": "unauthorized", "message": "Invalid tenant", "errors": []}
    recorder = RequestRecorder(json_response(401, body))
    async with client(recorder) as c7:
        with pytest.raises(Unauthorized) as caught:
            await c7.get_order(ORDER_ID)
    assert len(recorder.requests) == 1
    assert "s3cret" not in str(caught.value)


async def test_get_order_is_retried_after_a_503() -> None:
    recorder = RequestRecorder(json_response(503), json_response(200, web_ship_order()))
    async with client(recorder) as c7:
        order = await c7.get_order(ORDER_ID)
    assert order["id"] == ORDER_ID
    assert len(recorder.requests) == 2


async def test_a_non_json_success_is_an_invalid_response() -> None:
    recorder = RequestRecorder(httpx.Response(200, text="<html>maintenance</html>"))
    async with client(recorder) as c7:
        with pytest.raises(InvalidResponse):
            await c7.get_order(ORDER_ID)


async def test_list_orders_pages_with_the_cursor_until_it_is_empty() -> None:
    first, second = web_ship_order(), load_vendor_json("commerce7", "order_club.json")
    recorder = RequestRecorder(
        json_response(200, {"orders": [first], "cursor": "c-2", "total": 2}),
        json_response(200, {"orders": [second], "cursor": None, "total": 2}),
    )
    async with client(recorder) as c7:
        orders = [order["orderNumber"] async for order in c7.list_orders("2024-05-01T00:00:00.000Z")]
    assert orders == [1001, 1006]
    params = [dict(request.url.params) for request in recorder.requests]
    assert params == [
        {"cursor": "start", "updatedAt": "gte:2024-05-01T00:00:00.000Z"},
        {"cursor": "c-2", "updatedAt": "gte:2024-05-01T00:00:00.000Z"},
    ]
    assert all(request.url.path == "/v1/order" for request in recorder.requests)
    assert_commerce7_headers(recorder.last)


async def test_list_orders_stops_on_an_empty_page() -> None:
    recorder = RequestRecorder(json_response(200, {"orders": [], "cursor": "c-2", "total": 0}))
    async with client(recorder) as c7:
        assert [order async for order in c7.list_orders()] == []
    assert dict(recorder.last.url.params) == {"cursor": "start"}


async def test_list_orders_refuses_a_cursor_that_repeats() -> None:
    page = {"orders": [web_ship_order()], "cursor": "same"}
    recorder = RequestRecorder(json_response(200, page), json_response(200, page))
    async with client(recorder) as c7:
        with pytest.raises(InvalidResponse, match="cursor repeated"):
            _ = [order async for order in c7.list_orders()]


async def test_list_orders_refuses_a_page_without_orders() -> None:
    recorder = RequestRecorder(json_response(200, {"customers": []}))
    async with client(recorder) as c7:
        with pytest.raises(InvalidResponse):
            _ = [order async for order in c7.list_orders()]


async def test_shipped_fulfillment_is_posted_to_fulfillment_all() -> None:
    answer = load_vendor_json("commerce7", "fulfillment_shipped_response.json")
    recorder = RequestRecorder(json_response(200, answer))
    async with client(recorder) as c7:
        result = await c7.create_fulfillment_all(ORDER_ID, EXPECTED_SHIPPED_BODY)
    request = recorder.last
    assert (request.method, request.url.path) == ("POST", f"/v1/order/{ORDER_ID}/fulfillment/all")
    assert_commerce7_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in request.headers
    assert request_json(request) == EXPECTED_SHIPPED_BODY
    assert result["shipped"]["trackingNumbers"] == EXPECTED_SHIPPED_BODY["shipped"]["trackingNumbers"]


async def test_a_fulfillment_post_is_not_repeated_after_a_read_timeout() -> None:
    recorder = RequestRecorder(httpx.ReadTimeout)
    async with client(recorder) as c7:
        with pytest.raises(Timeout):
            await c7.create_fulfillment_all(ORDER_ID, EXPECTED_SHIPPED_BODY)
    assert len(recorder.requests) == 1


async def test_a_refused_fulfillment_carries_the_field_errors() -> None:
    recorder = RequestRecorder(json_response(422, load_vendor_json("commerce7", "error_validation.json")))
    async with client(recorder) as c7:
        with pytest.raises(InvalidRequest) as caught:
            await c7.create_fulfillment_all(ORDER_ID, EXPECTED_SHIPPED_BODY)
    assert caught.value.details == ['shipped.trackingNumbers: "trackingNumbers" must contain at least 1 items']


async def test_delivered_update_is_put_on_the_order() -> None:
    updated = web_ship_order(shippingStatus="Delivered", metaData=EXPECTED_DELIVERED_BODY["metaData"])
    recorder = RequestRecorder(json_response(200, updated))
    async with client(recorder) as c7:
        answer = await c7.update_order(ORDER_ID, EXPECTED_DELIVERED_BODY)
    request = recorder.last
    assert (request.method, request.url.path) == ("PUT", f"/v1/order/{ORDER_ID}")
    assert_commerce7_headers(request)
    assert request_json(request) == EXPECTED_DELIVERED_BODY
    assert order_has_delivery_recorded(answer) is True


async def test_an_order_update_is_retried_after_a_read_timeout() -> None:
    recorder = RequestRecorder(httpx.ReadTimeout, json_response(200, web_ship_order()))
    async with client(recorder) as c7:
        await c7.update_order(ORDER_ID, EXPECTED_DELIVERED_BODY)
    assert len(recorder.requests) == 2


async def test_a_delivered_update_on_a_missing_order_is_not_found() -> None:
    recorder = RequestRecorder(json_response(404, load_vendor_json("commerce7", "error_not_found.json")))
    async with client(recorder) as c7:
        with pytest.raises(NotFound):
            await c7.update_order(ORDER_ID, EXPECTED_DELIVERED_BODY)


async def test_the_101st_call_in_a_minute_waits_for_the_tenant_limit() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(100, clock=clock, sleep=clock.sleep)
    recorder = RequestRecorder(*(json_response(200, web_ship_order()) for _ in range(101)))
    async with client(recorder, clock, rate_limiter=limiter) as c7:
        for _ in range(100):
            await c7.get_order(ORDER_ID)
        assert clock.sleeps == []
        await c7.get_order(ORDER_ID)
    assert clock.sleeps == [pytest.approx(0.6)]
    assert len(recorder.requests) == 101


async def test_clients_sharing_a_limiter_share_the_tenant_budget() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(2, clock=clock, sleep=clock.sleep)
    recorder = RequestRecorder(*(json_response(200, web_ship_order()) for _ in range(3)))
    async with (
        client(recorder, clock, rate_limiter=limiter) as first,
        client(recorder, clock, rate_limiter=limiter) as second,
    ):
        await first.get_order(ORDER_ID)
        await second.get_order(ORDER_ID)
        await first.get_order(ORDER_ID)
    assert clock.sleeps == [pytest.approx(30.0)]


async def test_a_429_is_waited_out_using_retry_after() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(100, clock=clock, sleep=clock.sleep)
    too_many = {"statusCode": 429, "type": "tooManyRequests", "message": "Rate limit", "errors": []}
    recorder = RequestRecorder(
        json_response(429, too_many, headers={"Retry-After": "0.25"}), json_response(200, web_ship_order())
    )
    async with client(recorder, clock, rate_limiter=limiter) as c7:
        await c7.get_order(ORDER_ID)
    assert clock.sleeps[0] == 0.25
    assert len(recorder.requests) == 2


async def test_a_long_retry_after_is_returned_to_the_caller() -> None:
    recorder = RequestRecorder(json_response(429, headers={"Retry-After": "59"}))
    async with client(recorder, retry=RetryPolicy(max_retry_after_s=30)) as c7:
        with pytest.raises(RateLimited) as caught:
            await c7.get_order(ORDER_ID)
    assert caught.value.retry_after == 59.0


async def test_settings_repr_hides_the_secret() -> None:
    text = repr(settings())
    assert "s3cret" not in text
    assert "app_secret='***'" in text
    with pytest.raises(ValueError, match="tenant_id"):
        settings(tenant_id="")


async def test_by_default_a_tenant_bursts_ten_calls_then_is_paced_at_its_rate() -> None:
    from libs.connectors.commerce7.client import Commerce7Client
    from libs.connectors.commerce7.settings import Commerce7Settings

    c7 = Commerce7Client(Commerce7Settings(tenant_id="t", app_id="a", app_secret="s", rate_limit_per_minute=100))
    assert isinstance(c7.rate_limiter, KeyedRateLimiter)
    bucket = c7.rate_limiter.bucket("t")
    assert bucket.capacity == 10
    assert bucket.rate_per_second == pytest.approx(100 / 60)
