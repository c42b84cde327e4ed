"""Mintsoft simulator app: API keys from /api/Auth, orders, Connect Action callbacks, courier
services, warehouses, products, and the /_sim control API.

It follows the public Mintsoft reference: the key from `POST /api/Auth` (a bare JSON string)
in `ms-apikey` (or the `APIKey` query parameter), expiring after `key_ttl_s` with 401s after;
`PUT /api/Order` answering an array of `{OrderId, OrderNumber, Success, ...}` rows in a 200,
refusals included (a missing Country, no items, an unknown SKU, a duplicate OrderNumber or
ExternalOrderReference of the client); per-order Connect Actions, to whose ExtraCode1
(despatched) and ExtraCode2 (cancelled) URLs the order JSON is POSTed, as `GET /api/Order/{id}`
shows it. Mintsoft's refusal wording is not published: the messages here are the simulator's
(the connector's README lists what it matches).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import random
import secrets
import string
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.simulators.common import (
    Fault,
    FaultQueue,
    Handler,
    SimError,
    WebhookDelivery,
    WebhookSettings,
    add_shared_control_routes,
    control_error,
    control_error_middleware,
    flag,
    from_mapping,
    read_control_body,
    read_json_object,
    records_of,
    route,
    route_of,
    stats_as_dict,
    webhook_cleanup_ctx,
)

FAULT_ROUTES = (
    "auth",
    "create",
    "get_order",
    "search",
    "list",
    "cancel",
    "despatch",
    "statuses",
    "connect_actions",
    "courier_services",
    "warehouses",
    "list_products",
    "create_product",
)
DEFAULT_STATUSES = {
    "NEW": 1,
    "PRINTED": 2,
    "DESPATCHED": 4,
    "CANCELLED": 5,
    "ONBACKORDER": 8,
    "QUERYRAISED": 13,
    "AWAITINGPICKING": 15,
    "PICKED": 17,
}
DEFAULT_COURIER_SERVICES = [
    {"ID": 41, "Name": "Royal Mail Tracked 48"},
    {"ID": 57, "Name": "DPD Next Day"},
]
DEFAULT_WAREHOUSES = [{"ID": 3, "Name": "Main Warehouse", "Code": "MAIN"}]
MAX_LIMIT = 500
DENIED = "Authorization has been denied for this request."
# The order fields a create takes (the reference's list); anything else is a client bug here.
ORDER_FIELDS = frozenset(
    [
        "OrderNumber",
        "ExternalOrderReference",
        "ClientId",
        "WarehouseId",
        "Warehouse",
        "FirstName",
        "LastName",
        "CompanyName",
        "Address1",
        "Address2",
        "Address3",
        "Town",
        "County",
        "PostCode",
        "CountryId",
        "Country",
        "Email",
        "Phone",
        "Mobile",
        "CourierServiceId",
        "CourierService",
        "ChannelId",
        "Channel",
        "Currency",
        "DeliveryNotes",
        "GiftMessages",
        "Comments",
        "OrderValue",
        "TotalVat",
        "ShippingTotalExVat",
        "ShippingTotalVat",
        "RequiredDespatchDate",
        "RequiredDeliveryDate",
        "NumberOfParcels",
        "OrderNameValues",
        "OrderItems",
    ]
)
ITEM_FIELDS = frozenset({"SKU", "ProductId", "Quantity", "UnitPrice", "UnitPriceVat", "Discount", "Details"})
ACTION_FIELDS = frozenset(
    {"Type", "SourceOrderId", "Complete", "ExtraCode1", "ExtraCode2", "ExtraCode3", "ExtraCode4", "ExtraCode5"}
)


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class MintsoftUser:
    """A Mintsoft user: its credentials and client, and the SKUs that client's catalog holds.

    A client user's key names its client; an `admin` (3PL) user names the client on each call
    (`ClientId`), and may act for any client.
    """

    username: str
    password: str
    client_id: int
    admin: bool = False
    products: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MintsoftConfig(WebhookSettings):
    """Settings of one Mintsoft simulator; `from_dict` reads the JSON config file's shape.

    Attributes:
        users: the accounts it knows.
        key_ttl_s: how long a key from /api/Auth is valid (Mintsoft: 24 hours).
        statuses: status name -> id, as `GET /api/Order/Statuses` lists them.
        courier_services: `{ID, Name}` of the account's courier services; `AUTO` picks the first.
        warehouses: `{ID, Name, Code}`; orders without a WarehouseId go to the first.
        default_limit: rows a list page has when no Limit is given.
        random_429_rate: share of API requests answered 429 at random.
        seed: for tracking numbers and random 429s.
    """

    users: list[MintsoftUser] = dataclasses.field(default_factory=list)
    key_ttl_s: float = 86400.0
    statuses: dict[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_STATUSES))
    courier_services: list[dict[str, Any]] = dataclasses.field(default_factory=lambda: list(DEFAULT_COURIER_SERVICES))
    warehouses: list[dict[str, Any]] = dataclasses.field(default_factory=lambda: list(DEFAULT_WAREHOUSES))
    default_limit: int = 100
    random_429_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.users = records_of(MintsoftUser, self.users, "users")

    @classmethod
    def from_dict(cls, data: Any) -> MintsoftConfig:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- state --------------------------------------------------------------------------


@dataclasses.dataclass
class MsOrder:
    """A stored order: what was submitted, and Mintsoft's own fields."""

    id: int
    client_id: int
    submitted: dict[str, Any]
    warehouse_id: int
    status_id: int
    created_at: float
    last_updated: float
    courier_service_id: int | None = None
    courier_service_name: str | None = None
    tracking_number: str | None = None
    despatch_date: str | None = None
    connect_actions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_callback: tuple[str, str] | None = None  # (url, event) of the last callback sent


@dataclasses.dataclass
class MintsoftStats:
    """Counters served by `GET /_sim/stats`: `requests` per route (auths are `auth`)."""

    keys_issued: int = 0
    auth_refused: int = 0
    expired_key_refusals: int = 0
    orders_created: int = 0
    create_refusals: int = 0
    duplicate_refusals: int = 0
    unknown_sku_refusals: int = 0
    products_created: int = 0
    callbacks_sent: int = 0
    random_429s: int = 0
    faults_served: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    responses: Counter[str] = dataclasses.field(default_factory=Counter)
    # username -> route -> requests, for the requests a user's key (or Auth) made: benchmarks
    # running two clients on one simulator count each apart.
    user_requests: dict[str, Counter[str]] = dataclasses.field(default_factory=dict)
    user_responses: dict[str, Counter[str]] = dataclasses.field(default_factory=dict)

    def count_user(self, username: str, route_name: str, status: int) -> None:
        self.user_requests.setdefault(username, Counter())[route_name] += 1
        self.user_responses.setdefault(username, Counter())[str(status)] += 1

    def as_dict(self) -> dict[str, Any]:
        return stats_as_dict(self)


class MintsoftState:
    """Everything the simulator knows. Handlers mutate it without awaiting mid-change."""

    def __init__(self, config: MintsoftConfig):
        self.config = config
        self.users = {user.username: user for user in config.users}
        self.webhooks = config.webhook_dispatcher()
        self.faults = FaultQueue()
        self.tracking_rng = random.Random(config.seed)
        self.throttle_rng = random.Random(config.seed)
        self.key_ttl_s = config.key_ttl_s
        self.courier_services = [dict(s) for s in config.courier_services]
        # In-process tests' hooks, run once an order is stored and before the create is answered
        # (e.g. to kill the caller then, as a crash between the create and its record would).
        self.on_order_created: list[Callable[[MsOrder], None]] = []
        # client id -> SKU -> product
        self.products: dict[int, dict[str, dict[str, Any]]] = {}
        for user in config.users:
            self.seed_products(user.client_id, [{"SKU": sku} for sku in user.products])
        self.reset()

    def reset(self) -> None:
        """Forget orders, keys, stats, faults and the delivery log; keep users and catalogs."""
        self.orders: dict[int, MsOrder] = {}
        self.keys: dict[str, tuple[str, float]] = {}  # key -> (username, expires at, monotonic)
        self.next_order_id = 48001
        self.stats = MintsoftStats()
        self.faults.clear()
        self.webhooks.clear_log()

    def seed_products(self, client_id: int, products: list[dict[str, Any]]) -> list[dict[str, Any]]:
        catalog = self.products.setdefault(client_id, {})
        added = []
        for product in products:
            sku = str(product["SKU"])
            if sku not in catalog:
                catalog[sku] = {"ID": 1000 + sum(len(c) for c in self.products.values()), "SKU": sku}
                catalog[sku]["Name"] = str(product.get("Name") or sku)
                added.append(catalog[sku])
        return added

    def status_name(self, status_id: int) -> str:
        return next((name for name, sid in self.config.statuses.items() if sid == status_id), "UNKNOWN")

    def status_id(self, name: str) -> int:
        return self.config.statuses[name]


STATE_KEY = web.AppKey("mintsoft_state", MintsoftState)
USER_KEY = web.RequestKey("mintsoft_user", MintsoftUser)
AUTH_USER_KEY = web.RequestKey("mintsoft_auth_user", str)  # the Username an Auth call named


def ms_error(status: int, message: str, headers: dict[str, str] | None = None) -> SimError:
    """An error in Mintsoft's (ASP.NET) shape: `{"Message": ...}`."""
    return SimError(status, {"Message": message}, headers)


def now_text() -> str:
    """Mintsoft's date-time text: whole seconds, no offset (UTC here)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def text_of(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_time(value: str, name: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ms_error(400, f"The value '{value[:40]}' is not valid for {name}.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# --- views ---------------------------------------------------------------------------


def order_view(state: MintsoftState, order: MsOrder, *, items: bool = True) -> dict[str, Any]:
    """The order as `GET /api/Order/{id}` (and a callback) shows it."""
    submitted = {k: v for k, v in order.submitted.items() if k not in ("OrderItems", "OrderNameValues")}
    view = {
        **submitted,
        "ID": order.id,
        "OrderNumber": order.submitted["OrderNumber"],
        "ExternalOrderReference": order.submitted.get("ExternalOrderReference"),
        "ClientId": order.client_id,
        "WarehouseId": order.warehouse_id,
        "OrderStatusId": order.status_id,
        "OrderStatus": state.status_name(order.status_id),
        "TrackingNumber": order.tracking_number,
        "TrackingURL": f"https://track.example.test/{order.tracking_number}" if order.tracking_number else None,
        "CourierServiceId": order.courier_service_id,
        "CourierServiceName": order.courier_service_name,
        "DespatchDate": order.despatch_date,
        "NumberOfParcels": order.submitted.get("NumberOfParcels", 1),
        "LastUpdated": text_of(order.last_updated),
        "OrderNameValues": [dict(pair) for pair in order.submitted.get("OrderNameValues") or []],
    }
    if items:
        catalog = state.products.get(order.client_id, {})
        view["OrderItems"] = [
            {**item, "ProductId": catalog.get(str(item.get("SKU")), {}).get("ID")}
            for item in order.submitted.get("OrderItems") or []
        ]
    return view


def sim_view(state: MintsoftState, order: MsOrder) -> dict[str, Any]:
    """The order plus what only the simulator shows: its Connect Actions and when it was
    created (epoch seconds, for tests ordering it against other systems' calls)."""
    return {
        **order_view(state, order),
        "ConnectActions": [dict(a) for a in order.connect_actions],
        "created_at": order.created_at,
    }


# --- vendor middleware: auth, random 429s, faults ------------------------------------------


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count `/api` requests by route, authenticate, throttle at random, apply faults."""
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
    username = request[USER_KEY].username if USER_KEY in request else request.get(AUTH_USER_KEY)
    if username is not None:
        state.stats.count_user(username, route_name, response.status)
    return response


async def guarded_call(state: MintsoftState, request: web.Request, handler: Handler, route_name: str):
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        message = "No HTTP resource was found that matches the request URI." if routing_error.status == 404 else ""
        raise ms_error(routing_error.status, message or "The requested resource does not support this method.")
    if route_name != "auth":
        request[USER_KEY] = authenticate(state, request)
    rate = state.config.random_429_rate
    if rate > 0 and state.throttle_rng.random() < rate:
        state.stats.random_429s += 1
        raise ms_error(429, "Too many requests", {"Retry-After": "1"})
    fault = state.faults.take(route_name)
    if fault is None:
        return await handler(request)
    if fault.delay_s:
        await request.read()  # a slow server has received the request even if the client gives up
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
    return ms_error(fault.status or 500, f"Injected fault ({fault.status})", headers)


def authenticate(state: MintsoftState, request: web.Request) -> MintsoftUser:
    """The user whose live key the request carries; 401 for none, an unknown or an expired key."""
    key = request.headers.get("ms-apikey") or request.query.get("APIKey") or ""
    held = state.keys.get(key)
    if held is None:
        raise ms_error(401, DENIED)
    username, expires_at = held
    if time.monotonic() >= expires_at:
        state.stats.expired_key_refusals += 1
        raise ms_error(401, DENIED)
    user = state.users.get(username)
    if user is None:
        raise ms_error(401, DENIED)
    return user


def client_of(request: web.Request, given: Any = None) -> int:
    """The client a call acts for: the user's own, or (an admin's) the ClientId it names."""
    user = request[USER_KEY]
    given = given if given is not None else request.query.get("ClientId")
    if given is None or given == "":
        if user.admin:
            raise ms_error(400, "ClientId is required for this user")
        return user.client_id
    try:
        client_id = int(given)
    except (TypeError, ValueError):
        raise ms_error(400, "ClientId must be a number") from None
    if not user.admin and client_id != user.client_id:
        raise ms_error(403, "The user may not act for that client")
    return client_id


def owned_order(request: web.Request) -> MsOrder:
    state = request.app[STATE_KEY]
    try:
        order_id = int(request.match_info["order_id"])
    except ValueError:
        raise ms_error(400, "The order id must be a number") from None
    order = state.orders.get(order_id)
    user = request[USER_KEY]
    if order is None or (not user.admin and order.client_id != user.client_id):
        raise ms_error(404, f"Order {order_id} not found")
    return order


# --- auth ----------------------------------------------------------------------------------


@route("auth")
async def auth(request: web.Request) -> web.Response:
    """`POST /api/Auth {Username, Password}`: a new key as a bare JSON string."""
    state = request.app[STATE_KEY]
    body = await read_json_object(request) or {}
    user = state.users.get(str(body.get("Username") or ""))
    if user is not None:
        request[AUTH_USER_KEY] = user.username
    expected = user.password if user else "\x00unknown"
    if not hmac.compare_digest(str(body.get("Password") or "").encode(), expected.encode()) or user is None:
        state.stats.auth_refused += 1
        raise ms_error(401, "Invalid username or password")
    key = secrets.token_hex(16)
    state.keys[key] = (user.username, time.monotonic() + state.key_ttl_s)
    state.stats.keys_issued += 1
    return web.json_response(key)


# --- orders --------------------------------------------------------------------------------


def refusal(number: Any, message: str) -> list[dict[str, Any]]:
    return [
        {
            "OrderId": 0,
            "OrderNumber": number,
            "Success": False,
            "OrderStatusId": 0,
            "OrderStatus": None,
            "Message": message,
            "OrderItems": [],
        }
    ]


def create_problem(state: MintsoftState, client_id: int, body: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, message) of the first reason Mintsoft refuses the order, or None."""
    number = body.get("OrderNumber")
    if not isinstance(number, str) or not number.strip():
        return "invalid", "OrderNumber is required"
    if not (body.get("Country") or body.get("CountryId")):
        return "invalid", "Country is required"
    country = body.get("Country")
    if country is not None and (not isinstance(country, str) or not 2 <= len(country.strip()) <= 60):
        return "invalid", f"Invalid Country '{str(country)[:20]}'"
    items = body.get("OrderItems")
    if not isinstance(items, list) or not items:
        return "invalid", "The order has no OrderItems"
    catalog = state.products.get(client_id, {})
    for item in items:
        if not isinstance(item, dict) or set(item) - ITEM_FIELDS:
            return "invalid", "OrderItems: unknown field(s)"
        quantity = item.get("Quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            return "invalid", "OrderItems: Quantity must be at least 1"
        sku = item.get("SKU")
        if not isinstance(sku, str) or sku not in catalog:
            return "unknown_sku", f"Invalid SKU: product with SKU '{str(sku)[:60]}' was not found"
    for other in state.orders.values():
        if other.client_id != client_id:
            continue
        if other.submitted["OrderNumber"] == number:
            return "duplicate", f"Order with OrderNumber {number} already exists"
        reference = body.get("ExternalOrderReference")
        if reference and other.submitted.get("ExternalOrderReference") == reference:
            return "duplicate", f"Order with ExternalOrderReference {reference} already exists"
    service = body.get("CourierService")
    if service not in (None, "", "AUTO") and not any(s["Name"] == service for s in state.courier_services):
        return "invalid", f"Courier Service '{str(service)[:40]}' not found"
    warehouse = body.get("WarehouseId")
    if warehouse is not None and not any(w["ID"] == warehouse for w in state.config.warehouses):
        return "invalid", f"Warehouse {str(warehouse)[:20]} not found"
    names = body.get("OrderNameValues") or []
    if not isinstance(names, list) or not all(isinstance(p, dict) and set(p) <= {"Name", "Value"} for p in names):
        return "invalid", "OrderNameValues must be a list of {Name, Value}"
    return None


@route("create")
async def create_order(request: web.Request) -> web.Response:
    """`PUT /api/Order`: validate and store one order; refusals are rows with Success false."""
    state = request.app[STATE_KEY]
    body = await read_json_object(request)
    if body is None:
        raise ms_error(400, "The request is invalid: the body must be an order object")
    unknown = sorted(set(body) - ORDER_FIELDS)
    if unknown:
        raise ms_error(400, f"The request is invalid: unknown field(s) {', '.join(unknown[:5])}")
    client_id = client_of(request, body.get("ClientId"))
    problem = create_problem(state, client_id, body)
    if problem is not None:
        kind, message = problem
        state.stats.create_refusals += 1
        if kind == "duplicate":
            state.stats.duplicate_refusals += 1
        elif kind == "unknown_sku":
            state.stats.unknown_sku_refusals += 1
        return web.json_response(refusal(body.get("OrderNumber"), message))
    order = MsOrder(
        id=state.next_order_id,
        client_id=client_id,
        submitted=body,
        warehouse_id=body.get("WarehouseId") or state.config.warehouses[0]["ID"],
        status_id=state.status_id("NEW"),
        created_at=time.time(),
        last_updated=time.time(),
    )
    state.next_order_id += 1
    state.orders[order.id] = order
    state.stats.orders_created += 1
    for hook in list(state.on_order_created):
        hook(order)
    row = {
        "OrderId": order.id,
        "OrderNumber": body["OrderNumber"],
        "Success": True,
        "OrderStatusId": order.status_id,
        "OrderStatus": "NEW",
        "Message": "",
        "OrderItems": order_view(state, order)["OrderItems"],
    }
    return web.json_response([row])


@route("get_order")
async def get_order(request: web.Request) -> web.Response:
    """`GET /api/Order/{id}`."""
    return web.json_response(order_view(request.app[STATE_KEY], owned_order(request)))


@route("search")
async def search_orders(request: web.Request) -> web.Response:
    """`GET /api/Order/Search?OrderNumber=`: the client's orders with that number."""
    state = request.app[STATE_KEY]
    number = request.query.get("OrderNumber", "")
    client_id = client_of(request)
    found = [
        order_view(state, o)
        for o in state.orders.values()
        if o.client_id == client_id and o.submitted["OrderNumber"] == number
    ]
    return web.json_response(found)


def int_param(request: web.Request, name: str, default: int | None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ms_error(400, f"The value '{value[:20]}' is not valid for {name}.") from None


def page_params(request: web.Request) -> tuple[int, int]:
    page_no = int_param(request, "PageNo", 1) or 1
    limit = int_param(request, "Limit", request.app[STATE_KEY].config.default_limit) or 1
    if page_no < 1 or not 1 <= limit <= MAX_LIMIT:
        raise ms_error(400, f"PageNo must be at least 1 and Limit from 1 to {MAX_LIMIT}")
    return page_no, limit


@route("list")
async def list_orders(request: web.Request) -> web.Response:
    """`GET /api/Order/List`: filters (status, warehouse, since dates), ordered by LastUpdated
    then ID, paged (PageNo from 1, Limit up to 500); items only with IncludeOrderItems=true."""
    state = request.app[STATE_KEY]
    client_id = client_of(request)
    status = int_param(request, "OrderStatusId", None)
    warehouse = int_param(request, "WarehouseId", None)
    query = request.query
    since_created = parse_time(query["SinceDate"], "SinceDate") if query.get("SinceDate") else None
    since_updated = parse_time(query["SinceLastUpdated"], "SinceLastUpdated") if query.get("SinceLastUpdated") else None
    since_despatch = (
        parse_time(query["SinceDespatchDate"], "SinceDespatchDate") if query.get("SinceDespatchDate") else None
    )
    include_items = query.get("IncludeOrderItems", "").lower() == "true"
    page_no, limit = page_params(request)
    rows = []
    for order in state.orders.values():
        # Whole seconds, as Mintsoft shows them: the filters compare what the client can see.
        updated = parse_time(text_of(order.last_updated), "LastUpdated")
        if order.client_id != client_id or (status is not None and order.status_id != status):
            continue
        if warehouse is not None and order.warehouse_id != warehouse:
            continue
        if since_updated is not None and updated < since_updated:
            continue
        if since_created is not None and order.created_at < since_created:
            continue
        if since_despatch is not None and (
            order.despatch_date is None or parse_time(order.despatch_date, "DespatchDate") < since_despatch
        ):
            continue
        rows.append((updated, order.id, order))
    rows.sort(key=lambda row: (row[0], row[1]))
    page = rows[(page_no - 1) * limit : page_no * limit]
    return web.json_response([order_view(state, o, items=include_items) for _, _, o in page])


@route("statuses")
async def order_statuses(request: web.Request) -> web.Response:
    """`GET /api/Order/Statuses`."""
    statuses = request.app[STATE_KEY].config.statuses
    return web.json_response(
        [
            {"ID": sid, "Name": name, "ExternalName": name.title()}
            for name, sid in sorted(statuses.items(), key=lambda i: i[1])
        ]
    )


@route("connect_actions")
async def put_connect_actions(request: web.Request) -> web.Response:
    """`PUT /api/Order/{id}/ConnectActions`: the order's callback URLs (ExtraCode1 despatched,
    ExtraCode2 cancelled); a repeat with the same URLs replaces, not adds."""
    order = owned_order(request)
    body = await read_json_object(request)
    if body is None or set(body) - ACTION_FIELDS or body.get("Type") != "API":
        raise ms_error(400, "The request is invalid: a Connect Action of Type API")
    for code in ("ExtraCode1", "ExtraCode2", "ExtraCode3", "ExtraCode5"):
        url = body.get(code)
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            raise ms_error(400, f"{code} must be a URL")
    order.connect_actions = [a for a in order.connect_actions if a.get("SourceOrderId") != body.get("SourceOrderId")]
    order.connect_actions.append(dict(body))
    return web.json_response({"ID": order.id, "Success": True, "Message": "Connect Action saved", "WarningMessage": ""})


def callback_url(order: MsOrder, code: str) -> str | None:
    for action in reversed(order.connect_actions):
        if not action.get("Complete") and action.get(code):
            return str(action[code])
    return None


def send_callback(state: MintsoftState, order: MsOrder, code: str, event: str) -> WebhookDelivery | None:
    """POST the order JSON to its registered URL for `code`; None when none is registered."""
    url = callback_url(order, code)
    if url is None:
        return None
    order.last_callback = (url, event)
    state.stats.callbacks_sent += 1
    payload = json.dumps(order_view(state, order)).encode()
    return state.webhooks.enqueue(url, event, str(order.id), payload, {"Content-Type": "application/json"})


class TransitionError(Exception):
    """A step the order's status does not allow."""


def despatch(state: MintsoftState, order: MsOrder, tracking: str, service: dict[str, Any] | None) -> None:
    if order.status_id == state.status_id("CANCELLED"):
        raise TransitionError(f"Order {order.id} is cancelled and cannot be despatched")
    if order.status_id == state.status_id("DESPATCHED"):
        raise TransitionError(f"Order {order.id} is already despatched")
    chosen = service or pick_service(state, order)
    order.courier_service_id, order.courier_service_name = chosen.get("ID"), chosen.get("Name")
    order.tracking_number = tracking
    order.despatch_date = now_text()
    order.status_id = state.status_id("DESPATCHED")
    order.last_updated = time.time()


def pick_service(state: MintsoftState, order: MsOrder) -> dict[str, Any]:
    """The order's courier service, or for AUTO the account's first (Mintsoft's rules, simplified)."""
    wanted = order.submitted.get("CourierService")
    found = next((s for s in state.courier_services if s["Name"] == wanted), None)
    return found or (state.courier_services[0] if state.courier_services else {"ID": None, "Name": None})


def cancel(state: MintsoftState, order: MsOrder) -> bool:
    """Cancel; False when it was cancelled already."""
    if order.status_id == state.status_id("DESPATCHED"):
        raise TransitionError("Order has already been despatched and cannot be cancelled")
    if order.status_id == state.status_id("CANCELLED"):
        return False
    order.status_id = state.status_id("CANCELLED")
    order.last_updated = time.time()
    return True


def tracking_number(rng: random.Random) -> str:
    return "RM" + "".join(rng.choices(string.digits, k=9)) + "GB"


@route("cancel")
async def cancel_order(request: web.Request) -> web.Response:
    """`GET /api/Order/{id}/Cancel`: the generic result; a cancel fires ExtraCode2."""
    state = request.app[STATE_KEY]
    order = owned_order(request)
    try:
        changed = cancel(state, order)
    except TransitionError as exc:
        return web.json_response({"ID": order.id, "Success": False, "Message": str(exc), "WarningMessage": ""})
    if changed:
        send_callback(state, order, "ExtraCode2", "cancelled")
    warning = "" if changed else "Order was already cancelled"
    return web.json_response({"ID": order.id, "Success": True, "Message": "Order cancelled", "WarningMessage": warning})


@route("despatch")
async def mark_despatched(request: web.Request) -> web.Response:
    """`GET /api/Order/{id}/MarkDespatched?TrackingNumber=`: despatch; fires ExtraCode1."""
    state = request.app[STATE_KEY]
    order = owned_order(request)
    tracking = request.query.get("TrackingNumber") or tracking_number(state.tracking_rng)
    try:
        despatch(state, order, tracking, None)
    except TransitionError as exc:
        return web.json_response({"ID": order.id, "Success": False, "Message": str(exc), "WarningMessage": ""})
    send_callback(state, order, "ExtraCode1", "despatched")
    return web.json_response({"ID": order.id, "Success": True, "Message": "Order despatched", "WarningMessage": ""})


# --- reference data and products --------------------------------------------------------------


@route("courier_services")
async def courier_services(request: web.Request) -> web.Response:
    """`GET /api/Courier/Services`."""
    return web.json_response([{"Active": True, **s} for s in request.app[STATE_KEY].courier_services])


@route("warehouses")
async def warehouses(request: web.Request) -> web.Response:
    """`GET /api/Warehouse`."""
    return web.json_response(request.app[STATE_KEY].config.warehouses)


@route("list_products")
async def list_products(request: web.Request) -> web.Response:
    """`GET /api/Product/List?PageNo=&Limit=`: the client's products by ID."""
    state = request.app[STATE_KEY]
    page_no, limit = page_params(request)
    products = sorted(state.products.get(client_of(request), {}).values(), key=lambda p: p["ID"])
    return web.json_response(products[(page_no - 1) * limit : page_no * limit])


@route("create_product")
async def create_product(request: web.Request) -> web.Response:
    """`PUT /api/Product {SKU, Name, Weight, ...}`: Swagger's NewProductResult; a SKU the client
    has already is `Success: false`."""
    state = request.app[STATE_KEY]
    body = await read_json_object(request)
    if body is None or not isinstance(body.get("SKU"), str) or not body["SKU"].strip() or "Weight" not in body:
        raise ms_error(400, "The request is invalid: SKU and Weight are required")
    client_id = client_of(request, body.get("ClientId"))
    sku = body["SKU"]
    if sku in state.products.get(client_id, {}):
        existing = state.products[client_id][sku]
        result = {"ProductId": existing["ID"], "SKU": sku, "Success": False}
        return web.json_response(
            result | {"Name": existing["Name"], "Message": f"Product with SKU {sku} already exists"}
        )
    [added] = state.seed_products(client_id, [{"SKU": sku, "Name": body.get("Name") or sku}])
    state.stats.products_created += 1
    return web.json_response(
        {"ProductId": added["ID"], "SKU": sku, "Name": added["Name"], "Success": True, "Message": ""}
    )


# --- control API ---------------------------------------------------------------------------


async def put_user(request: web.Request) -> web.Response:
    """`PUT /_sim/users/{username}`: add or replace a user (its products are added to its client)."""
    state = request.app[STATE_KEY]
    username = request.match_info["username"]
    body = await read_control_body(request)
    if body.setdefault("username", username) != username:
        raise control_error(400, "username in the body differs from the path")
    try:
        user = from_mapping(MintsoftUser, body, "user")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    state.users[username] = user
    state.seed_products(user.client_id, [{"SKU": sku} for sku in user.products])
    return web.json_response({"user": {**dataclasses.asdict(user), "password": "***"}})


async def seed_products(request: web.Request) -> web.Response:
    """`POST /_sim/clients/{client_id}/products {"products": [{"SKU", "Name"}]}`: add to the catalog."""
    state = request.app[STATE_KEY]
    client_id = int(request.match_info["client_id"])
    products = (await read_control_body(request)).get("products")
    if not isinstance(products, list) or not all(
        isinstance(p, dict) and isinstance(p.get("SKU"), str) for p in products
    ):
        raise control_error(400, "'products' must be a list of {SKU, Name}")
    added = state.seed_products(client_id, products)
    return web.json_response({"added": added, "products": list(state.products[client_id].values())})


async def get_products(request: web.Request) -> web.Response:
    """`GET /_sim/clients/{client_id}/products`."""
    state = request.app[STATE_KEY]
    return web.json_response({"products": list(state.products.get(int(request.match_info["client_id"]), {}).values())})


async def put_courier_services(request: web.Request) -> web.Response:
    """`PUT /_sim/courier-services {"services": [{"ID", "Name"}]}`: replace the account's services."""
    state = request.app[STATE_KEY]
    services = (await read_control_body(request)).get("services")
    if not isinstance(services, list) or not all(
        isinstance(s, dict) and isinstance(s.get("ID"), int) and isinstance(s.get("Name"), str) for s in services
    ):
        raise control_error(400, "'services' must be a list of {ID, Name}")
    state.courier_services = [dict(s) for s in services]
    return web.json_response({"services": state.courier_services})


async def put_key_ttl(request: web.Request) -> web.Response:
    """`PUT /_sim/key-ttl {"key_ttl_s": 2, "expire_now": false}`: the life of keys issued from now
    on; `expire_now` also ends every key issued so far (the next call answers 401)."""
    state = request.app[STATE_KEY]
    body = await read_control_body(request)
    ttl = body.get("key_ttl_s", state.key_ttl_s)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        raise control_error(400, "'key_ttl_s' must be a positive number")
    state.key_ttl_s = float(ttl)
    if flag(body, "expire_now", False):
        state.keys = {key: (user, 0.0) for key, (user, _) in state.keys.items()}
    return web.json_response({"key_ttl_s": state.key_ttl_s, "keys": len(state.keys)})


def sim_order(request: web.Request) -> MsOrder:
    try:
        order = request.app[STATE_KEY].orders.get(int(request.match_info["order_id"]))
    except ValueError:
        order = None
    if order is None:
        raise control_error(404, "order not found")
    return order


async def respond_with_delivery(state: MintsoftState, order: MsOrder, delivery: WebhookDelivery | None, wait: bool):
    outcome = await state.webhooks.wait(delivery) if delivery and wait else delivery and delivery.summary()
    return web.json_response({"order": sim_view(state, order), "delivery": outcome})


async def despatch_control(request: web.Request) -> web.Response:
    """`POST /_sim/orders/{id}/despatch {TrackingNumber?, CourierServiceId? | CourierServiceName?,
    callback: true, wait: false}`: the warehouse despatched it; fires ExtraCode1 unless told not to."""
    state = request.app[STATE_KEY]
    order = sim_order(request)
    body = await read_control_body(request)
    service = None
    if "CourierServiceId" in body or "CourierServiceName" in body:
        service = next(
            (
                s
                for s in state.courier_services
                if s["ID"] == body.get("CourierServiceId") or s["Name"] == body.get("CourierServiceName")
            ),
            None,
        )
        if service is None:
            # A service the account does not list yet is still despatched under its name: the
            # unmapped-courier case carrier mapping must catch.
            service = {"ID": body.get("CourierServiceId"), "Name": body.get("CourierServiceName")}
    tracking = body.get("TrackingNumber") or tracking_number(state.tracking_rng)
    try:
        despatch(state, order, str(tracking), service)
    except TransitionError as exc:
        raise control_error(409, str(exc)) from None
    delivery = send_callback(state, order, "ExtraCode1", "despatched") if flag(body, "callback", True) else None
    return await respond_with_delivery(state, order, delivery, flag(body, "wait", False))


async def cancel_control(request: web.Request) -> web.Response:
    """`POST /_sim/orders/{id}/cancel {callback: true, wait: false}`: cancelled in Mintsoft."""
    state = request.app[STATE_KEY]
    order = sim_order(request)
    body = await read_control_body(request)
    try:
        cancel(state, order)
    except TransitionError as exc:
        raise control_error(409, str(exc)) from None
    delivery = send_callback(state, order, "ExtraCode2", "cancelled") if flag(body, "callback", True) else None
    return await respond_with_delivery(state, order, delivery, flag(body, "wait", False))


async def redeliver(request: web.Request) -> web.Response:
    """`POST /_sim/orders/{id}/redeliver {wait}`: POST the order JSON again to its last callback URL."""
    state = request.app[STATE_KEY]
    order = sim_order(request)
    wait = flag(await read_control_body(request), "wait", False)
    if order.last_callback is None:
        raise control_error(409, "no callback to redeliver")
    url, event = order.last_callback
    payload = json.dumps(order_view(state, order)).encode()
    delivery = state.webhooks.enqueue(url, event, str(order.id), payload, {"Content-Type": "application/json"})
    return await respond_with_delivery(state, order, delivery, wait)


async def list_sim_orders(request: web.Request) -> web.Response:
    """`GET /_sim/orders?client_id=&order_number=`: every order with its Connect Actions."""
    state = request.app[STATE_KEY]
    client_id, number = request.query.get("client_id"), request.query.get("order_number")
    orders = [
        sim_view(state, o)
        for o in state.orders.values()
        if (client_id is None or str(o.client_id) == client_id)
        and (number is None or o.submitted["OrderNumber"] == number)
    ]
    return web.json_response({"orders": orders})


async def get_sim_order(request: web.Request) -> web.Response:
    """`GET /_sim/orders/{id}`."""
    return web.json_response(sim_view(request.app[STATE_KEY], sim_order(request)))


# --- wiring --------------------------------------------------------------------------------


def create_app(config: MintsoftConfig) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`, callbacks run while the app runs."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = MintsoftState(config)
    app.cleanup_ctx.append(webhook_cleanup_ctx(lambda a: a[STATE_KEY].webhooks))
    add_vendor_routes(app.router)
    add_control_routes(app.router)
    return app


def add_vendor_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/Auth", auth)
    router.add_put("/api/Order", create_order)
    router.add_get("/api/Order/Search", search_orders)
    router.add_get("/api/Order/List", list_orders)
    router.add_get("/api/Order/Statuses", order_statuses)
    router.add_get("/api/Order/{order_id}", get_order)
    router.add_get("/api/Order/{order_id}/Cancel", cancel_order)
    router.add_get("/api/Order/{order_id}/MarkDespatched", mark_despatched)
    router.add_put("/api/Order/{order_id}/ConnectActions", put_connect_actions)
    router.add_get("/api/Courier/Services", courier_services)
    router.add_get("/api/Warehouse", warehouses)
    router.add_get("/api/Product/List", list_products)
    router.add_put("/api/Product", create_product)


def add_control_routes(router: web.UrlDispatcher) -> None:
    router.add_put("/_sim/users/{username}", put_user)
    router.add_post("/_sim/clients/{client_id:\\d+}/products", seed_products)
    router.add_get("/_sim/clients/{client_id:\\d+}/products", get_products)
    router.add_put("/_sim/courier-services", put_courier_services)
    router.add_put("/_sim/key-ttl", put_key_ttl)
    router.add_get("/_sim/orders", list_sim_orders)
    router.add_get("/_sim/orders/{order_id}", get_sim_order)
    router.add_post("/_sim/orders/{order_id}/despatch", despatch_control)
    router.add_post("/_sim/orders/{order_id}/cancel", cancel_control)
    router.add_post("/_sim/orders/{order_id}/redeliver", redeliver)
    add_shared_control_routes(router, STATE_KEY, FAULT_ROUTES, allow_after_create=True)
