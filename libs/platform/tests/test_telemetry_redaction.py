"""Credentials some vendors take in the query string never reach an exported span."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.platform import telemetry
from libs.platform.telemetry import redact_secret_query

pytestmark = pytest.mark.asyncio


async def test_secret_parameters_are_redacted_in_any_case_and_others_kept() -> None:
    url = "https://scm.example/api/v4/get_orders?supplier_id=48213&token=s3cr3t&page=2&APIKey=k3y"
    assert redact_secret_query(url) == (
        "https://scm.example/api/v4/get_orders?supplier_id=48213&token=REDACTED&page=2&APIKey=REDACTED"
    )


async def test_a_url_without_secrets_is_left_as_it_was() -> None:
    url = "https://api.example/orders?page=1&sort=a%20b"
    assert redact_secret_query(url) == url
    assert redact_secret_query("https://api.example/orders") == "https://api.example/orders"


async def test_an_instrumented_request_exports_its_url_without_the_token(unused_tcp_port: int) -> None:
    async def get_orders(request: web.Request) -> web.Response:
        return web.json_response({"success": True})

    app = web.Application()
    app.router.add_get("/get_orders", get_orders)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = HTTPXClientInstrumentor()  # one per process: a service test may have set it up
    was_instrumented = instrumentor.is_instrumented_by_opentelemetry
    if was_instrumented:
        instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=provider,
        request_hook=telemetry._redact_span_url,
        async_request_hook=telemetry._redact_span_url_async,
    )
    try:
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{unused_tcp_port}/get_orders?supplier_id=7&token=s3cr3t"
            assert (await client.get(url)).status_code == 200
    finally:
        instrumentor.uninstrument()
        if was_instrumented:  # as the services instrument it
            instrumentor.instrument(
                request_hook=telemetry._redact_span_url, async_request_hook=telemetry._redact_span_url_async
            )
        await runner.cleanup()
    [span] = exporter.get_finished_spans()
    urls = [str(v) for k, v in (span.attributes or {}).items() if k in ("url.full", "http.url")]
    assert urls, "the span carries the request's URL"
    assert all("s3cr3t" not in u and "token=REDACTED" in u and "supplier_id=7" in u for u in urls)
