"""HttpTransport: one httpx.AsyncClient per vendor account, with rate limiting and safe retries.

Requests go out through AiohttpTransport (aiohttp_transport.py says why), unless a test gives
its own transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from opentelemetry import trace

from libs.platform.metrics import EXTERNAL_RATE_LIMITED, EXTERNAL_REQUEST_DURATION, status_class
from libs.platform.telemetry import instrument_http_client

from .aiohttp_transport import AiohttpTransport
from .errors import (
    ConnectorError,
    InvalidRequest,
    InvalidResponse,
    RateLimited,
    Timeout,
    Unavailable,
)
from .ratelimit import Priority, RateLimiter

logger = logging.getLogger(__name__)

# Methods whose repetition has the same effect as one call (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 64

SPAN_OPERATION = "ordersync.connector.operation"
SPAN_CONNECTOR = "ordersync.connector.name"
SPAN_RETRIES = "ordersync.connector.retries"

Sleep = Callable[[float], Awaitable[None]]


def default_timeout(read_s: float = DEFAULT_READ_TIMEOUT_S) -> httpx.Timeout:
    """Connect 5 s; read, write and pool wait `read_s` (10 s unless a vendor's settings say)."""
    return httpx.Timeout(read_s, connect=DEFAULT_CONNECT_TIMEOUT_S)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How HttpTransport retries.

    Attributes:
        max_attempts: attempts in total, including the first (>= 1).
        base_delay_s: first backoff ceiling; doubles per attempt.
        max_delay_s: backoff ceiling cap.
        max_retry_after_s: a vendor's Retry-After longer than this is not slept on; the
            RateLimited/Unavailable error is raised with `retry_after` so the caller can
            schedule the retry instead of holding a worker.
    """

    max_attempts: int = 4
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, attempt: int, rand: float) -> float:
        """Full-jitter delay after failed attempt number `attempt` (1-based).

        Args:
            attempt: the attempt that just failed.
            rand: a uniform number in [0, 1).

        Returns:
            `rand * min(max_delay_s, base_delay_s * 2 ** (attempt - 1))`; full jitter spreads
            callers that failed together so they do not retry together.
        """
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return rand * ceiling


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Return the wait a Retry-After header asks for, in seconds, or None if absent/unreadable.

    Accepts delta-seconds ("7", also "1.5") and an HTTP-date; negative results become 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpTransport:
    """Async context manager around one httpx.AsyncClient for one vendor account.

    Start with `await start()` or `async with`; `stop()` is safe to call twice. A transport
    left started warns (ResourceWarning) when garbage-collected.

    Retry rules of `request` (what may be repeated without doing something twice):
      * 429, and failures where the request never left (connect error, connect/pool
        timeout), are always retried: the vendor did nothing.
      * Read timeouts, broken connections and 5xx are retried only for replay-safe calls:
        idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE), calls with an idempotency key,
        or calls the connector marks `retry_unsafe=True` (e.g. a POST that creates nothing).
        For other calls the outcome is unknown, so the error is raised at once and the
        caller reads back before sending again. A connector can also keep a replay-safe call
        from being repeated here (`retry_sent=False`) when its caller reads back first.
      * Waits: full-jitter exponential backoff (RetryPolicy), or Retry-After on 429/503.

    Args:
        connector: vendor name used in messages, logs and spans, e.g. "commerce7".
        base_url: vendor API root; request paths are joined to it.
        auth: httpx auth (e.g. httpx.BasicAuth).
        headers: default headers for every request (e.g. Commerce7's `tenant`).
        timeout: httpx timeouts; default connect 5 s, read 10 s.
        limits: connection pool limits; default 64 connections.
        max_concurrency: if set, at most this many requests are in flight; further callers
            queue here instead of failing with a pool timeout.
        retry: RetryPolicy.
        rate_limiter: if set, one token is taken from `rate_limiter` for `rate_limit_key`
            before every attempt (at the call's priority: see Priority), and a 429 pauses that key for everyone who shares the limiter (every replica, with a
            shared one).
        rate_limit_key: the key (e.g. the Commerce7 tenant id); required with rate_limiter.
        transport: httpx transport to use instead of the network (tests: MockTransport).
        sleep: coroutine used for backoff waits; injectable so tests do not sleep.
        jitter: returns uniform numbers in [0, 1) for backoff.
    """

    def __init__(
        self,
        *,
        connector: str,
        base_url: str,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        limits: httpx.Limits | None = None,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        rate_limit_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if rate_limiter is not None and not rate_limit_key:
            raise ValueError("rate_limit_key is required with a rate_limiter")
        self.connector = connector
        self.base_url = base_url
        self.retry = retry or RetryPolicy()
        self._auth = auth
        self._headers = {"Accept": "application/json", **dict(headers or {})}
        self._timeout = timeout or default_timeout()
        self._limits = limits or httpx.Limits(max_connections=DEFAULT_MAX_CONNECTIONS)
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._rate_limiter = rate_limiter
        self._rate_limit_key = rate_limit_key
        self._transport = transport
        self._sleep = sleep
        self._jitter = jitter
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    async def start(self) -> None:
        """Open the connection pool. Starting a started transport does nothing."""
        if self._closed:
            raise RuntimeError(f"{self.connector} transport was stopped; create a new one")
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                auth=self._auth,
                headers=self._headers,
                timeout=self._timeout,
                limits=self._limits,
                transport=self._transport or AiohttpTransport(limits=self._limits),
            )
            if self._transport is None:
                instrument_http_client(self._client)  # a span and traceparent per request, as before

    async def stop(self) -> None:
        """Close the connection pool; safe to call twice. In-flight requests fail."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __del__(self) -> None:
        # getattr: __init__ may have failed before the attribute existed.
        if getattr(self, "_client", None) is not None:
            warnings.warn(f"{self.connector} HttpTransport was not stopped", ResourceWarning, stacklevel=1)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        operation: str,
        retry_unsafe: bool = False,
        retry_sent: bool = True,
        priority: Priority = Priority.WRITE,
    ) -> httpx.Response:
        """Send one logical request, retrying what is safe to retry (see the class docstring).

        Args:
            method: HTTP method.
            path: path relative to base_url (callers quote ids they put in it).
            json: JSON body.
            data: form fields, sent as an application/x-www-form-urlencoded body (vendors
                taking form posts, e.g. CommerceInterface); not together with `json`.
            params: query parameters.
            headers: extra headers for this call.
            idempotency_key: sent as `Idempotency-Key`; makes the call replay-safe, so only
                pass one to a vendor that honours it.
            operation: connector operation name for spans, logs and error messages.
            retry_unsafe: the caller asserts a non-idempotent method is safe to repeat.
            retry_sent: False raises a read timeout, broken connection or 5xx at once even
                for a replay-safe call: the caller decides about repeating it (for instance
                after reading back, so that each repeat is a recorded attempt of its own).
            priority: the call's place in the rate budget: a connector whose vendor's
                budget is tight marks the calls that may wait (polling) READ, so they leave a
                token for writes; WRITE (the default) takes any token.

        Returns:
            The response, for any status that is not retried (2xx, 3xx, 4xx except 429):
            the connector's errors.py maps 4xx.

        Raises:
            RateLimited: 429 after the last attempt, or a Retry-After too long to wait.
            Unavailable: 5xx or connection failure after the last attempt (or at once for a
                non-replay-safe call).
            Timeout: no answer in time after the last attempt (or at once, as above).
            InvalidRequest: the request cannot be sent at all (bad URL or header).
            RuntimeError: the transport is not started.
            Cancellation propagates; a cancelled non-replay-safe call may have been applied.
        """
        client = self._client
        if client is None:
            raise RuntimeError(f"{self.connector} transport is not started")
        method = method.upper()
        replay_safe = retry_sent and (method in IDEMPOTENT_METHODS or idempotency_key is not None or retry_unsafe)
        send_headers = dict(headers or {})
        if idempotency_key is not None:
            send_headers["Idempotency-Key"] = idempotency_key

        span = trace.get_current_span()
        span.set_attribute(SPAN_CONNECTOR, self.connector)
        span.set_attribute(SPAN_OPERATION, operation)
        label = f"{self.connector} {operation}"

        attempt = 0
        while True:
            attempt += 1
            span.set_attribute(SPAN_RETRIES, attempt - 1)
            last = attempt >= self.retry.max_attempts
            if self._rate_limiter is not None and self._rate_limit_key is not None:
                await self._rate_limiter.acquire(self._rate_limit_key, priority)

            started = time.monotonic()
            try:
                async with self._slots or contextlib.nullcontext():
                    response = await client.request(
                        method, path, json=json, data=data, params=params, headers=send_headers
                    )
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                raise InvalidRequest(f"{label}: request cannot be sent ({type(exc).__name__})") from exc
            except httpx.TimeoutException as exc:
                self._observe(method, None, started)
                # Connect and pool timeouts happen before the request leaves this process.
                sent = not isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
                error: ConnectorError = Timeout(
                    f"{label}: no answer in time ({type(exc).__name__}) after {attempt} attempt(s)"
                )
                if (sent and not replay_safe) or last:
                    raise error from exc
                delay = self.retry.backoff(attempt, self._jitter())
                reason = type(exc).__name__
            except httpx.RequestError as exc:
                self._observe(method, None, started)
                # Everything else httpx raises for a request (broken connection, bad encoding
                # of the answer); only a refused connection proves nothing was sent.
                sent = not isinstance(exc, httpx.ConnectError)
                error = Unavailable(f"{label}: connection failed ({type(exc).__name__}) after {attempt} attempt(s)")
                if (sent and not replay_safe) or last:
                    raise error from exc
                delay = self.retry.backoff(attempt, self._jitter())
                reason = type(exc).__name__
            else:
                status = response.status_code
                self._observe(method, status, started)
                logger.debug(
                    "%s: HTTP %d in %.3fs (attempt %d)",
                    label,
                    status,
                    time.monotonic() - started,
                    attempt,
                )
                if status != 429 and status < 500:
                    return response
                retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
                if status == 429:
                    error = RateLimited(
                        f"{label}: rate limited (HTTP 429) after {attempt} attempt(s)",
                        retry_after=retry_after,
                    )
                else:
                    error = Unavailable(
                        f"{label}: HTTP {status} after {attempt} attempt(s)",
                        status_code=status,
                        retry_after=retry_after,
                    )
                delay = retry_after if retry_after is not None else self.retry.backoff(attempt, self._jitter())
                if status == 429 and self._rate_limiter is not None and self._rate_limit_key:
                    # Everyone on this key waits, not just this caller, and also when this
                    # caller gives up: the vendor's count is shared, and other callers would
                    # only collect 429s of their own.
                    await self._rate_limiter.pause(self._rate_limit_key, delay)
                too_long = retry_after is not None and retry_after > self.retry.max_retry_after_s
                # A 5xx can arrive after the vendor committed (a gateway timing out on a slow
                # backend), so only replay-safe calls repeat it; a 429 was never processed.
                if last or too_long or (status != 429 and not replay_safe):
                    raise error
                reason = f"HTTP {status}"

            logger.info(
                "%s: %s, retrying in %.2fs (attempt %d of %d)",
                label,
                reason,
                delay,
                attempt,
                self.retry.max_attempts,
            )
            await self._sleep(delay)

    def _observe(self, method: str, status: int | None, started: float) -> None:
        """Every attempt is one observation (a retried call is several), a 429 also counted."""
        EXTERNAL_REQUEST_DURATION.labels(self.connector, method, status_class(status)).observe(
            time.monotonic() - started
        )
        if status == 429:
            EXTERNAL_RATE_LIMITED.labels(self.connector).inc()


def json_body(response: httpx.Response, *, label: str) -> Any:
    """Decode a successful response's JSON body.

    Args:
        response: a 2xx response.
        label: "<connector> <operation>" for the error message.

    Raises:
        InvalidResponse: the body is empty, not JSON, or nested too deeply to decode.
    """
    try:
        return response.json()
    except (ValueError, RecursionError) as exc:  # a hostile body nests past the decoder's recursion limit
        raise InvalidResponse(
            f"{label}: HTTP {response.status_code} body is not JSON",
            status_code=response.status_code,
        ) from exc


def path_segment(value: str, *, what: str) -> str:
    """Quote `value` for use as one URL path segment.

    Ids and order numbers reach us from webhooks; quoting (and refusing "." and "..", which
    URL normalisation would resolve) keeps a hostile value from changing which path we call.

    Raises:
        InvalidRequest: the value is empty, "." or "..".
    """
    if not isinstance(value, str) or value.strip() in ("", ".", ".."):
        raise InvalidRequest(f"{what} is missing or not a valid path segment")
    return quote(value, safe="")


def same_site_link(base: httpx.URL, link: str) -> httpx.URL | None:
    """Return `link` parsed when it points at `base`'s own site and under its path, else None.

    Vendors' thin webhooks carry a URL to read back; it is followed only when its scheme, host
    and port are the account's API and it carries no credentials, so a forged body cannot make
    us send the account's credentials elsewhere. Callers then check the path that remains
    (`link.path` after `base.path`).
    """
    try:
        url = httpx.URL(link)
    except (httpx.InvalidURL, TypeError):
        return None
    if url.scheme != base.scheme or url.host != base.host or url.port != base.port or url.userinfo:
        return None
    if not url.path.startswith(base.path.rstrip("/")):
        return None
    return url


def json_object(response: httpx.Response, *, label: str) -> dict[str, Any]:
    """Decode a successful response whose body must be a JSON object.

    Raises:
        InvalidResponse: the body is not JSON or not an object.
    """
    body = json_body(response, label=label)
    if not isinstance(body, dict):
        raise InvalidResponse(f"{label}: body is not a JSON object", status_code=response.status_code)
    return body


class ConnectorClient:
    """Base of every vendor client: owns one HttpTransport (`self._http`) and its lifecycle.

    Subclasses build `self._http` in `__init__` and add one method per vendor operation.
    """

    _http: HttpTransport

    async def start(self) -> None:
        """Open the connection pool."""
        await self._http.start()

    async def stop(self) -> None:
        """Close the connection pool; safe to call twice."""
        await self._http.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
