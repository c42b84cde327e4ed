"""The CellarPass client on a RequestRecorder: auth header, every status path, retries, bodies."""

from __future__ import annotations

import httpx
import pytest

from libs.connectors.base.errors import (
    Conflict,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    RateLimited,
    Timeout,
    Unauthorized,
    Unavailable,
)
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json, request_json
from libs.connectors.cellarpass.errors import IntegrationDisabled
from libs.connectors.cellarpass.tests.builders import API_KEY, client

PARAMS = {"status": "all", "page": "1", "pageSize": "50"}


async def list_with(*replies):
    recorder = RequestRecorder(*replies)
    async with client(recorder.transport) as cellarpass:
        body = await cellarpass.list_reservations(PARAMS)
    return body, recorder.requests


@pytest.mark.asyncio
async def test_a_page_is_asked_with_the_bearer_key_under_the_base_path():
    sample = load_vendor_json("cellarpass", "list_reservations_page.json")
    body, (request,) = await list_with(json_response(200, sample))
    assert body == sample
    assert request.method == "GET" and request.url.path == "/api/v1/reservations"
    assert dict(request.url.params) == PARAMS
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


@pytest.mark.asyncio
async def test_401_is_unauthorized_and_not_retried():
    with pytest.raises(Unauthorized) as raised:
        await list_with(json_response(401, load_vendor_json("cellarpass", "error_unauthorized.json")))
    assert not isinstance(raised.value, IntegrationDisabled)
    assert raised.value.retryable is False and "HTTP 401" in raised.value.message


@pytest.mark.asyncio
async def test_403_is_the_integration_not_enabled():
    with pytest.raises(IntegrationDisabled) as raised:
        await list_with(json_response(403, load_vendor_json("cellarpass", "error_integration_disabled.json")))
    assert raised.value.reason_code == "ACCOUNT_INACTIVE" and raised.value.retryable is False


@pytest.mark.asyncio
async def test_400_is_an_invalid_request_with_cellarpass_words():
    with pytest.raises(InvalidRequest, match="pageSize must be from 1 to 50"):
        await list_with(json_response(400, load_vendor_json("cellarpass", "error_page_size.json")))


@pytest.mark.asyncio
async def test_429_waits_the_retry_after_and_tries_again():
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    recorder = RequestRecorder(json_response(429, {}, headers={"Retry-After": "7"}), json_response(200, {"ok": 1}))
    async with client(recorder.transport) as cellarpass:
        cellarpass._http._sleep = sleep
        assert await cellarpass.list_reservations(PARAMS) == {"ok": 1}
    assert slept == [7.0] and len(recorder.requests) == 2


@pytest.mark.asyncio
async def test_429_on_every_attempt_is_rate_limited_with_the_hint():
    too_many = json_response(429, {}, headers={"Retry-After": "2"})
    with pytest.raises(RateLimited) as raised:
        await list_with(too_many, too_many, too_many)
    assert raised.value.retry_after == 2.0 and raised.value.retryable


@pytest.mark.asyncio
async def test_5xx_is_retried_then_unavailable():
    body, requests = await list_with(json_response(503), json_response(200, {"ok": 1}))
    assert body == {"ok": 1} and len(requests) == 2
    with pytest.raises(Unavailable) as raised:
        await list_with(json_response(500), json_response(502), json_response(500))
    assert raised.value.retryable


@pytest.mark.asyncio
async def test_a_timeout_on_every_attempt_is_a_retryable_timeout():
    with pytest.raises(Timeout) as raised:
        await list_with(httpx.ReadTimeout, httpx.ReadTimeout, httpx.ReadTimeout)
    assert raised.value.retryable


@pytest.mark.asyncio
async def test_a_body_that_is_not_json_is_an_invalid_response():
    with pytest.raises(InvalidResponse):
        await list_with(httpx.Response(200, content=b"<html>maintenance</html>"))


@pytest.mark.asyncio
async def test_a_sync_result_is_posted_to_its_reservation_and_retried_after_a_5xx():
    recorder = RequestRecorder(
        json_response(502), json_response(200, load_vendor_json("cellarpass", "sync_result_processed.json"))
    )
    async with client(recorder.transport) as cellarpass:
        await cellarpass.post_sync_result("R-10041", {"success": True, "externalOrderId": "58213", "error": ""})
    first, second = recorder.requests
    assert second.method == "POST" and second.url.path == "/api/v1/reservations/R-10041/sync-result"
    assert request_json(first) == request_json(second) == {"success": True, "externalOrderId": "58213", "error": ""}


@pytest.mark.asyncio
async def test_a_sync_result_for_an_unknown_reservation_is_not_found_naming_it():
    recorder = RequestRecorder(json_response(404, load_vendor_json("cellarpass", "sync_result_not_found.json")))
    async with client(recorder.transport) as cellarpass:
        with pytest.raises(NotFound, match="reservation R-99999") as raised:
            await cellarpass.post_sync_result("R-99999", {"success": False, "externalOrderId": "", "error": "x"})
    assert raised.value.retryable is False


@pytest.mark.asyncio
async def test_a_conflicting_sync_result_is_a_conflict():
    recorder = RequestRecorder(json_response(409, {"code": "ALREADY_PROCESSED", "message": "already Processed"}))
    async with client(recorder.transport) as cellarpass:
        with pytest.raises(Conflict):
            await cellarpass.post_sync_result("R-1", {"success": False, "externalOrderId": "", "error": "x"})


@pytest.mark.asyncio
async def test_customer_types_are_listed_created_and_deleted():
    recorder = RequestRecorder(
        json_response(200, load_vendor_json("cellarpass", "list_customer_types.json")),
        json_response(201, load_vendor_json("cellarpass", "put_customer_type_created.json")),
        httpx.Response(204),
        json_response(404, {"code": "NOT_FOUND", "message": "gone"}),
    )
    async with client(recorder.transport) as cellarpass:
        assert len(await cellarpass.list_customer_types()) == 3
        assert (await cellarpass.put_customer_type("Allocation List", "19"))["id"] == "CT-4"
        assert await cellarpass.delete_customer_type("CT-4") is True
        assert await cellarpass.delete_customer_type("CT-4") is False
    listed, created, deleted, _ = recorder.requests
    assert (listed.method, listed.url.path) == ("GET", "/api/v1/customer-types")
    assert request_json(created) == {"name": "Allocation List", "sourceId": "19"}
    assert (deleted.method, deleted.url.path) == ("DELETE", "/api/v1/customer-types/CT-4")


@pytest.mark.asyncio
async def test_a_path_id_cannot_change_the_path():
    recorder = RequestRecorder()
    async with client(recorder.transport) as cellarpass:
        with pytest.raises(InvalidRequest):
            await cellarpass.post_sync_result("..", {})
        assert (await _quoted(cellarpass, recorder)) == "/api/v1/customer-types/a%2Fb"


async def _quoted(cellarpass, recorder: RequestRecorder) -> str:
    recorder.add(httpx.Response(204))
    await cellarpass.delete_customer_type("a/b")
    return recorder.last.url.raw_path.decode()
