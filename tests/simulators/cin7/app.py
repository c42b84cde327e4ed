"""Cin7 Omni simulator app: the API v1 SalesOrders endpoints and the /_sim control API.

Follows the public API v1 help pages: HTTP Basic (API username : connection key), `GET
/v1/SalesOrders` with `fields`, `where`, `order`, `page`, `rows` (at most 250) answering a bare
JSON array, `GET /v1/SalesOrders/{id}`, and `PUT /v1/SalesOrders` taking an array of partial
orders and answering one `{index, id, success, errors}` row each (HTTP 200 with failed rows).
Requests over the per-connection limit get 429 with Retry-After. Cin7 sends no webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.simulators.common import (
    Fault,
    FaultQueue,
    FixedWindowRateLimiter,
    Handler,
    SimError,
    WebhookDispatcher,
    add_shared_control_routes,
    control_error,
    control_error_middleware,
    credentials_match,
    from_mapping,
    parse_basic_auth,
    parse_iso_datetime,
    read_control_body,
    records_of,
    retry_after_header,
    route,
    route_of,
    stats_as_dict,
)

FAULT_ROUTES = ("list", "get", "update")
MAX_ROWS = 250
DEFAULT_STAGES = ("New", "Awaiting Payment", "Processing", "On Hold", "Fully Picked", "Dispatched", "Cancelled")
# Fields a PUT may not write: Cin7 keeps them itself.
READ_ONLY = frozenset({"status", "createdDate", "modifiedDate", "isApproved"})
WRITABLE = frozenset(
    {
        "reference",
        "stage",
        "dispatchedDate",
        "trackingCode",
        "logisticsCarrier",
        "freightTotal",
        "freightDescription",
        "internalComments",
        "deliveryInstructions",
        "estimatedDeliveryDate",
    }
)
# Columns `where` and `order` may name (Cin7 spells them capitalised), and the JSON field each reads.
COLUMNS = {
    "id": "id",
    "reference": "reference",
    "stage": "stage",
    "status": "status",
    "modifieddate": "modifiedDate",
    "createddate": "createdDate",
    "dispatcheddate": "dispatchedDate",
}
DATE_COLUMNS = frozenset({"modifiedDate", "createdDate", "dispatchedDate"})
CONDITION = re.compile(r"^\s*(\w+)\s*(>=|<=|<>|=|>|<)\s*('[^']*'|-?\d+)\s*$")
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class Cin7Account:
    """One API connection: its credentials and the workflow stages the tenant has."""

    username: str
    api_key: str
    stages: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_STAGES))


@dataclasses.dataclass
class Cin7Config:
    """Settings of one Cin7 simulator; `from_dict` reads the JSON config file's shape."""

    accounts: list[Cin7Account] = dataclasses.field(default_factory=list)
    rate_limit_per_minute: int = 60
    random_429_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.accounts = records_of(Cin7Account, self.accounts, "accounts")

    @classmethod
    def from_dict(cls, data: Any) -> Cin7Config:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- state --------------------------------------------------------------------------


@dataclasses.dataclass
class Cin7Stats:
    """Counters served by `GET /_sim/stats`."""

    orders_seeded: int = 0
    rows_updated: int = 0
    rows_refused: int = 0
    rate_limited: int = 0
    faults_served: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    responses: Counter[str] = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return stats_as_dict(self)


def utc_now_text() -> str:
    """Cin7 writes its dates to the second, so orders changed together share one ModifiedDate."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Cin7State:
    """Everything the simulator knows; handlers change it without awaiting mid-change."""

    def __init__(self, config: Cin7Config, clock: Callable[[], str] = utc_now_text):
        self.config = config
        self.clock = clock
        self.accounts = {account.username: account for account in config.accounts}
        self.limiter = FixedWindowRateLimiter(config.rate_limit_per_minute)
        self.throttle_rng = random.Random(config.seed)
        self.faults = FaultQueue()
        self.webhooks = WebhookDispatcher()  # Cin7 sends none; the shared control routes list them
        self.reset()

    def reset(self) -> None:
        """Forget orders, stats, faults and rate windows; keep accounts."""
        self.orders: dict[str, dict[int, dict[str, Any]]] = {}
        self.next_id = 1001
        self.next_line_id = 5001
        self.stats = Cin7Stats()
        self.faults.clear()
        self.limiter.reset()

    def orders_of(self, username: str) -> dict[int, dict[str, Any]]:
        return self.orders.setdefault(username, {})

    def seed(self, username: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new order from `fields`, filling what a Cin7 user would have left to Cin7."""
        order_id = self.next_id
        self.next_id += 1
        now = self.clock()
        order: dict[str, Any] = {
            "id": order_id,
            "reference": f"SO-{order_id}",
            "createdDate": now,
            "modifiedDate": now,
            "stage": "New",
            "status": "Approved",
            "isApproved": True,
            "dispatchedDate": None,
            "trackingCode": None,
            "logisticsCarrier": None,
            "currencyCode": "USD",
            "lineItems": [],
        }
        order.update({k: v for k, v in fields.items() if k != "id"})
        order["lineItems"] = [self._line(line) for line in order.get("lineItems") or []]
        self.orders_of(username)[order_id] = order
        self.stats.orders_seeded += 1
        return order

    def _line(self, line: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(line, Mapping):
            raise control_error(400, "each of 'lineItems' must be an object")
        filled = {"id": self.next_line_id, "qty": 1, "qtyShipped": 0, "unitPrice": 0} | dict(line)
        self.next_line_id += 1
        return filled


STATE_KEY = web.AppKey("cin7_state", Cin7State)
ACCOUNT_KEY = web.RequestKey("cin7_account", Cin7Account)


# --- vendor errors, auth, throttling, faults ----------------------------------------


def cin7_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> SimError:
    return SimError(status, {"message": message}, headers)


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply Basic auth, the rate limit and injected faults to `/api` requests and count them."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    route_name = route_of(request)
    state.stats.requests[route_name] += 1
    try:
        response = await guarded_call(state, request, handler, route_name)
    except SimError as exc:
        response = exc.response()
    state.stats.responses[str(response.status)] += 1
    return response


async def guarded_call(state: Cin7State, request: web.Request, handler: Handler, route_name: str) -> web.StreamResponse:
    account = authenticate(state, request)
    request[ACCOUNT_KEY] = account
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        raise cin7_error(routing_error.status, "No HTTP resource was found that matches the request URI.")
    throttle(state, account)
    fault = state.faults.take(route_name)
    if fault is None:
        return await handler(request)
    if fault.delay_s:
        await request.read()
        await asyncio.sleep(fault.delay_s)
    if fault.status is None:
        return await handler(request)
    if fault.after_create:
        with contextlib.suppress(SimError):
            await handler(request)
    state.stats.faults_served += 1
    raise fault_error(fault)


def fault_error(fault: Fault) -> SimError:
    headers = {"Retry-After": "1"} if fault.status == 429 else None
    return cin7_error(fault.status or 500, f"Injected fault ({fault.status})", headers)


def authenticate(state: Cin7State, request: web.Request) -> Cin7Account:
    given = parse_basic_auth(request.headers.get("Authorization"))
    account = state.accounts.get(given[0]) if given else None
    expected = (account.username, account.api_key) if account else ("", "\x00unknown")
    if not credentials_match(given, *expected) or account is None:
        raise cin7_error(401, "Authorization has been denied for this request.")
    return account


def throttle(state: Cin7State, account: Cin7Account) -> None:
    """429 past the connection's requests a minute, or at the configured random rate."""
    wait = state.limiter.hit(account.username)
    rate = state.config.random_429_rate
    if wait is None and rate > 0 and state.throttle_rng.random() < rate:
        wait = 1.0
    if wait is not None:
        state.stats.rate_limited += 1
        raise cin7_error(429, "Rate exceeded.", retry_after_header(wait))


# --- the where / order subset ------------------------------------------------------------


def parse_where(text: str) -> list[tuple[str, str, Any]]:
    """`Column op value [AND ...]` -> (field, op, value); raises 400 for anything else."""
    conditions = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        match = CONDITION.match(part)
        field = COLUMNS.get(match[1].lower()) if match else None
        if match is None or field is None:
            raise cin7_error(400, f"The where clause is not valid near '{part[:40]}'")
        raw = match[3]
        value: Any = raw[1:-1] if raw.startswith("'") else int(raw)
        if field in DATE_COLUMNS:
            value = as_instant(value, bad_request=True)
        conditions.append((field, match[2], value))
    return conditions


def as_instant(value: Any, *, bad_request: bool = False) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_iso_datetime(value)
    except ValueError:
        if bad_request:
            raise cin7_error(400, "The where clause holds a date that is not one") from None
        return None


def matches(order: Mapping[str, Any], conditions: list[tuple[str, str, Any]]) -> bool:
    for field, op, wanted in conditions:
        value = as_instant(order.get(field)) if field in DATE_COLUMNS else order.get(field)
        if value is None or type(value) is not type(wanted) or not COMPARE[op](value, wanted):
            return False
    return True


def sort_orders(orders: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Sort by `Column [ASC|DESC], ...`. Cin7 documents no order among ties: the simulator
    breaks them by descending id, so a client relying on one is caught."""
    result = sorted(orders, key=lambda o: o["id"], reverse=True)
    keys = [part.split() for part in text.split(",") if part.strip()] if text else [["Id", "ASC"]]
    for key in reversed(keys):
        field = COLUMNS.get(key[0].lower())
        direction = key[1].upper() if len(key) > 1 else "ASC"
        if field is None or len(key) > 2 or direction not in ("ASC", "DESC"):
            raise cin7_error(400, f"The order clause is not valid near '{','.join(key)[:40]}'")
        result.sort(key=lambda o, f=field: sort_key(o, f), reverse=direction == "DESC")
    return result


def sort_key(order: Mapping[str, Any], field: str) -> tuple[int, Any]:
    value = as_instant(order.get(field)) if field in DATE_COLUMNS else order.get(field)
    return (0, "") if value is None else (1, value)


def positive_param(request: web.Request, name: str, default: int, maximum: int | None = None) -> int:
    text = request.query.get(name, str(default))
    if not text.isdigit() or int(text) < 1 or (maximum is not None and int(text) > maximum):
        limit = f" from 1 to {maximum}" if maximum else ""
        raise cin7_error(400, f"'{name}' must be a whole number{limit}")
    return int(text)


def trimmed(order: Mapping[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return dict(order)
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    return {k: v for k, v in order.items() if k in wanted}


# --- vendor API ----------------------------------------------------------------------


def account_of(request: web.Request) -> Cin7Account:
    return request[ACCOUNT_KEY]


@route("list")
async def list_sales_orders(request: web.Request) -> web.Response:
    """`GET /api/v1/SalesOrders?fields=&where=&order=&page=&rows=`: one page, a bare array."""
    state = request.app[STATE_KEY]
    rows = positive_param(request, "rows", 50, MAX_ROWS)
    page = positive_param(request, "page", 1)
    conditions = parse_where(request.query.get("where", ""))
    chosen = [o for o in state.orders_of(account_of(request).username).values() if matches(o, conditions)]
    ordered = sort_orders(chosen, request.query.get("order", ""))
    window = ordered[(page - 1) * rows : page * rows]
    return web.json_response([trimmed(o, request.query.get("fields")) for o in window])


@route("get")
async def get_sales_order(request: web.Request) -> web.Response:
    """`GET /api/v1/SalesOrders/{id}`."""
    state = request.app[STATE_KEY]
    text = request.match_info["order_id"]
    order = state.orders_of(account_of(request).username).get(int(text)) if text.isdigit() else None
    if order is None:
        raise cin7_error(404, "Sales order not found")
    return web.json_response(order)


@route("update")
async def update_sales_orders(request: web.Request) -> web.Response:
    """`PUT /api/v1/SalesOrders`: partial orders by id; one result row each, failed rows included."""
    state = request.app[STATE_KEY]
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        raise cin7_error(400, "The request body must be an array of sales orders")
    account = account_of(request)
    return web.json_response([update_row(state, account, index, row) for index, row in enumerate(body)])


def update_row(state: Cin7State, account: Cin7Account, index: int, row: Any) -> dict[str, Any]:
    order_id = row.get("id") if isinstance(row, dict) else None
    errors = row_errors(state, account, row)
    if errors:
        state.stats.rows_refused += 1
        return {"index": index, "id": order_id, "success": False, "errors": errors}
    order = state.orders_of(account.username)[order_id]
    changes = {k: v for k, v in row.items() if k != "id"}
    if changes.get("dispatchedDate") and not order.get("dispatchedDate"):
        # Setting the dispatched date is what dispatches the stock.
        for line in order["lineItems"]:
            line["qtyShipped"] = line.get("qty", 0)
    order.update(changes)
    order["modifiedDate"] = state.clock()
    state.stats.rows_updated += 1
    return {"index": index, "id": order_id, "success": True, "errors": []}


def row_errors(state: Cin7State, account: Cin7Account, row: Any) -> list[str]:
    if not isinstance(row, dict) or isinstance(row.get("id"), bool) or not isinstance(row.get("id"), int):
        return ["id is required"]
    if row["id"] not in state.orders_of(account.username):
        return [f"Sales order {row['id']} not found"]
    errors = [f"{name} is read-only" for name in sorted(set(row) & READ_ONLY)]
    errors += [f"{name} is not a field of SalesOrder" for name in sorted(set(row) - READ_ONLY - WRITABLE - {"id"})]
    stage = row.get("stage")
    if stage is not None and stage not in account.stages:
        errors.append(f"Stage '{str(stage)[:40]}' is not a stage of this account")
    if row.get("dispatchedDate") is not None and as_instant(row["dispatchedDate"]) is None:
        errors.append("dispatchedDate is not a date")
    freight = row.get("freightTotal")
    if freight is not None and (isinstance(freight, bool) or not isinstance(freight, int | float) or freight < 0):
        errors.append("freightTotal is not a non-negative number")
    return errors


# --- control API ----------------------------------------------------------------------


def sim_account(request: web.Request) -> tuple[Cin7State, str]:
    state = request.app[STATE_KEY]
    username = request.match_info["username"]
    if username not in state.accounts:
        raise control_error(404, f"no account {username!r}")
    return state, username


async def put_account(request: web.Request) -> web.Response:
    """`PUT /_sim/accounts/{username}`: add or replace an API connection."""
    state = request.app[STATE_KEY]
    body = await read_control_body(request)
    try:
        account = from_mapping(Cin7Account, body, "account")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    if account.username != request.match_info["username"]:
        raise control_error(400, "'username' must match the path")
    state.accounts[account.username] = account
    return web.json_response(dataclasses.asdict(account) | {"api_key": "***"})


async def seed_orders(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{username}/orders`: `{"orders": [fields, ...]}` as a Cin7 user would
    enter them (stage, status, dates, lines...); what is left out gets Cin7's defaults."""
    state, username = sim_account(request)
    body = await read_control_body(request)
    orders = body.get("orders")
    if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
        raise control_error(400, "'orders' must be a list of objects")
    return web.json_response({"orders": [state.seed(username, o) for o in orders]}, status=201)


async def change_order(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{username}/orders/{id}`: change any fields, as a user in Cin7 would
    (a stage change, a void); modifiedDate moves to now unless the body sets it."""
    state, username = sim_account(request)
    order = sim_order(state, username, request.match_info["order_id"])
    body = await read_control_body(request)
    order.update({k: v for k, v in body.items() if k != "id"})
    if "lineItems" in body:
        order["lineItems"] = [state._line(line) for line in body["lineItems"] or []]
    if "modifiedDate" not in body:
        order["modifiedDate"] = state.clock()
    return web.json_response(order)


async def get_sim_order(request: web.Request) -> web.Response:
    """`GET /_sim/accounts/{username}/orders/{id}`: one order as stored."""
    state, username = sim_account(request)
    return web.json_response(sim_order(state, username, request.match_info["order_id"]))


def sim_order(state: Cin7State, username: str, text: str) -> dict[str, Any]:
    order = state.orders_of(username).get(int(text)) if text.isdigit() else None
    if order is None:
        raise control_error(404, f"no order {text!r}")
    return order


# --- wiring --------------------------------------------------------------------------------


def create_app(config: Cin7Config) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = Cin7State(config)
    router = app.router
    router.add_get("/api/v1/SalesOrders", list_sales_orders)
    router.add_get("/api/v1/SalesOrders/{order_id}", get_sales_order)
    router.add_put("/api/v1/SalesOrders", update_sales_orders)
    router.add_put("/_sim/accounts/{username}", put_account)
    router.add_post("/_sim/accounts/{username}/orders", seed_orders)
    router.add_get("/_sim/accounts/{username}/orders/{order_id}", get_sim_order)
    router.add_post("/_sim/accounts/{username}/orders/{order_id}", change_order)
    add_shared_control_routes(router, STATE_KEY, FAULT_ROUTES, allow_after_create=True)
    return app
