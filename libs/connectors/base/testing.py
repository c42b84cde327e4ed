"""Connector test helpers: a recording httpx.MockTransport, response builders, vendor samples."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

_CONNECTORS_DIR = Path(__file__).resolve().parent.parent

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
# What a RequestRecorder answers with: a response, a handler (sync or async), or an httpx
# exception class raised as if the network failed (e.g. httpx.ReadTimeout).
Reply = httpx.Response | Handler | type[httpx.TransportError]


class RequestRecorder:
    """Records every request and answers each with the next queued reply, in order.

    Use `recorder.transport` as the connector client's transport. A request arriving after
    the queue is empty fails the test with an AssertionError naming it.
    """

    def __init__(self, *replies: Reply) -> None:
        self.requests: list[httpx.Request] = []
        self._replies: deque[Reply] = deque(replies)
        self.transport = httpx.MockTransport(self._handle)

    def add(self, *replies: Reply) -> None:
        """Queue more replies."""
        self._replies.extend(replies)

    @property
    def last(self) -> httpx.Request:
        """The most recent request."""
        assert self.requests, "no request was sent"
        return self.requests[-1]

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        # Async, as MockTransport's handler type wants one kind; connectors' clients are async.
        self.requests.append(request)
        if not self._replies:
            raise AssertionError(f"unexpected request {request.method} {request.url.path}")
        reply = self._replies.popleft()
        if isinstance(reply, httpx.Response):
            return reply
        if isinstance(reply, type):  # an httpx.TransportError class
            raise reply("simulated network failure", request=request)
        answer = reply(request)
        return answer if isinstance(answer, httpx.Response) else await answer


def json_response(status_code: int, body: Any = None, *, headers: dict[str, str] | None = None) -> httpx.Response:
    """Build a JSON response (no body when `body` is None)."""
    if body is None:
        return httpx.Response(status_code, headers=headers)
    return httpx.Response(status_code, json=body, headers=headers)


def request_json(request: httpx.Request) -> Any:
    """Decode a recorded request's JSON body."""
    return json.loads(request.content)


def load_vendor_json(connector: str, name: str) -> Any:
    """Load `libs/connectors/<connector>/vendor/<name>` freshly (callers may mutate it).

    Raises:
        ValueError: connector or name is not a plain file name.
        FileNotFoundError: no such sample.
    """
    for part in (connector, name):
        if not part or "/" in part or "\\" in part or part.startswith("."):
            raise ValueError(f"not a plain name: {part!r}")
    return json.loads((_CONNECTORS_DIR / connector / "vendor" / name).read_text("utf-8"))


class FakeClock:
    """A monotonic clock and sleep pair for tests: sleeping advances the clock instantly.

    Pass `clock` (the instance itself) and `clock.sleep` wherever a clock/sleep is injectable;
    `sleeps` records every requested wait.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        # Yield like a real sleep so other tasks get to run.
        await asyncio.sleep(0)


@dataclass(frozen=True)
class ContractSamples:
    """What the contract suite (libs/connectors/tests/test_contract.py) needs of one connector.

    Every connector's `tests/contract_samples.py` defines `SAMPLES = ContractSamples(...)`.

    Attributes:
        account: an account section as in the tenants file; secrets as `env:NAME` references.
        secrets: the values of those variables.
        push_bodies: valid pushed orders (channels with PUSH_ORDERS), each for `account`.
        push_headers / push_path_tail: what authenticates a push for `account`.
        notice_bodies: valid notices (providers with PUSH_NOTICES).
        notice_headers / notice_path_tail: what authenticates a notice for `account`.
        order: a canonical order to number and submit (providers).
        pull_headers: what authenticates the provider's pull for `account` (PULLED_BY_PROVIDER).
        pull_export: the (method, query) of the provider's call for an export page.
        posted_shipments: valid bodies the pulling provider posts back, each naming an order.
    """

    account: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    push_bodies: tuple[bytes, ...] = ()
    push_headers: dict[str, str] = field(default_factory=dict)
    push_path_tail: str = ""
    notice_bodies: tuple[bytes, ...] = ()
    notice_headers: dict[str, str] = field(default_factory=dict)
    notice_path_tail: str = ""
    order: Any = None  # order_pb2.Order
    pull_headers: dict[str, str] = field(default_factory=dict)
    pull_export: tuple[str, dict[str, str]] = ("GET", {})
    posted_shipments: tuple[bytes, ...] = ()


def vendor_bytes(connector: str, name: str) -> bytes:
    """The raw bytes of a vendor sample, for parsers that take a request body."""
    return (_CONNECTORS_DIR / connector / "vendor" / name).read_bytes()
