"""Tests of the simulators' shared building blocks."""

from __future__ import annotations

import base64

import httpx
import pytest
from aiohttp import web

from tests.simulators.common import (
    Fault,
    FaultQueue,
    FixedWindowRateLimiter,
    SimulatorServer,
    WebhookDispatcher,
    credentials_match,
    iso_from_epoch,
    parse_basic_auth,
)

pytestmark = [pytest.mark.timeout(10), pytest.mark.filterwarnings("error")]


def test_basic_auth_header_is_parsed_and_garbage_is_rejected() -> None:
    token = base64.b64encode(b"app:se:cret").decode()
    assert parse_basic_auth(f"Basic {token}") == ("app", "se:cret")
    assert parse_basic_auth("Bearer abc") is None
    assert parse_basic_auth("Basic !!!") is None
    assert parse_basic_auth(None) is None


def test_credentials_must_match_in_both_parts() -> None:
    assert credentials_match(("app", "secret"), "app", "secret")
    assert not credentials_match(("app", "secre"), "app", "secret")
    assert not credentials_match(("ap", "secret"), "app", "secret")
    assert not credentials_match(None, "", "")


def test_rate_limiter_reopens_after_the_window() -> None:
    now = [100.0]
    limiter = FixedWindowRateLimiter(2, 60.0, clock=lambda: now[0])
    assert [limiter.hit("t"), limiter.hit("t")] == [None, None]
    now[0] = 130.0
    assert limiter.hit("t") == pytest.approx(30.0)
    assert limiter.hit("other") is None
    now[0] = 160.0
    assert limiter.hit("t") is None


def test_fault_queue_consumes_counts_first_in_first_out() -> None:
    faults = FaultQueue()
    faults.add(Fault(route="create", status=503, count=2))
    faults.add(Fault(route="*", status=500))
    taken = [faults.take("get_order"), faults.take("create"), faults.take("create"), faults.take("create")]
    assert [f.status if f else None for f in taken] == [500, 503, 503, None]
    assert faults.pending() == []


def test_timestamps_have_milliseconds_and_z() -> None:
    assert iso_from_epoch(0.0015) == "1970-01-01T00:00:00.001Z"


@pytest.mark.asyncio
async def test_server_reports_its_port_and_stops_twice_safely() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    server = await SimulatorServer(app).start()
    async with httpx.AsyncClient(trust_env=False) as http:
        assert (await http.get(server.base_url)).text == "ok"
    await server.stop()
    await server.stop()
    with pytest.raises(RuntimeError):
        _ = server.base_url


@pytest.mark.asyncio
async def test_stopping_the_dispatcher_fails_undelivered_webhooks() -> None:
    dispatcher = WebhookDispatcher(retries=5, backoff_s=10.0, timeout_s=0.5)
    await dispatcher.start()
    delivery = dispatcher.enqueue("http://127.0.0.1:9/nowhere", "TEST", "k", b"{}", {})
    await dispatcher.stop()
    await dispatcher.stop()
    outcome = await dispatcher.wait(delivery)
    assert outcome["state"] == "failed" and outcome["error"]
