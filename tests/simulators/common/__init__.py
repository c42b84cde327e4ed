"""Shared building blocks of the vendor simulators: auth, rate limits, faults, webhooks, serving."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import dataclasses
import hmac
import importlib.util
import json
import math
import signal
import sys
import time
import warnings
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiohttp import web

if importlib.util.find_spec("sniffio") is None:
    # httpcore retries `import sniffio` on every request when it is absent, and a failed
    # import is not cached: it walks sys.path each time, halving webhook throughput.
    # Recording the absence makes the retry fail at once; httpcore then assumes asyncio.
    sys.modules["sniffio"] = None  # type: ignore[assignment]

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Receivers may answer with large pages; the log only needs enough to diagnose.
MAX_LOGGED_BODY = 4096


# --- time -------------------------------------------------------------------------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_from_epoch_ms(epoch_ms: int) -> str:
    """Return whole milliseconds since the epoch as ISO-8601 UTC with a `Z` suffix."""
    # Integer arithmetic: float seconds can truncate 1 ms low and repeat the previous stamp.
    moment = EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_epoch(epoch_s: float) -> str:
    """Return `epoch_s` as ISO-8601 UTC with milliseconds and a `Z` suffix."""
    return iso_from_epoch_ms(math.floor(epoch_s * 1000))


def epoch_ms_from_iso(value: str) -> int:
    """Return the whole milliseconds since the epoch of an ISO-8601 timestamp."""
    delta = parse_iso_datetime(value) - EPOCH
    return delta // timedelta(milliseconds=1)


def iso_now() -> str:
    """Return the current time in the vendors' ISO-8601 form (`2024-05-01T12:00:00.000Z`)."""
    return iso_from_epoch(time.time())


def parse_iso_datetime(value: str) -> datetime:
    """Parse an ISO-8601 date or date-time; naive values are taken as UTC.

    Raises ValueError when `value` is not ISO-8601.
    """
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- errors and JSON bodies ----------------------------------------------------------


class SimError(Exception):
    """An HTTP error answer, raised anywhere in a handler and rendered by a middleware."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None):
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        """Render the error as a JSON response."""
        return web.json_response(self.body, status=self.status, headers=self.headers)


def control_error(status: int, message: str) -> SimError:
    """Return the error shape of the `/_sim` control API: `{"error": message}`."""
    return SimError(status, {"error": message})


@web.middleware
async def control_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render SimError raised by control handlers; vendor middlewares render their own."""
    try:
        return await handler(request)
    except SimError as exc:
        return exc.response()


async def read_json_object(request: web.Request) -> dict[str, Any] | None:
    """Return the request body as a JSON object, `{}` when empty, or None when it is not an object."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def read_control_body(request: web.Request) -> dict[str, Any]:
    """Return a control request's JSON object body; raises a 400 control error otherwise."""
    body = await read_json_object(request)
    if body is None:
        raise control_error(400, "request body must be a JSON object")
    return body


def flag(body: Mapping[str, Any], name: str, default: bool) -> bool:
    """Return the boolean `body[name]`; raises a 400 control error when it is not a boolean."""
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise control_error(400, f"'{name}' must be a boolean")
    return value


def route(name: str) -> Callable[[T], T]:
    """Tag a vendor handler with the route name used by stats and fault matching."""

    def tag(handler: T) -> T:
        handler.sim_route = name  # type: ignore[attr-defined]
        return handler

    return tag


def route_of(request: web.Request) -> str:
    """Return the route name of the handler matched for `request`, or "unknown"."""
    return getattr(request.match_info.handler, "sim_route", "unknown")


# --- basic auth ---------------------------------------------------------------------


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """Return (user, password) from an `Authorization: Basic ...` header, or None if absent or malformed."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def basic_auth_header(user: str, password: str) -> str:
    """Return the `Authorization` header value for HTTP Basic credentials."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def credentials_match(given: tuple[str, str] | None, user: str, password: str) -> bool:
    """Compare credentials in constant time, so response timing does not reveal a prefix match."""
    given_user, given_password = given if given is not None else ("", "\x00")
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return given is not None and user_ok & password_ok


# --- rate limiting ------------------------------------------------------------------


class FixedWindowRateLimiter:
    """Counts requests per key in fixed windows that open at a key's first request.

    A window per key, rather than one aligned to the wall clock, keeps tests that
    exhaust a small limit from flaking when they straddle a minute boundary.
    """

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[str, list[float]] = {}

    def hit(self, key: str) -> float | None:
        """Count one request for `key`; return None if allowed, else seconds until the window resets.

        A limit of 0 or less disables limiting.
        """
        if self.limit <= 0:
            return None
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now >= window[0] + self.window_s:
            window = self._windows[key] = [now, 0]
        if window[1] >= self.limit:
            return window[0] + self.window_s - now
        window[1] += 1
        return None

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()


def retry_after_header(wait_s: float) -> dict[str, str]:
    """Return a `Retry-After` header in whole seconds, never below one."""
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}


# --- fault injection ----------------------------------------------------------------


@dataclasses.dataclass
class Fault:
    """One injected misbehaviour for the next `count` requests to `route` ("*" matches all)."""

    route: str
    status: int | None = None
    count: int = 1
    delay_s: float = 0.0
    after_create: bool = False

    def as_dict(self) -> dict[str, Any]:
        """Return the fault as JSON-ready data."""
        return dataclasses.asdict(self)


class FaultQueue:
    """Pending faults, consumed first in, first out by matching requests."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue `fault` behind those already pending."""
        self._faults.append(fault)

    def take(self, route_name: str) -> Fault | None:
        """Consume one use of the first fault matching `route_name`; return it, or None."""
        for fault in self._faults:
            if fault.route in ("*", route_name):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return dataclasses.replace(fault, count=1)
        return None

    def pending(self) -> list[dict[str, Any]]:
        """Return the faults still queued."""
        return [fault.as_dict() for fault in self._faults]

    def clear(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()


def parse_fault(body: Mapping[str, Any], routes: Iterable[str], *, allow_after_create: bool) -> Fault:
    """Validate a `POST /_sim/faults` body; raises a 400 control error naming the bad field."""
    known = {"route", "status", "count", "delay_s"} | ({"after_create"} if allow_after_create else set())
    unknown = sorted(set(body) - known)
    if unknown:
        raise control_error(400, f"unknown field(s): {', '.join(unknown)}")
    valid_routes = {"*", *routes}
    route_name = body.get("route")
    if route_name not in valid_routes:
        raise control_error(400, f"'route' must be one of {sorted(valid_routes)}")
    fault = Fault(
        route=route_name,
        status=_fault_status(body.get("status")),
        count=_fault_count(body.get("count", 1)),
        delay_s=_fault_delay(body.get("delay_s", 0.0)),
        after_create=flag(body, "after_create", False),
    )
    if fault.status is None and not fault.delay_s:
        raise control_error(400, "a fault needs 'status', 'delay_s' or both")
    if fault.after_create and fault.status is None:
        raise control_error(400, "'after_create' needs a 'status'")
    return fault


def _fault_status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise control_error(400, "'status' must be an integer from 400 to 599")
    return value


def _fault_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise control_error(400, "'count' must be a positive integer")
    return value


def _fault_delay(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise control_error(400, "'delay_s' must be a non-negative number")
    return float(value)


# --- webhooks -----------------------------------------------------------------------


@dataclasses.dataclass
class WebhookDelivery:
    """One webhook message and the record of every attempt to deliver it.

    `status_code`, `error` and `body` (the receiver's answer, truncated) describe the
    latest attempt; `state` is "pending", "delivered" or "failed".
    """

    id: int
    url: str
    event: str
    key: str
    payload: bytes
    headers: dict[str, str]
    enqueued_at: float
    done: asyncio.Future[None]
    state: str = "pending"
    status_code: int | None = None
    error: str | None = None
    body: str | None = None
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Return the delivery's record: target, state, last outcome and all attempts."""
        return {
            "id": self.id,
            "url": self.url,
            "event": self.event,
            "key": self.key,
            "state": self.state,
            "status_code": self.status_code,
            "error": self.error,
            "body": self.body,
            "enqueued_at": self.enqueued_at,
            "attempts": list(self.attempts),
        }


@dataclasses.dataclass
class WebhookSettings:
    """How a simulator delivers its webhooks; each simulator's config extends it, so the JSON
    config file takes `webhook_retries`, `webhook_backoff_s`, `webhook_timeout_s` and
    `webhook_workers` alike everywhere."""

    webhook_retries: int = 3
    webhook_backoff_s: float = 0.2
    webhook_timeout_s: float = 5.0
    webhook_workers: int = 8

    def webhook_dispatcher(self) -> WebhookDispatcher:
        return WebhookDispatcher(
            retries=self.webhook_retries,
            backoff_s=self.webhook_backoff_s,
            timeout_s=self.webhook_timeout_s,
            workers=self.webhook_workers,
        )


class WebhookDispatcher:
    """Delivers webhooks from background workers, retrying failures with doubling backoff.

    Deliveries sharing a key (an order) go through the same worker, so a receiver sees
    one order's events in the order they happened while other orders proceed in parallel.
    `start` and `stop` bracket the workers; `stop` is safe twice and marks undelivered
    messages failed, resolving anyone waiting on them.
    """

    def __init__(self, retries: int = 3, backoff_s: float = 0.2, timeout_s: float = 5.0, workers: int = 8):
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._worker_count = max(1, workers)
        self._queues: list[asyncio.Queue[WebhookDelivery]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._log: list[WebhookDelivery] = []
        self._unfinished: dict[int, WebhookDelivery] = {}
        self._next_id = 1

    async def start(self) -> None:
        """Open the HTTP client and start the workers."""
        if self._client is not None:
            return
        # Proxy settings from the environment must not capture deliveries to local receivers.
        self._client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False)
        self._queues = [asyncio.Queue() for _ in range(self._worker_count)]
        self._tasks = [asyncio.create_task(self._work(queue)) for queue in self._queues]

    async def stop(self) -> None:
        """Cancel and await the workers, fail undelivered messages, close the client."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for delivery in list(self._unfinished.values()):
            self._finish(delivery, "failed", error=delivery.error or "simulator stopped")
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def enqueue(self, url: str, event: str, key: str, payload: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """Queue `payload` for POSTing to `url`; returns the delivery record at once.

        Raises RuntimeError when the dispatcher is not running.
        """
        if self._client is None:
            raise RuntimeError("webhook dispatcher is not running")
        delivery = WebhookDelivery(
            id=self._next_id,
            url=url,
            event=event,
            key=key,
            payload=payload,
            headers=dict(headers),
            enqueued_at=time.time(),
            done=asyncio.get_running_loop().create_future(),
        )
        self._next_id += 1
        self._log.append(delivery)
        self._unfinished[delivery.id] = delivery
        self._queues[zlib.crc32(key.encode()) % len(self._queues)].put_nowait(delivery)
        return delivery

    async def wait(self, delivery: WebhookDelivery) -> dict[str, Any]:
        """Wait for the delivery's final outcome and return its record."""
        # Shielded: a cancelled waiter must not cancel the shared completion future.
        await asyncio.shield(delivery.done)
        return delivery.summary()

    def deliveries(self, key: str | None = None) -> list[dict[str, Any]]:
        """Return every delivery record, optionally only those for `key`."""
        return [d.summary() for d in self._log if key is None or d.key == key]

    def clear_log(self) -> None:
        """Forget past deliveries; those in flight still complete."""
        self._log.clear()

    async def _work(self, queue: asyncio.Queue[WebhookDelivery]) -> None:
        while True:
            delivery = await queue.get()
            try:
                await self._deliver(delivery)
            except Exception as exc:  # noqa: BLE001 - a broken delivery must not kill the worker
                self._finish(delivery, "failed", error=f"simulator error: {exc!r}")

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        for attempt in range(1, self.retries + 2):
            if await self._attempt(delivery, attempt):
                self._finish(delivery, "delivered")
                return
            if attempt <= self.retries:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        self._finish(delivery, "failed")

    async def _attempt(self, delivery: WebhookDelivery, attempt: int) -> bool:
        assert self._client is not None
        status_code: int | None = None
        error: str | None = None
        text: str | None = None
        try:
            response = await self._client.post(delivery.url, content=delivery.payload, headers=delivery.headers)
            status_code, text = response.status_code, response.text[:MAX_LOGGED_BODY]
        except Exception as exc:  # noqa: BLE001 - every transport failure is a failed attempt
            error = f"{type(exc).__name__}: {exc}"
        delivery.attempts.append(
            {
                "attempt": attempt,
                "url": delivery.url,
                "event": delivery.event,
                "at": time.time(),
                "status_code": status_code,
                "error": error,
            }
        )
        delivery.status_code, delivery.error, delivery.body = status_code, error, text
        return status_code is not None and 200 <= status_code < 300

    def _finish(self, delivery: WebhookDelivery, state: str, error: str | None = None) -> None:
        delivery.state = state
        if error is not None:
            delivery.error = error
        self._unfinished.pop(delivery.id, None)
        if not delivery.done.done():
            delivery.done.set_result(None)


def webhook_cleanup_ctx(dispatcher_of: Callable[[web.Application], WebhookDispatcher]):
    """Return an aiohttp cleanup context that runs an app's webhook dispatcher."""

    async def run_dispatcher(app: web.Application):
        dispatcher = dispatcher_of(app)
        await dispatcher.start()
        yield
        await dispatcher.stop()

    return run_dispatcher


# --- configuration ------------------------------------------------------------------


def stats_as_dict(stats: Any) -> dict[str, Any]:
    """A simulator's counters dataclass as JSON-ready data, Counters (and maps of them) as plain
    dicts. Not dataclasses.asdict: it rebuilds a Counter from its (key, count) pairs, counting
    the pairs."""
    return {f.name: _plain(getattr(stats, f.name)) for f in dataclasses.fields(stats)}


def _plain(value: Any) -> Any:
    return {key: _plain(item) for key, item in value.items()} if isinstance(value, Mapping) else value


def records_of(cls: type[T], items: list[Any], field: str) -> list[T]:
    """A config's list of `cls` records, each built from its JSON object unless it is one already.

    Every simulator's config holds a list of accounts (tenants, producers); errors name the
    item, e.g. `accounts[2]`.
    """
    return [item if isinstance(item, cls) else from_mapping(cls, item, f"{field}[{i}]") for i, item in enumerate(items)]


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from a JSON object, rejecting unknown and missing fields by name.

    Raises ValueError whose message starts with `where`.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a JSON object")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    unknown = sorted(set(data) - {f.name for f in fields})
    if unknown:
        raise ValueError(f"{where}: unknown field(s): {', '.join(unknown)}")
    missing = [
        f.name
        for f in fields
        if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where}: missing field(s): {', '.join(missing)}")
    return cls(**data)


def load_json_file(path: str) -> Any:
    """Read and parse a JSON file; raises OSError or ValueError."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# --- serving ------------------------------------------------------------------------


class SimulatorServer:
    """Runs an aiohttp app on a local, OS-assigned port; an async context manager.

    `base_url` is valid between `start` and `stop`; `stop` is safe to call twice.
    """

    # In-flight requests (for example a control call waiting on a webhook) get this long to finish.
    SHUTDOWN_TIMEOUT_S = 2.0

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """`http://host:port` of the running server; raises RuntimeError when not running."""
        if self._base_url is None:
            raise RuntimeError("simulator server is not running")
        return self._base_url

    async def start(self) -> SimulatorServer:
        """Bind and start serving; raises RuntimeError if already started, OSError if binding fails."""
        if self._runner is not None:
            raise RuntimeError("simulator server already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self.SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        """Stop serving and run the app's cleanup; a no-op when not running."""
        runner, self._runner = self._runner, None
        self._base_url = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> SimulatorServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __del__(self) -> None:
        if self._runner is not None:
            warnings.warn(f"unclosed SimulatorServer {self._base_url}", ResourceWarning, stacklevel=1)


def run_standalone(
    prog: str,
    create_app: Callable[[Any], web.Application],
    load_config: Callable[[str | None], Any],
    argv: list[str] | None = None,
) -> int:
    """Command-line entry point: parse arguments, serve until SIGTERM or SIGINT, return an exit code.

    Prints `listening on http://<host>:<port>` once bound, so a parent can learn the port.
    """
    parser = argparse.ArgumentParser(prog=prog, description=f"Run the {prog} simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--config", help="JSON file matching the simulator's config dataclass")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, ValueError, TypeError) as exc:
        print(f"{prog}: invalid config: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_serve_until_signalled(lambda: create_app(config), args.host, args.port))
    return 0


async def _serve_until_signalled(build_app: Callable[[], web.Application], host: str, port: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with SimulatorServer(build_app(), host, port) as server:
        print(f"listening on {server.base_url}", flush=True)
        await stopping.wait()


def add_shared_control_routes(
    router: web.UrlDispatcher, state_key: web.AppKey, fault_routes: Iterable[str], *, allow_after_create: bool
) -> None:
    """Register the control endpoints every simulator has, over a state with stats, webhooks, faults, reset().

    `GET /_sim/stats`, `GET /_sim/webhook-deliveries?key=`, `POST /_sim/reset`, and
    `POST|GET|DELETE /_sim/faults` (queue, list, drop faults for the next matching vendor requests).
    """
    routes = tuple(fault_routes)

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(request.app[state_key].stats.as_dict())

    async def list_deliveries(request: web.Request) -> web.Response:
        deliveries = request.app[state_key].webhooks.deliveries(request.query.get("key"))
        return web.json_response({"deliveries": deliveries})

    async def reset(request: web.Request) -> web.Response:
        request.app[state_key].reset()
        return web.json_response({"reset": True})

    async def add_fault(request: web.Request) -> web.Response:
        state = request.app[state_key]
        fault = parse_fault(await read_control_body(request), routes, allow_after_create=allow_after_create)
        state.faults.add(fault)
        return web.json_response({"fault": fault.as_dict(), "pending": state.faults.pending()}, status=201)

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"pending": request.app[state_key].faults.pending()})

    async def clear_faults(request: web.Request) -> web.Response:
        request.app[state_key].faults.clear()
        return web.json_response({"pending": []})

    router.add_get("/_sim/stats", get_stats)
    router.add_get("/_sim/webhook-deliveries", list_deliveries)
    router.add_post("/_sim/reset", reset)
    router.add_post("/_sim/faults", add_fault)
    router.add_get("/_sim/faults", list_faults)
    router.add_delete("/_sim/faults", clear_faults)
