"""Fixtures for the simulators' own tests: running simulators, a webhook receiver, an HTTP client."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest_asyncio
from aiohttp import web

from tests.simulators import commerce7, vinoshipper
from tests.simulators.common import SimulatorServer

# Fast retries keep webhook tests well under a second.
FAST_WEBHOOKS = {"webhook_retries": 2, "webhook_backoff_s": 0.01, "webhook_timeout_s": 2.0}

C7_TENANT = {"tenant_id": "cellar", "app_id": "app-1", "app_secret": "secret-1"}
VS_PRODUCER = {
    "producer_id": "winery",
    "api_key": "key-1",
    "api_secret": "vs-secret-1",
    "products": ["CAB-750", "CHARD-750"],
    "licensed_states": ["CA", "OR", "WA"],
}


@dataclasses.dataclass
class Received:
    """One request a receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook endpoint that records requests and answers queued statuses, then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"seen": len(self.requests)}, status=status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app


async def eventually(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 3.0) -> None:
    """Poll `check` until it is true; fail the test after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        outcome = check()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running webhook receiver; its `url` accepts POSTs on any path."""
    sink = Receiver()
    async with SimulatorServer(sink.app()) as server:
        sink.url = f"{server.base_url}/hooks"
        yield sink


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that ignores proxy settings from the environment."""
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
        yield client


async def run_c7(**overrides: Any) -> SimulatorServer:
    """Start a Commerce7 simulator with one tenant and fast webhook retries."""
    config = commerce7.Commerce7Config(**({"tenants": [dict(C7_TENANT)]} | FAST_WEBHOOKS | overrides))
    return await SimulatorServer(commerce7.create_app(config)).start()


async def run_vs(**overrides: Any) -> SimulatorServer:
    """Start a Vinoshipper simulator with one producer and fast webhook retries."""
    config = vinoshipper.VinoshipperConfig(**({"producers": [dict(VS_PRODUCER)]} | FAST_WEBHOOKS | overrides))
    return await SimulatorServer(vinoshipper.create_app(config)).start()


@pytest_asyncio.fixture
async def c7() -> AsyncIterator[SimulatorServer]:
    """A running Commerce7 simulator with tenant `cellar`."""
    server = await run_c7()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def vs() -> AsyncIterator[SimulatorServer]:
    """A running Vinoshipper simulator with producer `winery`."""
    server = await run_vs()
    yield server
    await server.stop()
