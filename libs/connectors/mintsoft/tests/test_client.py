"""The Mintsoft client: the API key from /api/Auth, renewed once on a 401, one auth at a time."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from libs.connectors.base.errors import Unauthorized
from libs.connectors.base.testing import RequestRecorder, json_response, request_json
from libs.connectors.mintsoft.tests.builders import API_KEY, client

pytestmark = pytest.mark.asyncio


async def test_the_key_from_auth_is_sent_as_ms_apikey():
    recorder = RequestRecorder(json_response(200, API_KEY), json_response(200, []))
    async with client(recorder.transport) as ms:
        assert await ms.search_orders("GR-1001") == []
    auth, search = recorder.requests
    assert (auth.method, auth.url.path) == ("POST", "/api/Auth")
    assert request_json(auth) == {"Username": "ms-user", "Password": "ms-password"}
    assert (search.url.path, search.url.params["OrderNumber"]) == ("/api/Order/Search", "GR-1001")
    assert search.headers["ms-apikey"] == API_KEY


async def test_an_expired_key_is_renewed_once_and_the_call_repeated():
    recorder = RequestRecorder(
        json_response(200, "old-key"),
        json_response(200, []),
        json_response(401, {"Message": "Authorization has been denied for this request."}),
        json_response(200, "new-key"),
        json_response(200, [{"ID": 7, "OrderNumber": "GR-1"}]),
    )
    async with client(recorder.transport) as ms:
        await ms.search_orders("GR-0")
        assert await ms.search_orders("GR-1") == [{"ID": 7, "OrderNumber": "GR-1"}]
        assert ms.authentications == 2
    paths = [(r.url.path, r.headers.get("ms-apikey")) for r in recorder.requests]
    assert paths == [
        ("/api/Auth", None),
        ("/api/Order/Search", "old-key"),
        ("/api/Order/Search", "old-key"),
        ("/api/Auth", None),
        ("/api/Order/Search", "new-key"),
    ]


async def test_a_401_with_a_fresh_key_fails_as_unauthorized_after_one_renewal():
    recorder = RequestRecorder(
        json_response(200, "k1"), json_response(401, {}), json_response(200, "k2"), json_response(401, {})
    )
    async with client(recorder.transport) as ms:
        with pytest.raises(Unauthorized):
            await ms.search_orders("GR-1")
    assert len(recorder.requests) == 4


async def test_refused_credentials_are_unauthorized_without_echoing_the_password():
    recorder = RequestRecorder(json_response(400, {"Message": "Invalid username or password"}))
    async with client(recorder.transport) as ms:
        with pytest.raises(Unauthorized) as raised:
            await ms.search_orders("GR-1")
    assert "ms-password" not in str(raised.value) and "ms-password" not in repr(raised.value)


async def test_concurrent_calls_share_one_authentication_and_one_renewal():
    auths = 0
    keys = iter(["k1", "k2"])

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal auths
        if request.url.path == "/api/Auth":
            auths += 1
            await asyncio.sleep(0.01)  # long enough for every caller to be waiting on it
            return httpx.Response(200, json=next(keys))
        if request.headers["ms-apikey"] == "k1" and request.url.params["OrderNumber"].startswith("late"):
            return httpx.Response(401, json={"Message": "expired"})
        return httpx.Response(200, json=[])

    async with client(httpx.MockTransport(handle)) as ms:
        await asyncio.gather(*(ms.search_orders(f"GR-{i}") for i in range(5)))
        assert auths == 1
        # Five calls find the key expired at once: one renewal serves them all.
        await asyncio.gather(*(ms.search_orders(f"late-{i}") for i in range(5)))
        assert auths == 2


async def test_statuses_are_read_once_per_client():
    statuses = [{"ID": 4, "Name": "DESPATCHED"}, {"ID": 5, "Name": "Cancelled"}]
    recorder = RequestRecorder(json_response(200, API_KEY), json_response(200, statuses))
    async with client(recorder.transport) as ms:
        assert await ms.order_statuses() == {"DESPATCHED": 4, "CANCELLED": 5}
        assert await ms.order_statuses() == {"DESPATCHED": 4, "CANCELLED": 5}
    assert len(recorder.requests) == 2


async def test_a_create_answered_by_a_5xx_is_not_repeated_by_the_client():
    recorder = RequestRecorder(json_response(200, API_KEY), json_response(502, {}))
    async with client(recorder.transport) as ms:
        with pytest.raises(Exception) as raised:
            await ms.create_order({"OrderNumber": "GR-1"})
    assert getattr(raised.value, "retryable", False) is True
    assert [r.method for r in recorder.requests] == ["POST", "PUT"]


async def test_courier_services_are_listed():
    services = [{"ID": 41, "Name": "Royal Mail Tracked 48"}]
    recorder = RequestRecorder(json_response(200, API_KEY), json_response(200, services))
    async with client(recorder.transport) as ms:
        assert await ms.courier_services() == services
    assert recorder.last.url.path == "/api/Courier/Services"
    assert json.loads(recorder.requests[0].content)["Username"] == "ms-user"
