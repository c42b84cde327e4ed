"""Commerce7 simulator app: the /v1 order and fulfillment API, Order webhooks and the /_sim control API."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import math
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from tests.simulators.common import (
    FaultQueue,
    FixedWindowRateLimiter,
    Handler,
    SimError,
    WebhookDelivery,
    WebhookSettings,
    add_shared_control_routes,
    basic_auth_header,
    control_error,
    control_error_middleware,
    credentials_match,
    epoch_ms_from_iso,
    flag,
    from_mapping,
    iso_from_epoch,
    iso_from_epoch_ms,
    parse_basic_auth,
    parse_iso_datetime,
    read_control_body,
    read_json_object,
    records_of,
    retry_after_header,
    route,
    route_of,
    webhook_cleanup_ctx,
)

PAGE_LIMIT_MAX = 50
FAULT_ROUTES = ("list_orders", "get_order", "update_order", "fulfillment", "delete_fulfillment")
FULFILLMENT_TYPES = ("Shipped", "Picked Up", "Carry Out", "No Fulfillment Required")
DATE_FILTERS = ("orderPaidDate", "orderSubmittedDate", "orderFulfilledDate", "createdAt", "updatedAt")
FILTER_OPERATORS = ("gte", "gt", "lte", "lt", "btw")
VALUE_FILTERS = (
    "fulfillmentStatus",
    "complianceStatus",
    "channel",
    "orderDeliveryMethod",
    "paymentStatus",
    "shippingStatus",
)
ERROR_TYPES = {
    400: "validation",
    401: "unauthorized",
    404: "notFound",
    405: "methodNotAllowed",
    409: "conflict",
    429: "tooManyRequests",
    500: "internalServerError",
    503: "serviceUnavailable",
}
# Webhooks caused through the control API name this user; API-caused ones name the app id.
SIM_USER = "sim"


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class Commerce7Tenant:
    """A winery tenant, the app credentials that may call it and where its webhooks go."""

    tenant_id: str
    app_id: str
    app_secret: str
    webhook_url: str | None = None
    webhook_user: str | None = None
    webhook_password: str | None = None


@dataclasses.dataclass
class Commerce7Config(WebhookSettings):
    """Settings of one Commerce7 simulator; `from_dict` reads the JSON config file's shape."""

    tenants: list[Commerce7Tenant] = dataclasses.field(default_factory=list)
    rate_limit_per_minute: int = 100
    first_order_number: int = 1001

    def __post_init__(self) -> None:
        self.tenants = records_of(Commerce7Tenant, self.tenants, "tenants")

    @classmethod
    def from_dict(cls, data: Any) -> Commerce7Config:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- state --------------------------------------------------------------------------


@dataclasses.dataclass
class StoredOrder:
    """An order as Commerce7 holds it, plus the last webhook body sent for it."""

    tenant_id: str
    order: dict[str, Any]
    last_webhook: bytes | None = None
    last_event: str | None = None


@dataclasses.dataclass
class Commerce7Stats:
    """Counters served by `GET /_sim/stats`."""

    requests: defaultdict[str, Counter[str]] = dataclasses.field(default_factory=lambda: defaultdict(Counter))
    responses: Counter[str] = dataclasses.field(default_factory=Counter)
    rate_limited: Counter[str] = dataclasses.field(default_factory=Counter)
    faults_served: int = 0
    orders_created: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as JSON-ready data."""
        return {
            "requests": {name: dict(by_tenant) for name, by_tenant in self.requests.items()},
            "responses": dict(self.responses),
            "rate_limited": sum(self.rate_limited.values()),
            "rate_limited_by_tenant": dict(self.rate_limited),
            "faults_served": self.faults_served,
            "orders_created": self.orders_created,
        }


class Commerce7State:
    """Everything the simulator knows. Handlers mutate it without awaiting mid-change."""

    def __init__(self, config: Commerce7Config):
        self.config = config
        self.tenants = {tenant.tenant_id: tenant for tenant in config.tenants}
        self.webhooks = config.webhook_dispatcher()
        self.limiter = FixedWindowRateLimiter(config.rate_limit_per_minute, 60.0)
        self.faults = FaultQueue()
        self.reset()

    def reset(self) -> None:
        """Forget orders, e-mails, stats, faults, rate windows and the delivery log; keep tenants."""
        self.orders: dict[str, StoredOrder] = {}
        self.numbers: dict[str, set[int]] = defaultdict(set)
        self.next_number: dict[str, int] = {}
        self.emails: list[dict[str, Any]] = []
        self.stats = Commerce7Stats()
        self.limiter.reset()
        self.faults.clear()
        self.webhooks.clear_log()

    def take_order_number(self, tenant_id: str, wanted: int | None) -> int:
        """Reserve `wanted`, or the tenant's next free number; raises a 409 control error on reuse."""
        if wanted is not None and wanted in self.numbers[tenant_id]:
            raise control_error(409, f"orderNumber {wanted} already exists for tenant {tenant_id}")
        number = wanted if wanted is not None else self.next_number.get(tenant_id, self.config.first_order_number)
        while number in self.numbers[tenant_id]:
            number += 1
        self.numbers[tenant_id].add(number)
        self.next_number[tenant_id] = max(self.next_number.get(tenant_id, 0), number + 1)
        return number

    def tenant_orders(self, tenant_id: str) -> list[dict[str, Any]]:
        """Return a tenant's orders by ascending orderNumber, the order used for paging."""
        orders = [stored.order for stored in self.orders.values() if stored.tenant_id == tenant_id]
        return sorted(orders, key=lambda order: order["orderNumber"])


STATE_KEY = web.AppKey("commerce7_state", Commerce7State)
TENANT_KEY = web.RequestKey("commerce7_tenant", Commerce7Tenant)


# --- small helpers ------------------------------------------------------------------


def c7_error(
    status: int,
    message: str,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> SimError:
    """Return an error in Commerce7's shape: `{statusCode, type, message, errors}`."""
    body = {"statusCode": status, "type": ERROR_TYPES.get(status, "error"), "message": message, "errors": errors or []}
    return SimError(status, body, headers)


def validation_error(errors: list[dict[str, str]]) -> SimError:
    """Return a 400 validation error listing per-field problems."""
    first = errors[0]
    return c7_error(400, f"{first['field']}: {first['message']}", errors)


def field_error(field: str, message: str) -> dict[str, str]:
    """Return one entry of an error's `errors` list."""
    return {"field": field, "message": message}


def new_id() -> str:
    """Return a fresh Commerce7-style UUID."""
    return str(uuid.uuid4())


def bump_updated_at(order: dict[str, Any]) -> str:
    """Set `updatedAt` to now, strictly after its previous value, and return it.

    Receivers key idempotency on (id, updatedAt), so two changes within one millisecond
    must still produce distinct values.
    """
    now_ms = math.floor(time.time() * 1000)
    previous = order.get("updatedAt")
    if previous:
        now_ms = max(now_ms, epoch_ms_from_iso(previous) + 1)
    order["updatedAt"] = iso_from_epoch_ms(now_ms)
    return order["updatedAt"]


async def read_body(request: web.Request) -> dict[str, Any]:
    """Return a vendor request's JSON object body; raises a 400 Commerce7 error otherwise."""
    body = await read_json_object(request)
    if body is None:
        raise c7_error(400, "Request body must be a JSON object")
    return body


def find_order(request: web.Request) -> StoredOrder:
    """Return the calling tenant's order named in the path; raises a 404 Commerce7 error."""
    stored = request.app[STATE_KEY].orders.get(request.match_info["order_id"])
    if stored is None or stored.tenant_id != request[TENANT_KEY].tenant_id:
        raise c7_error(404, "Order not found")
    return stored


# --- webhooks -----------------------------------------------------------------------


def send_order_webhook(state: Commerce7State, stored: StoredOrder, action: str, user: str) -> WebhookDelivery | None:
    """Snapshot the order into an Order webhook, remember it for redelivery and queue it."""
    body = {"object": "Order", "action": action, "payload": stored.order, "user": user, "tenantId": stored.tenant_id}
    stored.last_webhook = json.dumps(body).encode()
    stored.last_event = f"Order.{action}"
    return deliver_last_webhook(state, stored)


def deliver_last_webhook(state: Commerce7State, stored: StoredOrder) -> WebhookDelivery | None:
    """Queue the order's last webhook body to its tenant's current URL; None if it has no URL."""
    tenant = state.tenants.get(stored.tenant_id)
    if tenant is None or not tenant.webhook_url or stored.last_webhook is None:
        return None
    headers = {"Content-Type": "application/json"}
    if tenant.webhook_user is not None:
        headers["Authorization"] = basic_auth_header(tenant.webhook_user, tenant.webhook_password or "")
    return state.webhooks.enqueue(
        tenant.webhook_url,
        stored.last_event or "Order",
        stored.order["id"],
        stored.last_webhook,
        headers,
    )


async def delivery_outcome(
    state: Commerce7State,
    delivery: WebhookDelivery | None,
    wait: bool,
) -> dict[str, Any] | None:
    """Return the delivery's record, after its final outcome when `wait` is set."""
    if delivery is None:
        return None
    return await state.webhooks.wait(delivery) if wait else delivery.summary()


# --- vendor middleware: auth, rate limit, faults -----------------------------------------


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply Commerce7's auth, rate limit and injected faults to `/v1` requests and count them."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    route_name = route_of(request)
    state.stats.requests[route_name][request.headers.get("tenant", "-")] += 1
    try:
        response = await guarded_call(state, request, handler, route_name)
    except SimError as exc:
        response = exc.response()
    state.stats.responses[str(response.status)] += 1
    return response


async def guarded_call(
    state: Commerce7State,
    request: web.Request,
    handler: Handler,
    route_name: str,
) -> web.StreamResponse:
    """Authenticate, check the route exists, count against the rate limit, apply a fault, handle."""
    request[TENANT_KEY] = authenticate(state, request)
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        raise c7_error(
            routing_error.status, "Resource not found" if routing_error.status == 404 else "Method not allowed"
        )
    enforce_rate_limit(state, request[TENANT_KEY].tenant_id)
    await apply_fault(state, request, route_name)
    return await handler(request)


def authenticate(state: Commerce7State, request: web.Request) -> Commerce7Tenant:
    """Return the tenant whose app credentials and `tenant` header match; raises 401 otherwise."""
    given = parse_basic_auth(request.headers.get("Authorization"))
    if given is None:
        raise c7_error(401, "Missing or malformed Basic authorization")
    tenant_id = request.headers.get("tenant")
    if not tenant_id:
        raise c7_error(401, "Missing tenant header")
    tenant = state.tenants.get(tenant_id)
    if tenant is None or not credentials_match(given, tenant.app_id, tenant.app_secret):
        raise c7_error(401, "Invalid app credentials for this tenant")
    return tenant


def enforce_rate_limit(state: Commerce7State, tenant_id: str) -> None:
    """Count one request for the tenant; raises 429 with Retry-After when over the window's limit."""
    wait_s = state.limiter.hit(tenant_id)
    if wait_s is None:
        return
    state.stats.rate_limited[tenant_id] += 1
    limit = state.limiter.limit
    raise c7_error(429, f"Rate limit of {limit} requests per minute exceeded", headers=retry_after_header(wait_s))


async def apply_fault(state: Commerce7State, request: web.Request, route_name: str) -> None:
    """Delay and/or fail the request if a fault is queued for its route."""
    fault = state.faults.take(route_name)
    if fault is None:
        return
    if fault.delay_s:
        # Read the body first: a slow server has received the request even if the client gives up.
        await request.read()
        await asyncio.sleep(fault.delay_s)
    if fault.status is not None:
        state.stats.faults_served += 1
        headers = retry_after_header(1) if fault.status == 429 else None
        raise c7_error(fault.status, f"Injected fault ({fault.status})", headers=headers)


# --- vendor API: orders -------------------------------------------------------------------


@route("list_orders")
async def list_orders(request: web.Request) -> web.Response:
    """`GET /v1/order`: page mode (`page`, `limit`) or cursor mode (`cursor=start`), with filters."""
    state = request.app[STATE_KEY]
    query = request.query
    limit = int_param(query, "limit", PAGE_LIMIT_MAX)
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise validation_error([field_error("limit", f"must be between 1 and {PAGE_LIMIT_MAX}")])
    wanted = build_filter(query)
    matches = [order for order in state.tenant_orders(request[TENANT_KEY].tenant_id) if wanted(order)]
    if "cursor" in query:
        page, cursor = cursor_page(matches, query["cursor"], limit)
        return web.json_response({"orders": page, "total": len(matches), "cursor": cursor})
    page_number = int_param(query, "page", 1)
    if page_number < 1:
        raise validation_error([field_error("page", "must be 1 or greater")])
    start = (page_number - 1) * limit
    return web.json_response({"orders": matches[start : start + limit], "total": len(matches)})


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    """Return an integer query parameter; raises a 400 validation error when it is not one."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation_error([field_error(name, "must be an integer")]) from None


def cursor_page(orders: list[dict[str, Any]], cursor: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Return the page after `cursor` and the cursor for the next one, None on the last page."""
    after = decode_cursor(cursor)
    remaining = [order for order in orders if order["orderNumber"] > after]
    page = remaining[:limit]
    next_cursor = encode_cursor(page[-1]["orderNumber"]) if len(remaining) > limit else None
    return page, next_cursor


def encode_cursor(order_number: int) -> str:
    """Return an opaque cursor that resumes after `order_number`."""
    return base64.urlsafe_b64encode(json.dumps({"after": order_number}).encode()).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """Return the orderNumber a cursor resumes after; `start` means from the beginning."""
    if cursor == "start":
        return -1
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))["after"]
    except (ValueError, KeyError, TypeError, UnicodeEncodeError, binascii.Error):
        raise validation_error([field_error("cursor", "is not a cursor returned by this API")]) from None
    if not isinstance(after, int):
        raise validation_error([field_error("cursor", "is not a cursor returned by this API")])
    return after


def build_filter(query: Mapping[str, str]) -> Callable[[dict[str, Any]], bool]:
    """Return a predicate combining every supported filter in `query`; unknown parameters are ignored."""
    checks = [date_check(name, query[name]) for name in DATE_FILTERS if name in query]
    checks += [value_check(name, query[name]) for name in VALUE_FILTERS if name in query]
    if query.get("q"):
        checks.append(text_check(query["q"]))
    return lambda order: all(check(order) for check in checks)


def date_check(name: str, raw: str) -> Callable[[dict[str, Any]], bool]:
    """Return a predicate for a date filter: `gte:`, `lte:`, `gt:`, `lt:`, `btw:a|b` or a bare date."""
    operator, operand = split_operator(raw)
    if operator == "btw":
        low, sep, high = operand.partition("|")
        if not sep:
            raise validation_error([field_error(name, "btw needs two values separated by '|'")])
        lower, upper = filter_bound(name, low, False), filter_bound(name, high, True)
        return lambda order: within(order.get(name), lower, upper)
    if operator == "eq" and len(operand) == 10:
        lower, upper = filter_bound(name, operand, False), filter_bound(name, operand, True)
        return lambda order: within(order.get(name), lower, upper)
    bound = filter_bound(name, operand, operator in ("lte", "gt"))
    compare = {
        "gte": lambda v: v >= bound,
        "gt": lambda v: v > bound,
        "lte": lambda v: v <= bound,
        "lt": lambda v: v < bound,
        "eq": lambda v: v == bound,
    }[operator]
    return lambda order: order.get(name) is not None and compare(parse_iso_datetime(order[name]))


def split_operator(raw: str) -> tuple[str, str]:
    """Split `gte:2024-01-01` into ("gte", "2024-01-01"); a value without an operator means "eq"."""
    operator, sep, operand = raw.partition(":")
    return (operator, operand) if sep and operator in FILTER_OPERATORS else ("eq", raw)


def filter_bound(name: str, value: str, end_of_day: bool) -> datetime:
    """Parse a filter date; a bare date used as an upper bound means the end of that day."""
    try:
        moment = parse_iso_datetime(value)
    except ValueError:
        raise validation_error([field_error(name, f"'{value}' is not an ISO-8601 date")]) from None
    if end_of_day and len(value) == 10:
        moment += timedelta(days=1, milliseconds=-1)
    return moment


def within(value: str | None, lower: datetime, upper: datetime) -> bool:
    """Return whether an ISO timestamp lies in [lower, upper]."""
    return value is not None and lower <= parse_iso_datetime(value) <= upper


def value_check(name: str, raw: str) -> Callable[[dict[str, Any]], bool]:
    """Return a predicate matching a field against one value or a comma-separated list."""
    wanted = {part.strip() for part in raw.split(",")}
    return lambda order: order.get(name) in wanted


def text_check(text: str) -> Callable[[dict[str, Any]], bool]:
    """Return a free-text predicate over orderNumber, customer names and e-mails."""
    needle = text.lower()

    def matches(order: dict[str, Any]) -> bool:
        customer = order.get("customer") or {}
        haystack = [str(order["orderNumber"]), customer.get("firstName") or "", customer.get("lastName") or ""]
        haystack += [entry.get("email") or "" for entry in customer.get("emails") or []]
        return any(needle in value.lower() for value in haystack)

    return matches


@route("get_order")
async def get_order(request: web.Request) -> web.Response:
    """`GET /v1/order/{id}`: one order, 404 if the tenant has no such order."""
    return web.json_response(find_order(request).order)


@route("update_order")
async def update_order(request: web.Request) -> web.Response:
    """`PUT /v1/order/{id}`: merge `metaData`, replace `tags`, set `shippingStatus`; fires Order Update."""
    stored = find_order(request)
    body = await read_body(request)
    errors = update_errors(body)
    if errors:
        raise validation_error(errors)
    order = stored.order
    if "metaData" in body:
        order["metaData"] = {**(order.get("metaData") or {}), **body["metaData"]}
    if "tags" in body:
        order["tags"] = list(body["tags"])
    if "shippingStatus" in body:
        order["shippingStatus"] = body["shippingStatus"]
    bump_updated_at(order)
    send_order_webhook(request.app[STATE_KEY], stored, "Update", request[TENANT_KEY].app_id)
    return web.json_response(order)


def update_errors(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """Return type problems in an order update; other fields are read-only and ignored."""
    errors = []
    if "metaData" in body and not isinstance(body["metaData"], dict):
        errors.append(field_error("metaData", "must be an object"))
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        errors.append(field_error("tags", "must be an array of strings"))
    if "shippingStatus" in body and not isinstance(body["shippingStatus"], (str, type(None))):
        errors.append(field_error("shippingStatus", "must be a string or null"))
    return errors


# --- vendor API: fulfillments --------------------------------------------------------------


@route("fulfillment")
async def fulfill_all(request: web.Request) -> web.Response:
    """`POST /v1/order/{id}/fulfillment/all`: fulfil every unfulfilled line."""
    stored = find_order(request)
    body = await read_body(request)
    errors = fulfillment_errors(body)
    if errors:
        raise validation_error(errors)
    plan = [(item, item["quantity"] - item["quantityFulfilled"]) for item in stored.order["items"]]
    plan = [(item, quantity) for item, quantity in plan if quantity > 0]
    if not plan:
        raise validation_error([field_error("items", "order has no unfulfilled items")])
    return record_fulfillment(request, stored, body, plan)


@route("fulfillment")
async def fulfill_items(request: web.Request) -> web.Response:
    """`POST /v1/order/{id}/fulfillment`: fulfil the listed lines (`orderItemId` or `sku`)."""
    stored = find_order(request)
    body = await read_body(request)
    errors = fulfillment_errors(body)
    items = body.get("items")
    if not isinstance(items, list) or not items:
        errors.append(field_error("items", "must be a non-empty array"))
    if errors:
        raise validation_error(errors)
    return record_fulfillment(request, stored, body, plan_items(stored.order, items))


def fulfillment_errors(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """Return per-field problems in a fulfillment body (items checked separately)."""
    errors = []
    if body.get("type") not in FULFILLMENT_TYPES:
        errors.append(field_error("type", f"is required and must be one of {', '.join(FULFILLMENT_TYPES)}"))
    if not is_iso_datetime(body.get("fulfillmentDate")):
        errors.append(field_error("fulfillmentDate", "is required as an ISO-8601 date-time with time zone"))
    if not isinstance(body.get("sendTransactionEmail", False), bool):
        errors.append(field_error("sendTransactionEmail", "must be a boolean"))
    count = body.get("packageCount", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        errors.append(field_error("packageCount", "must be a positive integer"))
    if body.get("type") == "Shipped" or body.get("shipped") is not None:
        errors += shipped_errors(body.get("shipped"))
    return errors


def shipped_errors(shipped: Any) -> list[dict[str, str]]:
    """Return problems in the `shipped` block: a carrier and at least one tracking number."""
    if not isinstance(shipped, dict):
        return [field_error("shipped", "is required for a Shipped fulfillment")]
    errors = []
    if not isinstance(shipped.get("carrier"), str) or not shipped["carrier"].strip():
        errors.append(field_error("shipped.carrier", "is required"))
    numbers = shipped.get("trackingNumbers")
    if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) and n.strip() for n in numbers):
        errors.append(field_error("shipped.trackingNumbers", "must contain at least one tracking number"))
    return errors


def is_iso_datetime(value: Any) -> bool:
    """Return whether `value` is an ISO-8601 date-time string carrying a time zone."""
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def plan_items(order: dict[str, Any], requested: list[Any]) -> list[tuple[dict[str, Any], int]]:
    """Match requested lines to order items; raises a 400 naming each unmatched or over-fulfilled line."""
    plan: list[tuple[dict[str, Any], int]] = []
    errors: list[dict[str, str]] = []
    for index, line in enumerate(requested):
        item, problem = match_item(order, line, plan)
        if problem:
            errors.append(field_error(f"items[{index}]", problem))
        else:
            plan.append((item, line["quantityFulfilled"]))
    if errors:
        raise validation_error(errors)
    return plan


def match_item(
    order: dict[str, Any],
    line: Any,
    planned: list[tuple[dict[str, Any], int]],
) -> tuple[dict[str, Any], str | None]:
    """Return the order item a requested line refers to, or a problem description."""
    if not isinstance(line, dict):
        return {}, "must be an object"
    quantity = line.get("quantityFulfilled")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        return {}, "quantityFulfilled must be a positive integer"
    already = {id(item): qty for item, qty in planned}
    candidates = [
        item
        for item in order["items"]
        if item["id"] == line.get("orderItemId") or (line.get("orderItemId") is None and item["sku"] == line.get("sku"))
    ]
    if not candidates:
        return {}, "orderItemId or sku does not match an item of this order"
    for item in candidates:
        if item["quantity"] - item["quantityFulfilled"] - already.get(id(item), 0) >= quantity:
            return item, None
    return {}, "quantityFulfilled exceeds the unfulfilled quantity"


def record_fulfillment(
    request: web.Request,
    stored: StoredOrder,
    body: Mapping[str, Any],
    plan: list[tuple[dict[str, Any], int]],
) -> web.Response:
    """Store the fulfillment, update the order, e-mail the customer if asked and fire Order Update."""
    state = request.app[STATE_KEY]
    fulfillment = new_fulfillment(body, plan)
    order = stored.order
    for item, quantity in plan:
        item["quantityFulfilled"] += quantity
    order["fulfillments"].append(fulfillment)
    refresh_fulfillment_status(order, fulfillment["fulfillmentDate"])
    bump_updated_at(order)
    if body.get("sendTransactionEmail"):
        record_email(state, stored, fulfillment)
    send_order_webhook(state, stored, "Update", request[TENANT_KEY].app_id)
    return web.json_response(fulfillment)


def new_fulfillment(body: Mapping[str, Any], plan: list[tuple[dict[str, Any], int]]) -> dict[str, Any]:
    """Return the fulfillment record Commerce7 stores on the order."""
    shipped = body.get("shipped")
    return {
        "id": new_id(),
        "type": body["type"],
        "fulfillmentDate": body["fulfillmentDate"],
        "packageCount": body.get("packageCount", 1),
        "inventoryLocationId": body.get("inventoryLocationId"),
        "shipped": {"carrier": shipped["carrier"], "trackingNumbers": list(shipped["trackingNumbers"])}
        if shipped
        else None,
        "items": [{"id": item["id"], "quantityFulfilled": quantity} for item, quantity in plan],
    }


def refresh_fulfillment_status(order: dict[str, Any], fulfilled_at: str | None) -> None:
    """Derive fulfillmentStatus and orderFulfilledDate from the items' fulfilled quantities."""
    ordered = sum(item["quantity"] for item in order["items"])
    fulfilled = sum(item["quantityFulfilled"] for item in order["items"])
    if fulfilled == 0:
        order["fulfillmentStatus"] = "Not Fulfilled"
    elif fulfilled >= ordered:
        order["fulfillmentStatus"] = "Fulfilled"
    else:
        order["fulfillmentStatus"] = "Partially Fulfilled"
    if order["fulfillmentStatus"] != "Fulfilled":
        order["orderFulfilledDate"] = None
    elif fulfilled_at is not None:
        order["orderFulfilledDate"] = fulfilled_at


def record_email(state: Commerce7State, stored: StoredOrder, fulfillment: dict[str, Any]) -> None:
    """Record the transaction e-mail Commerce7 would send; skipped when the customer has no address."""
    emails = (stored.order.get("customer") or {}).get("emails") or []
    if not emails or not emails[0].get("email"):
        return
    shipped = fulfillment["shipped"] or {}
    state.emails.append(
        {
            "tenant_id": stored.tenant_id,
            "order_id": stored.order["id"],
            "orderNumber": stored.order["orderNumber"],
            "to": emails[0]["email"],
            "template": "shipment" if fulfillment["type"] == "Shipped" else "fulfillment",
            "trackingNumbers": shipped.get("trackingNumbers", []),
            "carrier": shipped.get("carrier"),
            "at": time.time(),
        }
    )


@route("delete_fulfillment")
async def delete_fulfillment(request: web.Request) -> web.Response:
    """`DELETE /v1/order/{id}/fulfillment/{fulfillmentId}`: undo a fulfillment; answers the order."""
    stored = find_order(request)
    order = stored.order
    wanted = request.match_info["fulfillment_id"]
    fulfillment = next((f for f in order["fulfillments"] if f["id"] == wanted), None)
    if fulfillment is None:
        raise c7_error(404, "Fulfillment not found")
    items = {item["id"]: item for item in order["items"]}
    for line in fulfillment["items"]:
        items[line["id"]]["quantityFulfilled"] -= line["quantityFulfilled"]
    order["fulfillments"].remove(fulfillment)
    refresh_fulfillment_status(order, None)
    bump_updated_at(order)
    send_order_webhook(request.app[STATE_KEY], stored, "Update", request[TENANT_KEY].app_id)
    return web.json_response(order)


# --- order defaults for the control API -----------------------------------------------------

ORDER_FIELDS = (
    "id",
    "orderNumber",
    "orderSubmittedDate",
    "orderPaidDate",
    "orderFulfilledDate",
    "createdAt",
    "updatedAt",
    "paymentStatus",
    "complianceStatus",
    "fulfillmentStatus",
    "shippingStatus",
    "channel",
    "orderDeliveryMethod",
    "purchaseType",
    "orderSource",
    "refundOrderId",
    "refundOrderNumber",
    "previousOrderId",
    "previousOrderNumber",
    "pickupBy",
    "carryOut",
    "customer",
    "billTo",
    "shipTo",
    "shipping",
    "items",
    "fulfillments",
    "giftMessage",
    "shippingInstructions",
    "tags",
    "metaData",
    "appData",
    "customerId",
    "subTotal",
    "shipTotal",
    "taxTotal",
    "tipTotal",
    "total",
    "orderTags",
    "promotions",
    "selectedShippingOptions",
    "requestedShipDate",
    "currencyCode",
)
DICT_FIELDS = ("customer", "billTo", "shipTo", "metaData", "appData")
LIST_FIELDS = ("shipping", "items", "fulfillments", "tags", "orderTags", "promotions")
DEFAULT_ITEM = {"sku": "WINE-CAB-750", "purchaseTitle": "Estate Cabernet Sauvignon", "quantity": 1, "price": 4500}
DEFAULT_SHIPPING = {"carrier": "UPS", "service": "Ground", "code": "03", "title": "UPS Ground", "price": 1500}


def build_order(state: Commerce7State, tenant_id: str, partial: dict[str, Any]) -> dict[str, Any]:
    """Complete a partial order with defaults; raises a 400/409 control error for bad input."""
    check_partial(partial)
    now = iso_from_epoch(time.time())
    number = state.take_order_number(tenant_id, partial.get("orderNumber"))
    ships = partial.get("orderDeliveryMethod", "Ship") == "Ship"
    customer = build_customer(partial.get("customer"), number)
    ship_to = build_ship_to(partial, customer, ships)
    order = {name: None for name in ORDER_FIELDS} | {
        "id": new_id(),
        "orderNumber": number,
        "orderSubmittedDate": now,
        "orderPaidDate": now,
        "createdAt": now,
        "updatedAt": now,
        "paymentStatus": "Paid",
        "complianceStatus": "Not Checked",
        "fulfillmentStatus": "Not Fulfilled",
        "channel": "Web",
        "orderDeliveryMethod": "Ship",
        "purchaseType": "Retail",
        "customer": customer,
        "customerId": customer["id"],
        "shipTo": ship_to,
        "billTo": {**(ship_to or default_address(customer)), **(partial.get("billTo") or {})},
        "shipping": [{**DEFAULT_SHIPPING, **line} for line in partial.get("shipping", [{}] if ships else [])],
        "items": [build_item(line) for line in partial.get("items", [{}])],
        "fulfillments": [],
        "tags": [],
        "metaData": {},
        "appData": {},
    }
    order |= {k: v for k, v in partial.items() if k not in ("customer", "shipTo", "billTo", "shipping", "items")}
    order["orderNumber"] = number
    fill_totals(order, partial)
    return order


def check_partial(partial: Any) -> None:
    """Reject unknown fields and wrongly typed containers in a control-API partial order."""
    if not isinstance(partial, dict):
        raise control_error(400, "'order' must be an object")
    unknown = sorted(set(partial) - set(ORDER_FIELDS))
    if unknown:
        raise control_error(400, f"unknown order field(s): {', '.join(unknown)}")
    for name in DICT_FIELDS:
        if partial.get(name) is not None and not isinstance(partial[name], dict):
            raise control_error(400, f"order.{name} must be an object")
    for name in LIST_FIELDS:
        if name in partial and not isinstance(partial[name], list):
            raise control_error(400, f"order.{name} must be an array")
    for index, item in enumerate(partial.get("items", [])):
        quantity = item.get("quantity", 1) if isinstance(item, dict) else None
        if not is_count(quantity) or not is_cents(item.get("price", 0)):
            raise control_error(400, f"order.items[{index}] needs a positive integer quantity and price in cents")
    for index, line in enumerate(partial.get("shipping", [])):
        if not isinstance(line, dict) or not is_cents(line.get("price", 0)):
            raise control_error(400, f"order.shipping[{index}] must be an object with a price in cents")
    number = partial.get("orderNumber")
    if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
        raise control_error(400, "order.orderNumber must be an integer")


def is_count(value: Any) -> bool:
    """Return whether `value` is a positive integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_cents(value: Any) -> bool:
    """Return whether `value` is a non-negative integer amount in cents."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def build_ship_to(partial: Mapping[str, Any], customer: dict[str, Any], ships: bool) -> dict[str, Any] | None:
    """Return the ship-to address: given fields over a default, none for pickups or when given as null."""
    if "shipTo" in partial and partial["shipTo"] is None:
        return None
    if partial.get("shipTo"):
        return {**default_address(customer), **partial["shipTo"]}
    return default_address(customer) if ships else None


def build_customer(partial: dict[str, Any] | None, number: int) -> dict[str, Any]:
    """Return the order's customer, defaulting to an adult with a unique e-mail address."""
    return {
        "id": new_id(),
        "firstName": "Jordan",
        "lastName": f"Taster{number}",
        "emails": [{"email": f"customer{number}@example.com"}],
        "birthDate": "1985-06-15",
        **(partial or {}),
    }


def default_address(customer: dict[str, Any]) -> dict[str, Any]:
    """Return a complete Californian address for the customer."""
    return {
        "firstName": customer.get("firstName"),
        "lastName": customer.get("lastName"),
        "company": None,
        "phone": "7075550100",
        "address": "1 Vineyard Way",
        "address2": None,
        "city": "Napa",
        "stateCode": "CA",
        "zipCode": "94558",
        "countryCode": "US",
        "birthDate": customer.get("birthDate"),
    }


def build_item(partial: dict[str, Any]) -> dict[str, Any]:
    """Return an order line with ids and defaults for anything not given."""
    line = {**DEFAULT_ITEM, **partial}
    if "sku" in partial and "purchaseTitle" not in partial:
        line["purchaseTitle"] = partial["sku"]
    return {
        "id": new_id(),
        "productId": new_id(),
        "productVariantId": new_id(),
        "productVariantTitle": "750ml",
        "quantityFulfilled": 0,
        "type": "Wine",
        "weight": 3.0,
        "hasShipping": True,
        "volumeInMl": 750,
        **line,
    }


def fill_totals(order: dict[str, Any], partial: Mapping[str, Any]) -> None:
    """Compute totals in cents from items and shipping unless the partial order gave them."""
    computed = {
        "subTotal": sum(item.get("price", 0) * item["quantity"] for item in order["items"]),
        "shipTotal": sum(line.get("price", 0) for line in order["shipping"]),
        "taxTotal": 0,
        "tipTotal": 0,
    }
    for name, value in computed.items():
        order[name] = partial.get(name, value)
    if partial.get("total") is None:
        order["total"] = order["subTotal"] + order["shipTotal"] + order["taxTotal"] + order["tipTotal"]


# --- control API ---------------------------------------------------------------------------


async def put_tenant(request: web.Request) -> web.Response:
    """`PUT /_sim/tenants/{tenant_id}`: add or replace a tenant."""
    state = request.app[STATE_KEY]
    tenant_id = request.match_info["tenant_id"]
    body = await read_control_body(request)
    if body.setdefault("tenant_id", tenant_id) != tenant_id:
        raise control_error(400, "tenant_id in the body differs from the path")
    try:
        tenant = from_mapping(Commerce7Tenant, body, "tenant")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    state.tenants[tenant_id] = tenant
    return web.json_response({"tenant": dataclasses.asdict(tenant)})


async def create_sim_order(request: web.Request) -> web.Response:
    """`POST /_sim/orders`: store a completed order and fire Order Create (unless `webhook` is false)."""
    state = request.app[STATE_KEY]
    body = await read_control_body(request)
    tenant_id = body.get("tenant_id")
    if tenant_id not in state.tenants:
        raise control_error(400, f"unknown tenant_id {tenant_id!r}")
    wait, webhook = flag(body, "wait", False), flag(body, "webhook", True)
    order = build_order(state, tenant_id, body.get("order", {}))
    stored = state.orders[order["id"]] = StoredOrder(tenant_id, order)
    state.stats.orders_created += 1
    # "webhook": false stands for a delivery lost on the way: the order exists, nobody was told.
    delivery = send_order_webhook(state, stored, "Create", SIM_USER) if webhook else None
    return web.json_response({"order": order, "delivery": await delivery_outcome(state, delivery, wait)}, status=201)


async def update_sim_order(request: web.Request) -> web.Response:
    """`PATCH /_sim/orders/{id}`: overwrite top-level fields as a back-office user would; fires Order Update."""
    state = request.app[STATE_KEY]
    stored = sim_order(request)
    body = await read_control_body(request)
    changes = body.get("order", {})
    check_partial(changes)
    if "id" in changes or "orderNumber" in changes:
        raise control_error(400, "id and orderNumber cannot be changed")
    wait, webhook = flag(body, "wait", False), flag(body, "webhook", True)
    stored.order |= changes
    bump_updated_at(stored.order)
    delivery = send_order_webhook(state, stored, "Update", SIM_USER) if webhook else None
    return web.json_response({"order": stored.order, "delivery": await delivery_outcome(state, delivery, wait)})


async def redeliver(request: web.Request) -> web.Response:
    """`POST /_sim/orders/{id}/redeliver`: send the order's last webhook body again, unchanged."""
    state = request.app[STATE_KEY]
    stored = sim_order(request)
    body = await read_control_body(request)
    wait = flag(body, "wait", False)
    if stored.last_webhook is None:
        raise control_error(409, "no webhook has been sent for this order")
    delivery = deliver_last_webhook(state, stored)
    if delivery is None:
        raise control_error(409, f"tenant {stored.tenant_id} has no webhook_url")
    return web.json_response({"delivery": await delivery_outcome(state, delivery, wait)})


def sim_order(request: web.Request) -> StoredOrder:
    """Return the order named in a control path; raises a 404 control error."""
    stored = request.app[STATE_KEY].orders.get(request.match_info["order_id"])
    if stored is None:
        raise control_error(404, "order not found")
    return stored


async def list_sim_orders(request: web.Request) -> web.Response:
    """`GET /_sim/orders?tenant_id=`: every stored order, optionally of one tenant."""
    state = request.app[STATE_KEY]
    tenant_id = request.query.get("tenant_id")
    orders = [stored.order for stored in state.orders.values() if tenant_id is None or stored.tenant_id == tenant_id]
    return web.json_response({"orders": orders})


async def get_sim_order(request: web.Request) -> web.Response:
    """`GET /_sim/orders/{id}`: the full stored order of any tenant, as `GET /v1/order/{id}` shows it."""
    return web.json_response(sim_order(request).order)


async def list_emails(request: web.Request) -> web.Response:
    """`GET /_sim/emails?tenant_id=`: customer e-mails Commerce7 would have sent."""
    tenant_id = request.query.get("tenant_id")
    emails = [e for e in request.app[STATE_KEY].emails if tenant_id is None or e["tenant_id"] == tenant_id]
    return web.json_response({"emails": emails})


# --- wiring --------------------------------------------------------------------------------


def create_app(config: Commerce7Config) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`, webhooks run while the app runs."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = Commerce7State(config)
    app.cleanup_ctx.append(webhook_cleanup_ctx(lambda a: a[STATE_KEY].webhooks))
    add_vendor_routes(app.router)
    add_control_routes(app.router)
    return app


def add_vendor_routes(router: web.UrlDispatcher) -> None:
    """Register the Commerce7 `/v1` routes."""
    router.add_get("/v1/order", list_orders)
    router.add_get("/v1/order/{order_id}", get_order)
    router.add_put("/v1/order/{order_id}", update_order)
    router.add_post("/v1/order/{order_id}/fulfillment/all", fulfill_all)
    router.add_post("/v1/order/{order_id}/fulfillment", fulfill_items)
    router.add_delete("/v1/order/{order_id}/fulfillment/{fulfillment_id}", delete_fulfillment)


def add_control_routes(router: web.UrlDispatcher) -> None:
    """Register the `/_sim` control routes."""
    router.add_put("/_sim/tenants/{tenant_id}", put_tenant)
    router.add_post("/_sim/orders", create_sim_order)
    router.add_get("/_sim/orders", list_sim_orders)
    router.add_get("/_sim/orders/{order_id}", get_sim_order)
    router.add_patch("/_sim/orders/{order_id}", update_sim_order)
    router.add_post("/_sim/orders/{order_id}/redeliver", redeliver)
    router.add_get("/_sim/emails", list_emails)
    add_shared_control_routes(router, STATE_KEY, FAULT_ROUTES, allow_after_create=False)
