"""Tests of HttpTransport: what is retried, how long it waits, and what it raises."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from libs.connectors.base.errors import InvalidRequest, InvalidResponse, RateLimited, Timeout, Unavailable
from libs.connectors.base.http import HttpTransport, RetryPolicy, json_body
from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.base.testing import FakeClock, RequestRecorder, json_response

pytestmark = pytest.mark.asyncio

OK = {"ok": True}


def make_transport(recorder: RequestRecorder, clock: FakeClock, **options: object) -> HttpTransport:
    """The one valid transport of this suite: jitter pinned to 1.0 so waits are the ceilings."""
    return HttpTransport(
        connector="acme",
        base_url="https://api.acme.test/v1",
        transport=recorder.transport,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
        **options,  # type: ignore[arg-type]
    )


async def test_get_is_retried_after_503_then_succeeds() -> None:
    recorder = RequestRecorder(json_response(503), json_response(503), json_response(200, OK))
    clock = FakeClock()
    async with make_transport(recorder, clock) as http:
        response = await http.request("GET", "/things/1", operation="get_thing")
    assert response.status_code == 200
    assert len(recorder.requests) == 3
    assert recorder.last.url == "https://api.acme.test/v1/things/1"
    # Full jitter with rand=1.0 waits the ceiling: base 0.2 s, doubling.
    assert clock.sleeps == [0.2, 0.4]


async def test_429_waits_for_retry_after_then_succeeds() -> None:
    recorder = RequestRecorder(json_response(429, headers={"Retry-After": "2"}), json_response(200, OK))
    clock = FakeClock()
    async with make_transport(recorder, clock) as http:
        response = await http.request("POST", "/things", json={"a": 1}, operation="create_thing")
    assert response.status_code == 200
    assert len(recorder.requests) == 2
    assert clock.sleeps == [2.0]


async def test_503_with_retry_after_waits_for_it() -> None:
    recorder = RequestRecorder(json_response(503, headers={"Retry-After": "1.5"}), json_response(200, OK))
    clock = FakeClock()
    async with make_transport(recorder, clock) as http:
        await http.request("GET", "/things", operation="list_things")
    assert clock.sleeps == [1.5]


async def test_429_pauses_the_rate_limit_key_for_every_caller() -> None:
    limiter_clock = FakeClock()
    limiter = KeyedRateLimiter(100, clock=limiter_clock, sleep=limiter_clock.sleep)
    recorder = RequestRecorder(json_response(429, headers={"Retry-After": "3"}), json_response(200, OK))
    # The transport's own sleep does not advance the limiter's clock, so the retry meets the
    # pause the 429 put on the key, as any other caller of that key would.
    transport_clock = FakeClock()
    async with make_transport(recorder, transport_clock, rate_limiter=limiter, rate_limit_key="tenant-a") as http:
        await http.request("GET", "/things", operation="list_things")
    assert transport_clock.sleeps == [3.0]
    assert limiter_clock.sleeps[0] == pytest.approx(3.0)


async def test_post_is_not_retried_after_a_read_timeout() -> None:
    recorder = RequestRecorder(httpx.ReadTimeout)
    clock = FakeClock()
    async with make_transport(recorder, clock) as http:
        with pytest.raises(Timeout) as caught:
            await http.request("POST", "/things", json={"a": 1}, operation="create_thing")
    assert len(recorder.requests) == 1
    assert caught.value.retryable is True
    assert caught.value.reason_code == "PROVIDER_TIMEOUT"


async def test_post_is_not_retried_after_a_503() -> None:
    recorder = RequestRecorder(json_response(503))
    async with make_transport(recorder, FakeClock()) as http:
        with pytest.raises(Unavailable) as caught:
            await http.request("POST", "/things", json={}, operation="create_thing")
    assert len(recorder.requests) == 1
    assert caught.value.status_code == 503


async def test_post_is_retried_after_a_connect_error_because_nothing_was_sent() -> None:
    recorder = RequestRecorder(httpx.ConnectError, json_response(201, OK))
    async with make_transport(recorder, FakeClock()) as http:
        response = await http.request("POST", "/things", json={}, operation="create_thing")
    assert response.status_code == 201
    assert len(recorder.requests) == 2


async def test_post_marked_retry_unsafe_is_retried_after_a_read_timeout() -> None:
    recorder = RequestRecorder(httpx.ReadTimeout, json_response(200, OK))
    async with make_transport(recorder, FakeClock()) as http:
        await http.request("POST", "/check", json={}, operation="check", retry_unsafe=True)
    assert len(recorder.requests) == 2


async def test_idempotency_key_is_sent_and_makes_a_post_retryable() -> None:
    recorder = RequestRecorder(httpx.ReadTimeout, json_response(200, OK))
    async with make_transport(recorder, FakeClock()) as http:
        await http.request("POST", "/things", json={}, idempotency_key="k-123", operation="create_thing")
    assert len(recorder.requests) == 2
    assert [r.headers["Idempotency-Key"] for r in recorder.requests] == ["k-123", "k-123"]


async def test_put_is_retried_after_a_read_timeout() -> None:
    recorder = RequestRecorder(httpx.ReadTimeout, json_response(200, OK))
    async with make_transport(recorder, FakeClock()) as http:
        await http.request("PUT", "/things/1", json={}, operation="update_thing")
    assert len(recorder.requests) == 2


async def test_put_marked_retry_sent_false_is_left_to_the_caller_after_a_timeout_or_5xx() -> None:
    for failure in (httpx.ReadTimeout, json_response(502)):
        recorder = RequestRecorder(failure, json_response(200, OK))
        async with make_transport(recorder, FakeClock()) as http:
            with pytest.raises((Timeout, Unavailable)):
                await http.request("PUT", "/things/1", json={}, operation="put_thing", retry_sent=False)
        assert len(recorder.requests) == 1


async def test_put_marked_retry_sent_false_is_still_retried_when_nothing_was_sent() -> None:
    recorder = RequestRecorder(
        httpx.ConnectError, json_response(429, headers={"Retry-After": "0"}), json_response(200, OK)
    )
    async with make_transport(recorder, FakeClock()) as http:
        response = await http.request("PUT", "/things/1", json={}, operation="put_thing", retry_sent=False)
    assert response.status_code == 200 and len(recorder.requests) == 3


async def test_exhausted_5xx_retries_raise_unavailable() -> None:
    recorder = RequestRecorder(*(json_response(502) for _ in range(3)))
    clock = FakeClock()
    async with make_transport(recorder, clock, retry=RetryPolicy(max_attempts=3)) as http:
        with pytest.raises(Unavailable) as caught:
            await http.request("GET", "/things", operation="list_things")
    assert len(recorder.requests) == 3
    assert caught.value.status_code == 502
    assert caught.value.reason_code == "PROVIDER_UNAVAILABLE"
    assert "after 3 attempt(s)" in caught.value.message


async def test_exhausted_read_timeouts_raise_timeout() -> None:
    recorder = RequestRecorder(*([httpx.ReadTimeout] * 4))
    async with make_transport(recorder, FakeClock()) as http:
        with pytest.raises(Timeout):
            await http.request("GET", "/things", operation="list_things")
    assert len(recorder.requests) == 4


async def test_exhausted_429_retries_raise_rate_limited_with_retry_after() -> None:
    recorder = RequestRecorder(*(json_response(429, headers={"Retry-After": "1"}) for _ in range(2)))
    async with make_transport(recorder, FakeClock(), retry=RetryPolicy(max_attempts=2)) as http:
        with pytest.raises(RateLimited) as caught:
            await http.request("GET", "/things", operation="list_things")
    assert caught.value.retry_after == 1.0
    assert caught.value.retryable is True


async def test_retry_after_longer_than_the_policy_allows_is_raised_not_slept() -> None:
    recorder = RequestRecorder(json_response(429, headers={"Retry-After": "120"}))
    clock = FakeClock()
    async with make_transport(recorder, clock) as http:
        with pytest.raises(RateLimited) as caught:
            await http.request("GET", "/things", operation="list_things")
    assert caught.value.retry_after == 120.0
    assert clock.sleeps == []


async def test_client_errors_are_returned_for_the_connector_to_map() -> None:
    recorder = RequestRecorder(json_response(404, {"message": "no"}))
    async with make_transport(recorder, FakeClock()) as http:
        response = await http.request("GET", "/things/9", operation="get_thing")
    assert response.status_code == 404
    assert len(recorder.requests) == 1


async def test_unsupported_url_scheme_is_an_invalid_request() -> None:
    http = HttpTransport(connector="acme", base_url="ftp://files.acme.test")
    async with http:
        with pytest.raises(InvalidRequest):
            await http.request("GET", "/x", operation="get_x")


async def test_default_headers_and_auth_are_sent() -> None:
    recorder = RequestRecorder(json_response(200, OK))
    async with make_transport(
        recorder, FakeClock(), auth=httpx.BasicAuth("user", "pass"), headers={"tenant": "t-1"}
    ) as http:
        await http.request("GET", "/things", params={"q": "x"}, operation="list_things")
    request = recorder.last
    assert request.headers["Authorization"] == "Basic dXNlcjpwYXNz"
    assert request.headers["tenant"] == "t-1"
    assert request.headers["Accept"] == "application/json"
    assert request.url.params["q"] == "x"


async def test_stop_twice_is_safe_and_a_stopped_transport_refuses_requests() -> None:
    http = make_transport(RequestRecorder(), FakeClock())
    with pytest.raises(RuntimeError):
        await http.request("GET", "/x", operation="get_x")
    await http.start()
    await http.stop()
    await http.stop()
    with pytest.raises(RuntimeError):
        await http.request("GET", "/x", operation="get_x")


async def test_operation_and_retry_count_are_recorded_on_the_current_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    recorder = RequestRecorder(json_response(503), json_response(200, OK))
    async with make_transport(recorder, FakeClock()) as http:
        with tracer.start_as_current_span("caller") as span:
            await http.request("GET", "/things", operation="list_things")
            assert trace.get_current_span() is span
    assert isinstance(span, ReadableSpan)  # the SDK's spans keep their attributes
    attributes = dict(span.attributes or {})
    assert attributes["ordersync.connector.operation"] == "list_things"
    assert attributes["ordersync.connector.name"] == "acme"
    assert attributes["ordersync.connector.retries"] == 1


async def test_a_body_nested_past_the_decoder_limit_is_an_invalid_response_not_a_crash() -> None:
    hostile = httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(InvalidResponse, match="acme get_x: HTTP 200 body is not JSON"):
        json_body(hostile, label="acme get_x")
