"""ShipStation simulator app: API v1 (orders, shipments, getrates, webhooks) with its 40/min limit and
X-Rate-Limit-* headers, thin SHIP_NOTIFY webhooks, a Custom Store puller, and the /_sim control API."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from tests.simulators.common import (
    FaultQueue,
    Handler,
    SimError,
    WebhookDelivery,
    WebhookSettings,
    add_shared_control_routes,
    basic_auth_header,
    control_error,
    control_error_middleware,
    credentials_match,
    from_mapping,
    parse_basic_auth,
    read_control_body,
    records_of,
    route,
    route_of,
    stats_as_dict,
    webhook_cleanup_ctx,
)

FAULT_ROUTES = ("createorders", "createorder", "list_orders", "list_shipments", "getrates", "subscribe")
STATUSES = ("awaiting_payment", "awaiting_shipment", "pending_fulfillment", "shipped", "on_hold", "cancelled")
UPDATABLE = ("awaiting_payment", "awaiting_shipment", "on_hold")
MAX_BULK = 100
MAX_PAGE_SIZE = 500
STORE_DATE = "%m/%d/%Y %H:%M"
# carrierCode -> its services: (serviceCode, serviceName, base cost, cost per 100 g)
SERVICES: Mapping[str, tuple[tuple[str, str, str, str], ...]] = {
    "stamps_com": (
        ("usps_first_class_mail", "USPS First Class Mail - Package", "3.20", "0.35"),
        ("usps_priority_mail", "USPS Priority Mail - Package", "7.33", "0.42"),
    ),
    "ups": (("ups_ground", "UPS® Ground", "9.85", "0.51"), ("ups_2nd_day_air", "UPS 2nd Day Air®", "18.40", "0.90")),
    "fedex": (("fedex_ground", "FedEx Ground®", "9.60", "0.49"),),
}
# carrierCode -> its fuel surcharge on shipmentCost, quoted as otherCost and not rounded, so it
# has sub-cent parts as ShipStation's often does (0.015); USPS has none.
SURCHARGES: Mapping[str, Decimal] = {"stamps_com": Decimal(0), "ups": Decimal("0.0125"), "fedex": Decimal("0.0135")}


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class ShipStationAccount:
    """An API key pair, where its SHIP_NOTIFY webhooks go, and the Custom Store it pulls (if any)."""

    account_id: str
    api_key: str
    api_secret: str
    webhook_url: str | None = None
    store_url: str | None = None
    store_user: str | None = None
    store_password: str | None = None
    store_statuses: dict[str, str] | None = None  # the store's status words -> ShipStation's


@dataclasses.dataclass
class ShipStationConfig(WebhookSettings):
    """Settings of one ShipStation simulator; `from_dict` reads the JSON config file's shape."""

    accounts: list[ShipStationAccount] = dataclasses.field(default_factory=list)
    base_url_for_links: str | None = None
    rate_limit_per_minute: int = 40
    rate_window_s: float = 60.0
    random_429_rate: float = 0.0
    seed: int = 0
    store_pull_interval_s: float = 0.0  # the Custom Store scheduler's interval; 0: pulls only on demand

    def __post_init__(self) -> None:
        self.accounts = records_of(ShipStationAccount, self.accounts, "accounts")

    @classmethod
    def from_dict(cls, data: Any) -> ShipStationConfig:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- state --------------------------------------------------------------------------


class RateWindow:
    """ShipStation's count: `limit` requests per key pair in a window opening at its first request.

    Unlike the shared FixedWindowRateLimiter it also tells what is left, for the headers.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._windows: dict[str, list[float]] = {}

    def hit(self, key: str) -> tuple[bool, int, float]:
        """Count one request; return (allowed, remaining, seconds until reset)."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now >= window[0] + self.window_s:
            window = self._windows[key] = [now, 0]
        reset = window[0] + self.window_s - now
        if window[1] >= self.limit:
            return False, 0, reset
        window[1] += 1
        return True, int(self.limit - window[1]), reset

    def reset(self) -> None:
        self._windows.clear()


@dataclasses.dataclass
class ShipStationStats:
    """Counters served by `GET /_sim/stats`."""

    orders_created: int = 0
    orders_updated: int = 0
    orders_rejected: int = 0
    rate_limited: int = 0
    webhooks_dropped: int = 0
    faults_served: int = 0
    store_pages_pulled: int = 0
    store_shipnotify_posts: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    responses: Counter[str] = dataclasses.field(default_factory=Counter)
    # Per account (key pair), for runs sharing one simulator: its requests by route, its 429s.
    account_requests: dict[str, Counter[str]] = dataclasses.field(default_factory=dict)
    account_rate_limited: Counter[str] = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return stats_as_dict(self)


class ShipStationState:
    """Everything the simulator knows. Handlers mutate it without awaiting mid-change."""

    def __init__(self, config: ShipStationConfig):
        self.config = config
        self.accounts = {a.account_id: a for a in config.accounts}
        self.webhooks = config.webhook_dispatcher()
        self.faults = FaultQueue()
        self.rng = random.Random(config.seed)
        self.window = RateWindow(config.rate_limit_per_minute, config.rate_window_s)
        self.reset()

    def reset(self) -> None:
        """Forget orders, shipments, stats, faults, rejections and the delivery log; keep accounts."""
        self.orders: dict[str, dict[str, dict[str, Any]]] = {}  # account -> orderKey -> order
        self.shipments: dict[str, list[dict[str, Any]]] = {}  # account -> labels
        self.rejections: dict[str, dict[str, str]] = {}  # account -> orderNumber -> errorMessage
        self.subscriptions: dict[str, dict[int, dict[str, Any]]] = {}
        self.drop_webhooks: dict[str, int] = {}  # account -> SHIP_NOTIFYs to lose (fault injection)
        self.ids = itertools.count(100000001)
        self.stats = ShipStationStats()
        self.faults.clear()
        self.window.reset()
        self.webhooks.clear_log()
        self.store_pulls: list[dict[str, Any]] = []  # the scheduler's pulls, oldest first
        self.shipnotify_deliveries: dict[int, WebhookDelivery] = {}

    def account_for(self, given: tuple[str, str] | None) -> ShipStationAccount | None:
        for account in self.accounts.values():
            if credentials_match(given, account.api_key, account.api_secret):
                return account
        return None

    def orders_of(self, account_id: str) -> dict[str, dict[str, Any]]:
        return self.orders.setdefault(account_id, {})

    def find_order(self, account_id: str, order_number: str) -> dict[str, Any] | None:
        return next((o for o in self.orders_of(account_id).values() if o["orderNumber"] == order_number), None)


STATE_KEY = web.AppKey("shipstation_state", ShipStationState)
ACCOUNT_KEY = web.RequestKey("shipstation_account", ShipStationAccount)


def ss_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> SimError:
    """An error in ShipStation's ASP.NET shape: `{"Message": ...}`."""
    return SimError(status, {"Message": message}, headers)


def now_iso() -> str:
    # ShipStation writes local-looking timestamps with seven fraction digits and no offset.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")


# --- vendor middleware: auth, the rate window, faults --------------------------------------


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Basic auth, the key pair's window with X-Rate-Limit-* on every answer, random 429s, faults."""
    if request.path.startswith("/_sim/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    route_name = route_of(request)
    state.stats.requests[route_name] += 1
    headers: dict[str, str] = {}
    try:
        account = state.account_for(parse_basic_auth(request.headers.get("Authorization")))
        if account is None:
            raise ss_error(401, "Authorization has been denied for this request.")
        request[ACCOUNT_KEY] = account
        state.stats.account_requests.setdefault(account.account_id, Counter())[route_name] += 1
        allowed, remaining, reset = state.window.hit(account.api_key)
        headers = {
            "X-Rate-Limit-Limit": str(state.window.limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(max(0, math.ceil(reset))),
        }
        if not allowed or (state.config.random_429_rate and state.rng.random() < state.config.random_429_rate):
            state.stats.rate_limited += 1
            state.stats.account_rate_limited[account.account_id] += 1
            raise ss_error(429, "Too many requests", {"Retry-After": str(max(1, math.ceil(reset)))})
        if request.match_info.http_exception is not None:
            raise ss_error(request.match_info.http_exception.status, "No HTTP resource was found")
        fault = state.faults.take(route_name)
        if fault is not None:
            if fault.delay_s:
                # Read the body first: a slow server has received the request even if the client gives up.
                await request.read()
                await asyncio.sleep(fault.delay_s)
            if fault.status is not None:
                state.stats.faults_served += 1
                if fault.status == 429:
                    # As past the window: what is left, and when to come back.
                    state.stats.rate_limited += 1
                    headers |= {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "2"}
                    raise ss_error(429, "Too many requests", {"Retry-After": "2"})
                raise ss_error(fault.status, "An error has occurred.")
        response = await handler(request)
    except SimError as exc:
        response = exc.response()
    response.headers.update(headers)
    state.stats.responses[str(response.status)] += 1
    return response


# --- vendor routes ---------------------------------------------------------------------------


def order_problem(order: Any) -> str | None:
    """Why ShipStation would refuse one order of a create call, or None."""
    if not isinstance(order, dict):
        return "The order is not an object."
    for name in ("orderNumber", "orderDate", "orderStatus"):
        if not isinstance(order.get(name), str) or not order[name]:
            return f"The {name} field is required."
    if order["orderStatus"] not in STATUSES:
        return f"The orderStatus '{order['orderStatus'][:30]}' is invalid."
    for side in ("billTo", "shipTo"):
        if not isinstance(order.get(side), dict):
            return f"The {side} field is required."
    ship_to = order["shipTo"]
    for name in ("name", "street1", "city", "postalCode", "country"):
        if not ship_to.get(name):
            return f"The shipTo.{name} field is required."
    if not isinstance(ship_to["country"], str) or len(ship_to["country"]) != 2:
        return "The shipTo.country field is invalid."
    items = order.get("items", [])
    if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("quantity", 0) >= 1 for i in items):
        return "The items field is invalid."
    return None


def upsert(state: ShipStationState, account: ShipStationAccount, order: dict[str, Any]) -> dict[str, Any]:
    """Create or update one order by orderKey; return its result line."""
    number = str(order.get("orderNumber") or "")
    key = str(order.get("orderKey") or "")
    result = {"orderId": 0, "orderNumber": number, "orderKey": key, "success": False, "errorMessage": None}
    rejected = state.rejections.get(account.account_id, {}).get(number)
    problem = rejected or order_problem(order)
    orders = state.orders_of(account.account_id)
    existing = orders.get(key) if key else None
    if problem is None and existing is not None and existing["orderStatus"] not in UPDATABLE:
        problem = f"Order {number} is {existing['orderStatus']} and can no longer be updated."
    if problem is not None:
        state.stats.orders_rejected += 1
        return result | {"errorMessage": problem}
    stamp = now_iso()
    if existing is None:
        stored = dict(order) | {"orderId": next(state.ids), "createDate": stamp, "modifyDate": stamp}
        # Without an orderKey ShipStation always creates; it makes a key up.
        stored["orderKey"] = key or f"sim-{stored['orderId']}"
        orders[stored["orderKey"]] = stored
        state.stats.orders_created += 1
    else:
        stored = existing | dict(order) | {"orderId": existing["orderId"], "modifyDate": stamp}
        orders[key] = stored
        state.stats.orders_updated += 1
    return result | {"orderId": stored["orderId"], "orderKey": stored["orderKey"], "success": True}


@route("createorders")
async def create_orders(request: web.Request) -> web.Response:
    """`POST /orders/createorders`: up to 100 orders, 200 with a result per order."""
    state, account = request.app[STATE_KEY], request[ACCOUNT_KEY]
    body = await read_json(request)
    if not isinstance(body, list) or not body:
        raise ss_error(400, "The request is invalid: expected a non-empty array of orders.")
    if len(body) > MAX_BULK:
        raise ss_error(400, f"The request is invalid: at most {MAX_BULK} orders a call.")
    results = [upsert(state, account, order if isinstance(order, dict) else {}) for order in body]
    return web.json_response({"hasErrors": not all(r["success"] for r in results), "results": results})


@route("createorder")
async def create_order(request: web.Request) -> web.Response:
    """`POST /orders/createorder`: one order; a refused one is a 400."""
    state, account = request.app[STATE_KEY], request[ACCOUNT_KEY]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ss_error(400, "The request is invalid.")
    result = upsert(state, account, body)
    if not result["success"]:
        raise ss_error(400, result["errorMessage"])
    return web.json_response(state.orders_of(account.account_id)[result["orderKey"]])


@route("list_orders")
async def list_orders(request: web.Request) -> web.Response:
    """`GET /orders?orderNumber=&orderStatus=`: orderNumber matches a prefix, as ShipStation does."""
    state, account = request.app[STATE_KEY], request[ACCOUNT_KEY]
    number, status = request.query.get("orderNumber"), request.query.get("orderStatus")
    found = [
        o
        for o in state.orders_of(account.account_id).values()
        if (not number or o["orderNumber"].startswith(number)) and (not status or o["orderStatus"] == status)
    ]
    return page_of(request, "orders", found)


@route("list_shipments")
async def list_shipments(request: web.Request) -> web.Response:
    """`GET /shipments?orderNumber=&orderId=&batchId=&includeShipmentItems=`, voided labels too."""
    state, account = request.app[STATE_KEY], request[ACCOUNT_KEY]
    query = request.query
    found = [
        s
        for s in state.shipments.get(account.account_id, [])
        if (not query.get("orderNumber") or s["orderNumber"].startswith(query["orderNumber"]))
        and (not query.get("orderId") or str(s["orderId"]) == query["orderId"])
        and (not query.get("batchId") or str(s["batchId"]) == query["batchId"])
        and (not query.get("trackingNumber") or s["trackingNumber"] == query["trackingNumber"])
    ]
    with_items = query.get("includeShipmentItems", "false").lower() == "true"
    found = [s for s in found if in_window(s["createDate"], query.get("createDateStart"), query.get("createDateEnd"))]
    if query.get("sortBy", "").lower() in ("createdate", "shipdate"):
        field = "createDate" if query["sortBy"].lower() == "createdate" else "shipDate"
        found = sorted(found, key=lambda s: str(s[field]), reverse=query.get("sortDir", "ASC").upper() == "DESC")
    shown = [
        {k: v for k, v in s.items() if k != "batchId"} | ({} if with_items else {"shipmentItems": None}) for s in found
    ]
    return page_of(request, "shipments", shown)


def in_window(created: str, start: str | None, end: str | None) -> bool:
    """`createDateStart`/`createDateEnd` (inclusive), in the format ShipStation writes dates."""
    try:
        moment = parse_sim_date(created)
        return (not start or moment >= parse_sim_date(start)) and (not end or moment <= parse_sim_date(end))
    except ValueError:
        raise ss_error(400, "The createDateStart and createDateEnd parameters must be dates.") from None


def parse_sim_date(text: str) -> datetime:
    # ShipStation writes seven fraction digits; Python reads six.
    head, _, fraction = text.strip().replace(" ", "T").partition(".")
    return datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else ""))


@route("getrates")
async def get_rates(request: web.Request) -> web.Response:
    """`POST /shipments/getrates`: one carrier's services (or the `serviceCode` asked) priced by
    weight, deterministic; `otherCost` is the carrier's fuel surcharge, unrounded."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ss_error(400, "The request is invalid.")
    for name in ("carrierCode", "fromPostalCode", "toCountry", "toPostalCode", "weight"):
        if not body.get(name):
            raise ss_error(400, f"The {name} field is required.")
    services = SERVICES.get(str(body["carrierCode"]))
    if services is None:
        raise ss_error(400, f"Carrier '{str(body['carrierCode'])[:30]}' is not connected to this account.")
    if body.get("serviceCode"):
        services = tuple(s for s in services if s[0] == body["serviceCode"])
    weight = body["weight"]
    if not isinstance(weight, dict) or not isinstance(weight.get("value"), int | float) or weight["value"] <= 0:
        raise ss_error(400, "The weight field is invalid.")
    grams = Decimal(str(weight["value"])) * {
        "grams": 1,
        "ounces": Decimal("28.3495"),
        "pounds": Decimal("453.592"),
    }.get(str(weight.get("units")), 1)
    surcharge = SURCHARGES[str(body["carrierCode"])]
    rates = []
    for code, name, base, per_100g in services:
        cost = (Decimal(base) + Decimal(per_100g) * grams / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        other = cost * surcharge
        # A float of a short decimal is written back as exactly its digits (json writes the
        # shortest text reading as that float): 0.301625 goes out as 0.301625.
        rates.append({"serviceName": name, "serviceCode": code, "shipmentCost": float(cost), "otherCost": float(other)})
    return web.json_response(rates)


@route("subscribe")
async def subscribe(request: web.Request) -> web.Response:
    """`POST /webhooks/subscribe {target_url, event}`: SHIP_NOTIFY goes to target_url from now on."""
    state, account = request.app[STATE_KEY], request[ACCOUNT_KEY]
    body = await read_json(request)
    if (
        not isinstance(body, dict)
        or not body.get("target_url")
        or body.get("event") not in ("SHIP_NOTIFY", "ORDER_NOTIFY")
    ):
        raise ss_error(400, "The target_url and event fields are required.")
    hook_id = next(state.ids)
    state.subscriptions.setdefault(account.account_id, {})[hook_id] = dict(body)
    if body["event"] == "SHIP_NOTIFY":
        account.webhook_url = str(body["target_url"])
    return web.json_response({"id": hook_id}, status=201)


async def read_json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise ss_error(400, "The request is invalid: the body is not JSON.") from None


def page_of(request: web.Request, key: str, items: list[dict[str, Any]]) -> web.Response:
    try:
        page = max(1, int(request.query.get("page", "1")))
        size = min(MAX_PAGE_SIZE, max(1, int(request.query.get("pageSize", "100"))))
    except ValueError:
        raise ss_error(400, "The page and pageSize parameters must be numbers.") from None
    pages = math.ceil(len(items) / size)
    chosen = items[(page - 1) * size : page * size]
    return web.json_response({key: chosen, "total": len(items), "page": page, "pages": pages})


# --- shipments and SHIP_NOTIFY -------------------------------------------------------------


def ship(
    state: ShipStationState,
    account: ShipStationAccount,
    order: dict[str, Any],
    body: Mapping[str, Any],
    links: str,
) -> dict[str, Any]:
    """Buy a label for the order: a shipment in a batch of its own, the order shipped, SHIP_NOTIFY sent."""
    batch_id = next(state.ids)
    label = buy_label(state, account, order, body, batch_id)
    notify(state, account, f"{links}/shipments?batchId={batch_id}&includeShipmentItems=False", order["orderNumber"])
    return label


def buy_label(
    state: ShipStationState, account: ShipStationAccount, order: dict[str, Any], body: Mapping[str, Any], batch_id: int
) -> dict[str, Any]:
    """A label for the order in batch `batch_id`; the order is shipped. No SHIP_NOTIFY yet (the
    caller sends one per batch); a Custom Store order's store is told at once."""
    shipment_id = next(state.ids)
    label = {
        "shipmentId": shipment_id,
        "batchId": batch_id,
        "orderId": order["orderId"],
        "orderKey": order["orderKey"],
        "orderNumber": order["orderNumber"],
        "createDate": now_iso(),
        "shipDate": str(body.get("ship_date") or datetime.now(UTC).date().isoformat()),
        "shipmentCost": float(body.get("shipment_cost", 9.54)),
        "insuranceCost": 0.0,
        "trackingNumber": str(body.get("tracking_number") or f"9400{shipment_id:018d}"),
        "carrierCode": str(body.get("carrier_code") or "stamps_com"),
        "serviceCode": str(body.get("service_code") or "usps_priority_mail"),
        "packageCode": "package",
        "voided": False,
        "voidDate": None,
        "shipTo": order.get("shipTo"),
        "shipmentItems": [
            {
                "lineItemKey": i.get("lineItemKey"),
                "sku": i.get("sku"),
                "name": i.get("name"),
                "quantity": i.get("quantity"),
            }
            for i in order.get("items", [])
        ],
    }
    state.shipments.setdefault(account.account_id, []).append(label)
    order["orderStatus"] = "shipped"
    if str(order.get("orderKey", "")).startswith(STORE_KEY_PREFIX) and account.store_url:
        notify_store(state, account, order, label)  # the Custom Store it came from hears of it
    return label


def notify(state: ShipStationState, account: ShipStationAccount, resource_url: str, key: str) -> None:
    if state.drop_webhooks.get(account.account_id, 0) > 0:
        # Lost on the way (fault injection): ShipStation gave up, or our endpoint never heard.
        state.drop_webhooks[account.account_id] -= 1
        state.stats.webhooks_dropped += 1
        return
    if account.webhook_url:
        payload = json.dumps({"resource_url": resource_url, "resource_type": "SHIP_NOTIFY"}).encode()
        state.webhooks.enqueue(account.webhook_url, "SHIP_NOTIFY", key, payload, {"Content-Type": "application/json"})


def links_base(request: web.Request) -> str:
    return (request.app[STATE_KEY].config.base_url_for_links or str(request.url.origin())).rstrip("/")


def sim_account(request: web.Request) -> ShipStationAccount:
    account = request.app[STATE_KEY].accounts.get(request.match_info["account_id"])
    if account is None:
        raise control_error(404, "account not found")
    return account


async def ship_order(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{account_id}/orders/{order_number}/ship {tracking_number?, carrier_code?, ...}`."""
    state, account = request.app[STATE_KEY], sim_account(request)
    order = state.find_order(account.account_id, request.match_info["order_number"])
    if order is None:
        raise control_error(404, "order not found")
    if order["orderStatus"] == "cancelled":
        raise control_error(409, "the order is cancelled")
    body = await read_control_body(request)
    label = ship(state, account, order, body, links_base(request))
    answer: dict[str, Any] = {"shipment": label}
    if body.get("wait") is True and "shipnotifyDelivery" in label:
        answer["shipnotify"] = await shipnotify_outcome(state, label)
    return web.json_response(answer, status=201)


async def ship_batch(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{account_id}/shipments/batch {order_numbers? | limit?}`: labels for
    the named orders, or for up to `limit` (default 500) orders awaiting shipment, oldest first,
    bought as one batch, as a shipper prints a batch: one SHIP_NOTIFY names the whole batch."""
    state, account = request.app[STATE_KEY], sim_account(request)
    body = await read_control_body(request)
    numbers, limit = body.get("order_numbers"), body.get("limit", MAX_PAGE_SIZE)
    if numbers is not None:
        if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
            raise control_error(400, "'order_numbers' must be a list of strings")
        chosen = [state.find_order(account.account_id, number) for number in numbers]
        if None in chosen or any(o["orderStatus"] == "cancelled" for o in chosen if o):
            raise control_error(409, "an order is unknown or cancelled")
    elif isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        waiting = (o for o in state.orders_of(account.account_id).values() if o["orderStatus"] == "awaiting_shipment")
        chosen = list(itertools.islice(waiting, limit))
    else:
        raise control_error(400, "'limit' must be a positive integer")
    if not chosen:
        return web.json_response({"batchId": None, "order_numbers": []})
    batch_id = next(state.ids)
    labels = [buy_label(state, account, order, {}, batch_id) for order in chosen if order]
    url = f"{links_base(request)}/shipments?batchId={batch_id}&includeShipmentItems=False"
    notify(state, account, url, str(batch_id))
    return web.json_response({"batchId": batch_id, "order_numbers": [s["orderNumber"] for s in labels]}, status=201)


async def void_label(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{account_id}/shipments/{shipment_id}/void`: the label is voided; an order
    left with no live label awaits shipment again (ShipStation sends no webhook for a void)."""
    state, account = request.app[STATE_KEY], sim_account(request)
    labels = state.shipments.get(account.account_id, [])
    label = next((s for s in labels if str(s["shipmentId"]) == request.match_info["shipment_id"]), None)
    if label is None:
        raise control_error(404, "shipment not found")
    label["voided"], label["voidDate"] = True, now_iso()
    if not any(s["orderKey"] == label["orderKey"] and not s["voided"] for s in labels):
        order = state.orders_of(account.account_id).get(label["orderKey"])
        if order is not None:
            order["orderStatus"] = "awaiting_shipment"
    return web.json_response({"shipment": label})


async def drop_webhooks(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{account_id}/webhooks/drop {count}`: the next `count` SHIP_NOTIFYs of
    the account are lost (never sent), as when our endpoint was down past ShipStation's retries."""
    state, account = request.app[STATE_KEY], sim_account(request)
    count = (await read_control_body(request)).get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise control_error(400, "'count' must be a non-negative integer")
    state.drop_webhooks[account.account_id] = count
    return web.json_response({"drop": count})


async def reject_orders(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{account_id}/rejections {order_number, message}`: createorders answers
    `success: false` with `message` for that order number until the rejection is removed."""
    state, account = request.app[STATE_KEY], sim_account(request)
    body = await read_control_body(request)
    number, message = body.get("order_number"), body.get("message", "The order was rejected.")
    if not isinstance(number, str) or not number or not isinstance(message, str):
        raise control_error(400, "'order_number' (and optional 'message') must be strings")
    rejections = state.rejections.setdefault(account.account_id, {})
    if body.get("remove") is True:
        rejections.pop(number, None)
    else:
        rejections[number] = message
    return web.json_response({"rejections": rejections})


async def put_account(request: web.Request) -> web.Response:
    """`PUT /_sim/accounts/{account_id}`: add or replace an account."""
    state = request.app[STATE_KEY]
    account_id = request.match_info["account_id"]
    body = await read_control_body(request)
    if body.setdefault("account_id", account_id) != account_id:
        raise control_error(400, "account_id in the body differs from the path")
    try:
        state.accounts[account_id] = from_mapping(ShipStationAccount, body, "account")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    return web.json_response({"account": {k: v for k, v in body.items() if "secret" not in k and "password" not in k}})


async def list_sim_orders(request: web.Request) -> web.Response:
    """`GET /_sim/accounts/{account_id}/orders`: every stored order and label of the account."""
    state, account = request.app[STATE_KEY], sim_account(request)
    return web.json_response(
        {
            "orders": list(state.orders_of(account.account_id).values()),
            "shipments": state.shipments.get(account.account_id, []),
        }
    )


# --- the Custom Store puller --------------------------------------------------------------------

# The store's status words -> ShipStation statuses, as the user maps them in the store's settings
# (these are Cin7 Omni's defaults). An order whose status is not mapped is not imported.
DEFAULT_STORE_STATUSES: Mapping[str, str] = {
    "New": "awaiting_payment",
    "Fully Picked": "awaiting_shipment",
    "Dispatched": "shipped",
    "Cancelled": "cancelled",
}
STORE_KEY_PREFIX = "store-"  # orderKey of an order imported from the Custom Store: store-<OrderID>


async def pull_store(request: web.Request) -> web.Response:
    """`POST /_sim/accounts/{account_id}/store/pull {start_date?, end_date?, ship?}`: one pull now,
    as the scheduler's; answers what happened (pages, orders, skipped, each shipnotify's status)."""
    state, account = request.app[STATE_KEY], sim_account(request)
    if not account.store_url or not account.store_user or not account.store_password:
        raise control_error(409, "the account has no Custom Store (store_url, store_user, store_password)")
    body = await read_control_body(request)
    end = datetime.now(UTC)
    start_date = str(body.get("start_date") or (end - timedelta(days=30)).strftime(STORE_DATE))
    end_date = str(body.get("end_date") or end.strftime(STORE_DATE))
    pulled, orders = await pull(state, account, start_date, end_date)
    if "error" in pulled:
        return web.json_response(pulled, status=502)
    if body.get("ship") is True:
        labels = [ship(state, account, order, {}, links_base(request)) for order in orders]
        pulled["shipnotify"] = [await shipnotify_outcome(state, label) for label in labels]
    return web.json_response(pulled)


async def pull(
    state: ShipStationState, account: ShipStationAccount, start: str, end: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What ShipStation's scheduler does with a Custom Store: GET
    `?action=export&start_date=&end_date=&page=N` with the store's Basic credentials, from page 1
    up to the `pages` the answers say, and import each exported order (upserted by OrderID) whose
    OrderStatus the store's status mapping knows. Returns the pages, the imported order numbers
    and the skipped ones (or an `error` naming the page that failed), and the imported orders."""
    auth = {"Authorization": basic_auth_header(str(account.store_user), str(account.store_password))}
    imported: list[dict[str, Any]] = []
    skipped: list[str] = []
    pages, page = 1, 1
    timeout = aiohttp.ClientTimeout(total=state.config.webhook_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while page <= pages:
            params = {"action": "export", "start_date": start, "end_date": end, "page": str(page)}
            async with http.get(str(account.store_url), params=params, headers=auth) as answer:
                text = await answer.read()
                if answer.status != 200:
                    return {
                        "error": f"export page {page}: HTTP {answer.status}",
                        "orders": _numbers(imported),
                    }, imported
            state.stats.store_pages_pulled += 1
            try:
                root = parse_store_xml(text)
                pages = int(root.get("pages") or "1")
                for element in root.findall("Order"):
                    order = store_order(state, account, element)
                    if order is None:
                        skipped.append(element.findtext("OrderNumber") or "")
                    else:
                        imported.append(order)
            except (SimError, ValueError) as exc:
                return {"error": f"export page {page}: {exc}", "orders": _numbers(imported)}, imported
            page += 1
    return {"pages": pages, "orders": _numbers(imported), "skipped": skipped}, imported


def _numbers(orders: list[dict[str, Any]]) -> list[str]:
    return [str(o["orderNumber"]) for o in orders]


async def list_store_pulls(request: web.Request) -> web.Response:
    """`GET /_sim/accounts/{account_id}/store/pulls`: the scheduler's pulls of the account's store."""
    state, account = request.app[STATE_KEY], sim_account(request)
    return web.json_response({"pulls": [p for p in state.store_pulls if p["account_id"] == account.account_id]})


def parse_store_xml(text: bytes) -> ElementTree.Element:
    if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
        raise control_error(502, "the store's export has a DTD; ShipStation refuses it")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise control_error(502, "the store's export is not well-formed XML") from None
    if root.tag != "Orders":
        raise control_error(502, "the store's export root is not <Orders>")
    return root


def store_order(
    state: ShipStationState, account: ShipStationAccount, element: ElementTree.Element
) -> dict[str, Any] | None:
    """One exported <Order> as a ShipStation order, upserted by the store's OrderID; None when its
    OrderStatus is not in the store's status mapping (ShipStation leaves it out)."""
    for name in ("OrderID", "OrderNumber", "OrderDate", "LastModified"):
        value = element.findtext(name) or ""
        if not value.strip():
            raise control_error(502, f"an exported order has no {name}")
        if name in ("OrderDate", "LastModified"):
            try:
                datetime.strptime(value.strip(), STORE_DATE)
            except ValueError:
                raise control_error(502, f"{name} {value[:20]!r} is not MM/dd/yyyy HH:mm") from None
    status = (account.store_statuses or DEFAULT_STORE_STATUSES).get(element.findtext("OrderStatus") or "")
    if status is None:
        return None
    ship_to = element.find("Customer/ShipTo")
    items = [
        {
            "lineItemKey": i.findtext("LineItemID") or None,
            "sku": i.findtext("SKU"),
            "name": i.findtext("Name"),
            "quantity": int(i.findtext("Quantity") or "0"),
        }
        for i in element.findall("Items/Item")
    ]
    order: dict[str, Any] = {
        "orderNumber": element.findtext("OrderNumber"),
        "orderKey": f"{STORE_KEY_PREFIX}{element.findtext('OrderID')}",
        "orderDate": element.findtext("OrderDate"),
        "orderStatus": status,
        "storeStatus": element.findtext("OrderStatus"),
        "lastModified": element.findtext("LastModified"),
        "customerNotes": element.findtext("CustomerNotes"),
        "shipTo": {
            "name": ship_to.findtext("Name") if ship_to is not None else None,
            "street1": ship_to.findtext("Address1") if ship_to is not None else None,
            "city": ship_to.findtext("City") if ship_to is not None else None,
            "postalCode": ship_to.findtext("PostalCode") if ship_to is not None else None,
            "country": ship_to.findtext("Country") if ship_to is not None else None,
        },
        "items": items,
    }
    orders = state.orders_of(account.account_id)
    existing = orders.get(order["orderKey"])
    if existing is None:
        order |= {"orderId": next(state.ids), "createDate": now_iso()}
        state.stats.orders_created += 1
    elif existing["orderStatus"] not in UPDATABLE and status != "cancelled":
        # A re-pulled window brings the order back: a label bought here is not undone by it.
        order = existing | {"lastModified": order["lastModified"], "storeStatus": order["storeStatus"]}
    else:
        order = existing | order
        state.stats.orders_updated += 1
    orders[order["orderKey"]] = order
    return order


def notify_store(
    state: ShipStationState, account: ShipStationAccount, order: dict[str, Any], label: dict[str, Any]
) -> None:
    """POST `?action=shipnotify&order_number=&carrier=&service=&tracking_number=` with the label's
    ShipNotice to the store the order came from (delivered, retried and logged as webhooks are);
    the label gets the delivery's id as `shipnotifyDelivery`."""
    carrier = {"stamps_com": "USPS", "ups": "UPS", "fedex": "FedEx"}.get(label["carrierCode"], "Other")
    service = label["serviceCode"].replace("_", " ").title()
    query = urlencode(
        {
            "action": "shipnotify",
            "order_number": order["orderNumber"],
            "carrier": carrier,
            "service": service,
            "tracking_number": label["trackingNumber"],
        }
    )
    separator = "&" if "?" in str(account.store_url) else "?"
    headers = {
        "Authorization": basic_auth_header(str(account.store_user), str(account.store_password)),
        "Content-Type": "application/xml; charset=utf-8",
    }
    notice = shipnotice_xml(order, label, carrier, service)
    delivery = state.webhooks.enqueue(
        f"{account.store_url}{separator}{query}", "shipnotify", order["orderNumber"], notice, headers
    )
    state.stats.store_shipnotify_posts += 1
    state.shipnotify_deliveries[delivery.id] = delivery
    label["shipnotifyDelivery"] = delivery.id


async def shipnotify_outcome(state: ShipStationState, label: dict[str, Any]) -> dict[str, Any]:
    """Wait for the label's shipnotify delivery; its order number and the store's final answer."""
    summary = await state.webhooks.wait(state.shipnotify_deliveries[label["shipnotifyDelivery"]])
    return {"order_number": label["orderNumber"], "status": summary["status_code"], "state": summary["state"]}


async def store_scheduler(app: web.Application):
    """Pull every account's Custom Store every `store_pull_interval_s` (0: only on demand), over
    the window since the previous pull with a minute's overlap, as ShipStation's scheduler
    re-pulls; each pull's outcome is kept in `state.store_pulls`."""
    state = app[STATE_KEY]
    interval = state.config.store_pull_interval_s
    if interval <= 0:
        yield
        return

    async def loop() -> None:
        since: dict[str, datetime] = {}
        while True:
            await asyncio.sleep(interval)
            for account in list(state.accounts.values()):
                if not (account.store_url and account.store_user and account.store_password):
                    continue
                now = datetime.now(UTC)
                start = since.get(account.account_id, now - timedelta(days=30)) - timedelta(minutes=1)
                try:
                    outcome, _ = await pull(state, account, start.strftime(STORE_DATE), now.strftime(STORE_DATE))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    outcome = {"error": f"{type(exc).__name__}: {exc}"}
                state.store_pulls.append({"account_id": account.account_id, **outcome})
                if "error" not in outcome:
                    since[account.account_id] = now

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def shipnotice_xml(order: dict[str, Any], label: dict[str, Any], carrier: str, service: str) -> bytes:
    """The ShipNotice ShipStation posts: the documented elements, free text as CDATA."""

    def cdata(value: Any) -> str:
        return "<![CDATA[" + str(value or "").replace("]]>", "]]]]><![CDATA[>") + "]]>"

    ship_date = datetime.fromisoformat(label["shipDate"]).strftime("%m/%d/%Y")
    items = "".join(
        f"<Item><SKU>{cdata(i['sku'])}</SKU><Name>{cdata(i['name'])}</Name>"
        f"<Quantity>{int(i['quantity'] or 0)}</Quantity><LineItemID>{escape(str(i['lineItemKey'] or ''))}</LineItemID></Item>"
        for i in label["shipmentItems"]
    )
    ship_to = order.get("shipTo") or {}
    text = (
        '<?xml version="1.0" encoding="utf-8"?><ShipNotice>'
        f"<OrderNumber>{cdata(order['orderNumber'])}</OrderNumber><OrderID>{cdata(order['orderKey'].removeprefix('store-'))}</OrderID>"
        f"<CustomerNotes>{cdata(order.get('customerNotes'))}</CustomerNotes><InternalNotes>{cdata('')}</InternalNotes>"
        f"<NotesToCustomer>{cdata('Thank you for your order')}</NotesToCustomer><NotifyCustomer>false</NotifyCustomer>"
        f"<LabelCreateDate>{datetime.now(UTC).strftime(STORE_DATE)}</LabelCreateDate><ShipDate>{ship_date}</ShipDate>"
        f"<Carrier>{escape(carrier)}</Carrier><Service>{escape(service)}</Service>"
        f"<TrackingNumber>{escape(label['trackingNumber'])}</TrackingNumber><ShippingCost>{label['shipmentCost']:.2f}</ShippingCost>"
        f"<Recipient><Name>{cdata(ship_to.get('name'))}</Name><Address1>{cdata(ship_to.get('street1'))}</Address1>"
        f"<City>{cdata(ship_to.get('city'))}</City><PostalCode>{cdata(ship_to.get('postalCode'))}</PostalCode>"
        f"<Country>{cdata(ship_to.get('country'))}</Country></Recipient>"
        f"<Items>{items}</Items></ShipNotice>"
    )
    return text.encode("utf-8")


# --- the app ------------------------------------------------------------------------------------


def create_app(config: ShipStationConfig) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`, webhooks run while the app runs."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = ShipStationState(config)
    app.cleanup_ctx.append(webhook_cleanup_ctx(lambda a: a[STATE_KEY].webhooks))
    app.cleanup_ctx.append(store_scheduler)  # after the dispatcher: its shipnotify posts need it running
    router = app.router
    router.add_post("/orders/createorders", create_orders)
    router.add_post("/orders/createorder", create_order)
    router.add_get("/orders", list_orders)
    router.add_get("/shipments", list_shipments)
    router.add_post("/shipments/getrates", get_rates)
    router.add_post("/webhooks/subscribe", subscribe)
    router.add_put("/_sim/accounts/{account_id}", put_account)
    router.add_get("/_sim/accounts/{account_id}/orders", list_sim_orders)
    router.add_post("/_sim/accounts/{account_id}/orders/{order_number}/ship", ship_order)
    router.add_post("/_sim/accounts/{account_id}/shipments/batch", ship_batch)
    router.add_post("/_sim/accounts/{account_id}/shipments/{shipment_id}/void", void_label)
    router.add_post("/_sim/accounts/{account_id}/rejections", reject_orders)
    router.add_post("/_sim/accounts/{account_id}/webhooks/drop", drop_webhooks)
    router.add_post("/_sim/accounts/{account_id}/store/pull", pull_store)
    router.add_get("/_sim/accounts/{account_id}/store/pulls", list_store_pulls)
    add_shared_control_routes(router, STATE_KEY, FAULT_ROUTES, allow_after_create=False)
    return app
