"""Vinoshipper simulator app: the /api/v3 producer order API, thin order webhooks and the /_sim control API."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import random
import string
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, NoReturn
from urllib.parse import quote

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    credentials_match,
    flag,
    from_mapping,
    iso_now,
    parse_basic_auth,
    read_control_body,
    read_json_object,
    records_of,
    route,
    route_of,
    stats_as_dict,
    webhook_cleanup_ctx,
)

RATE_DESCRIPTIONS = {"01": "UPS Next Day Air", "02": "UPS 2nd Day Air", "03": "UPS Ground", "12": "UPS 3 Day Select"}
SHIPPER = {"id": 1, "name": "Vinoshipper Fulfillment Center", "isFulfillmentCenter": True}
FAULT_ROUTES = ("create", "upsert", "check_compliance", "get_order", "receipt", "cancel", "shipped")
PENDING, FULFILLED, SHIPPED, DELIVERED, CANCELLED = "PENDING", "FULFILLED", "SHIPPED", "DELIVERED", "CANCELLED"
CLOSED_STATUSES = (DELIVERED, CANCELLED)
FROZEN_STATUSES = (SHIPPED, DELIVERED, CANCELLED)
BOX_SIZES = (1, 2, 3, 6, 12)

OrderHook = Callable[[dict[str, Any]], Awaitable[None] | None]


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class VinoshipperProducer:
    """A winery account: its API key, webhook URL, known SKUs and the states it may ship to."""

    producer_id: str
    api_key: str
    api_secret: str
    webhook_url: str | None = None
    products: list[str] = dataclasses.field(default_factory=list)
    licensed_states: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class VinoshipperConfig(WebhookSettings):
    """Settings of one Vinoshipper simulator; `from_dict` reads the JSON config file's shape."""

    producers: list[VinoshipperProducer] = dataclasses.field(default_factory=list)
    base_url_for_links: str | None = None
    max_bottles_per_order: int = 24
    minimum_age: int = 21
    random_429_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.producers = records_of(VinoshipperProducer, self.producers, "producers")

    @classmethod
    def from_dict(cls, data: Any) -> VinoshipperConfig:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- request schema (strict: unknown fields are client bugs) ---------------------------


def _iso_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO-8601 date (YYYY-MM-DD)") from None
    return value


def _iso_datetime(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time") from None
    return value


def _email(value: str) -> str:
    local, at, domain = value.partition("@")
    if not (at and local and "." in domain):
        raise ValueError("must be an e-mail address")
    return value


Text = Annotated[str, Field(min_length=1)]
IsoDate = Annotated[str, AfterValidator(_iso_date)]
IsoDateTime = Annotated[str, AfterValidator(_iso_datetime)]
Email = Annotated[str, AfterValidator(_email)]
StateCode = Annotated[str, Field(pattern=r"^[A-Za-z]{2}$")]
Money = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Address(_Strict):
    street1: Text
    street2: str | None = None
    city: Text
    postalCode: Text
    stateCode: StateCode


class Phone(_Strict):
    number: Text
    # Clients send either a country code ("US") or a calling code (1); both are accepted.
    country: str | int | None = None


class Customer(_Strict):
    firstName: Text
    lastName: Text
    email: Email | None = None
    phone: str | None = None
    # Optional here: a missing birth date is a compliance problem (age unverifiable), not a 400.
    dateOfBirth: IsoDate | None = None
    address: Address | None = None


class ShipToAddress(_Strict):
    street1: Text
    street2: str | None = None
    city: Text
    postalCode: Text
    stateCode: StateCode
    country: str = "US"
    phone: Phone | None = None
    upsAccessPointId: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    company: str | None = None


class Product(_Strict):
    productId: Text
    quantity: int = Field(ge=1)
    price: Money | None = None


class ShippingRate(_Strict):
    carrier: Literal["UPS"]
    rateCode: Literal["01", "02", "03", "12"]


class OrderRequest(_Strict):
    """The body of create, upsert and check-compliance requests."""

    orderNumber: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    sourceUrl: str | None = None
    orderDate: IsoDateTime | None = None
    customer: Customer
    shipToAddress: ShipToAddress
    productIdType: Literal["SKU", "VS_ID"] = "SKU"
    products: list[Product] = Field(min_length=1)
    shippingRate: ShippingRate
    totalPrice: Money | None = None
    shippingPrice: Money | None = None
    tax: Money | None = None
    discount: Money | None = None
    tipAmount: Money | None = None
    isPaid: bool | None = None
    paid: bool | None = None
    specialInstructions: str | None = None
    metaFields: Any = None
    requestedShipDate: IsoDate | None = None
    suppressCustomerEmails: bool | None = None

    @field_validator("metaFields")
    @classmethod
    def _meta_fields(cls, value: Any) -> Any:
        scalar = (str, int, float, bool, type(None))
        if value is None or (isinstance(value, dict) and all(isinstance(v, scalar) for v in value.values())):
            return value
        if isinstance(value, list) and all(
            isinstance(entry, dict) and set(entry) == {"key", "value"} and isinstance(entry["key"], str)
            for entry in value
        ):
            return value
        raise ValueError("must be an object of scalar values or a list of {key, value} objects")


# --- state --------------------------------------------------------------------------


@dataclasses.dataclass
class VsOrder:
    """A stored order: what the producer submitted plus Vinoshipper's own progress fields."""

    producer_id: str
    order_number: str
    submitted: dict[str, Any]
    request: OrderRequest
    received_at: float
    status: str = PENDING
    purchased_at: str = ""
    shipped_at: str | None = None
    delivered_at: str | None = None
    canceled_at: str | None = None
    cancel_reason: str | None = None
    packages: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_webhook: bytes | None = None
    last_event: str | None = None


@dataclasses.dataclass
class VinoshipperStats:
    """Counters served by `GET /_sim/stats`."""

    orders_created: int = 0
    # PUTs that found their order already there (changed or not): not new orders, and not
    # duplicate submissions either, since create-or-update by number is idempotent.
    orders_updated: int = 0
    duplicate_submissions: int = 0
    random_429s: int = 0
    faults_served: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    responses: Counter[str] = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return stats_as_dict(self)


class VinoshipperState:
    """Everything the simulator knows. Handlers mutate it without awaiting mid-change.

    `on_order_created` hooks run after an order is stored and before the create response
    is sent; each gets the order as `GET /_sim/orders/{orderNumber}` shows it.
    """

    def __init__(self, config: VinoshipperConfig):
        self.config = config
        self.producers = {producer.producer_id: producer for producer in config.producers}
        self.webhooks = config.webhook_dispatcher()
        self.faults = FaultQueue()
        self.on_order_created: list[OrderHook] = []
        # Separate generators: tracking numbers stay reproducible however many 429s were drawn.
        self.tracking_rng = random.Random(config.seed)
        self.throttle_rng = random.Random(config.seed)
        self.reset()

    def reset(self) -> None:
        """Forget orders, stats, faults and the delivery log; keep producers and hooks."""
        self.orders: dict[str, VsOrder] = {}
        self.next_number = 100001
        self.stats = VinoshipperStats()
        self.faults.clear()
        self.webhooks.clear_log()

    def producer_for_key(self, api_key: str) -> VinoshipperProducer | None:
        """Return the producer owning `api_key`."""
        return next((p for p in self.producers.values() if p.api_key == api_key), None)

    def assign_order_number(self) -> str:
        """Return an unused Vinoshipper-assigned order number."""
        while str(self.next_number) in self.orders:
            self.next_number += 1
        self.next_number += 1
        return str(self.next_number - 1)


STATE_KEY = web.AppKey("vinoshipper_state", VinoshipperState)
PRODUCER_KEY = web.RequestKey("vinoshipper_producer", VinoshipperProducer)


# --- errors and small helpers ------------------------------------------------------------


def vs_error(status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any) -> SimError:
    """Return an error in Vinoshipper's shape: `{message, ...extra}`."""
    return SimError(status, {"message": message, **extra}, headers)


def field_path(loc: tuple[Any, ...]) -> str:
    """Render a pydantic location as `products[0].productId`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def schema_error(exc: ValidationError) -> SimError:
    """Translate pydantic errors into a 400 naming each field."""
    errors = [
        {"field": field_path(error["loc"]), "message": error["msg"].removeprefix("Value error, ")}
        for error in exc.errors()
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return vs_error(400, f"Invalid order: {first['field']}: {first['message']}{more}", errors=errors)


async def parse_order_request(request: web.Request) -> tuple[dict[str, Any], OrderRequest]:
    """Return the raw body and its validated form; raises 400 on bad JSON or fields."""
    body = await read_json_object(request)
    if body is None:
        raise vs_error(400, "Request body must be a JSON object", errors=[])
    try:
        return body, OrderRequest.model_validate(body)
    except ValidationError as exc:
        raise schema_error(exc) from None


def order_path(order_number: str) -> str:
    """Return the v3 path of an order."""
    return f"/api/v3/p/orders/{quote(order_number, safe='')}"


# --- checks ------------------------------------------------------------------------------


def check_products(producer: VinoshipperProducer, order: OrderRequest) -> None:
    """Raise 400 naming the first product the producer does not sell."""
    known = set(producer.products)
    if order.productIdType == "VS_ID":
        # The simulator's Vinoshipper ids are the 1-based positions in the producer's product list.
        known = {str(index) for index in range(1, len(producer.products) + 1)}
    for index, product in enumerate(order.products):
        if product.productId not in known:
            label = "SKU" if order.productIdType == "SKU" else "Vinoshipper id"
            message = f"Unknown product {label} '{product.productId}'"
            raise vs_error(400, message, errors=[{"field": f"products[{index}].productId", "message": message}])


def compliance_problems(config: VinoshipperConfig, producer: VinoshipperProducer, order: OrderRequest) -> list[str]:
    """Return every reason the order may not ship, as human-readable sentences."""
    problems = []
    ship_to = order.shipToAddress
    state_code = ship_to.stateCode.upper()
    if ship_to.country.upper() not in ("US", "USA"):
        problems.append(f"Shipping to country {ship_to.country} is not permitted")
    if state_code not in {code.upper() for code in producer.licensed_states}:
        problems.append(f"Shipping to {state_code} is not permitted for this producer")
    problems += age_problems(config, order.customer.dateOfBirth)
    bottles = sum(product.quantity for product in order.products)
    if bottles > config.max_bottles_per_order:
        problems.append(f"Order has {bottles} bottles; the maximum per order is {config.max_bottles_per_order}")
    return problems


def age_problems(config: VinoshipperConfig, date_of_birth: str | None) -> list[str]:
    """Return the age-verification problem, if any, for the customer's birth date."""
    if date_of_birth is None:
        return [f"Customer date of birth is required to verify the minimum age of {config.minimum_age}"]
    age = age_on(date.fromisoformat(date_of_birth), datetime.now(UTC).date())
    if age < config.minimum_age:
        return [f"Customer must be at least {config.minimum_age} years old (age {age})"]
    return []


def age_on(birth: date, today: date) -> int:
    """Return the whole years between `birth` and `today`."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def check_compliant(config: VinoshipperConfig, producer: VinoshipperProducer, order: OrderRequest) -> None:
    """Raise 422 with the order's compliance problems, if any."""
    problems = compliance_problems(config, producer, order)
    if problems:
        raise vs_error(422, "Order is not compliant", orderProblems=problems)


def reject_duplicate(state: VinoshipperState, order_number: str) -> NoReturn:
    """Count and reject a submission reusing an order number held by any producer."""
    state.stats.duplicate_submissions += 1
    raise vs_error(409, f"Order number {order_number} already exists")


# --- order views ---------------------------------------------------------------------------


def order_detail(order: VsOrder) -> dict[str, Any]:
    """Return the order as `GET /api/v3/p/orders/{orderNumber}` shows it."""
    submitted = order.submitted
    rate = order.request.shippingRate
    detail = {
        "orderNumber": order.order_number,
        "status": order.status,
        "orderStatus": "CLOSED" if order.status in CLOSED_STATUSES else "OPEN",
        "isCompliant": True,
        "orderProblems": [],
        "purchasedAt": order.purchased_at,
        "shippedAt": order.shipped_at,
        "deliveredAt": order.delivered_at,
        "canceledAt": order.canceled_at,
        "cancelReason": order.cancel_reason,
        "requestedShipDate": submitted.get("requestedShipDate"),
        "suppressCustomerEmails": bool(submitted.get("suppressCustomerEmails")),
        "isPaid": bool(order.request.isPaid if order.request.isPaid is not None else order.request.paid),
        "productIdType": order.request.productIdType,
        "shipping": {
            "carrier": rate.carrier,
            "rateCode": rate.rateCode,
            "rateDescription": RATE_DESCRIPTIONS[rate.rateCode],
            "shipper": dict(SHIPPER),
            "packages": [dict(package) for package in order.packages],
        },
    }
    passthrough = {k: v for k, v in submitted.items() if k not in detail and k not in ("orderNumber", "paid")}
    return detail | passthrough


def sim_view(order: VsOrder) -> dict[str, Any]:
    """Return the detail plus the simulator-only fields `producer_id` and `receivedAt`."""
    return {"producer_id": order.producer_id, "receivedAt": order.received_at, **order_detail(order)}


def receipt(order: VsOrder) -> dict[str, Any]:
    """Return the order's receipt: lines and money as submitted."""
    request = order.request
    lines = [
        {
            "productId": p.productId,
            "quantity": p.quantity,
            "price": p.price,
            "lineTotal": round((p.price or 0) * p.quantity, 2),
        }
        for p in request.products
    ]
    return {
        "orderNumber": order.order_number,
        "purchasedAt": order.purchased_at,
        "status": order.status,
        "customer": {"firstName": request.customer.firstName, "lastName": request.customer.lastName},
        "lineItems": lines,
        "subtotal": round(sum(line["lineTotal"] for line in lines), 2),
        "shippingPrice": request.shippingPrice,
        "tax": request.tax,
        "discount": request.discount,
        "tipAmount": request.tipAmount,
        "totalPrice": request.totalPrice,
        "isPaid": bool(request.isPaid if request.isPaid is not None else request.paid),
    }


# --- lifecycle transitions -------------------------------------------------------------------


class TransitionError(Exception):
    """A lifecycle step that the order's current status does not allow."""


def fulfil(order: VsOrder) -> None:
    """Label created: PENDING -> FULFILLED."""
    if order.status != PENDING:
        raise TransitionError(f"Order {order.order_number} is {order.status}; only PENDING orders can be fulfilled")
    order.status = FULFILLED


def ship(order: VsOrder, tracking_numbers: list[str], carrier: str) -> None:
    """Carrier scan: PENDING or FULFILLED -> SHIPPED, with one package per tracking number."""
    if order.status == PENDING:
        fulfil(order)
    if order.status != FULFILLED:
        raise TransitionError(f"Order {order.order_number} is {order.status}; it cannot be shipped")
    bottles = sum(product.quantity for product in order.request.products)
    box = box_label(-(-bottles // len(tracking_numbers)))
    order.packages = [{"carrier": carrier, "trackingNumber": number, "box": box} for number in tracking_numbers]
    order.shipped_at = iso_now()
    order.status = SHIPPED


def box_label(bottles: int) -> str:
    """Return the smallest standard shipper that holds `bottles`."""
    size = next((size for size in BOX_SIZES if size >= bottles), bottles)
    return f"{size} Bottle Shipper"


def deliver(order: VsOrder) -> None:
    """Carrier delivery: SHIPPED -> DELIVERED."""
    if order.status != SHIPPED:
        raise TransitionError(f"Order {order.order_number} is {order.status}; only SHIPPED orders can be delivered")
    order.delivered_at = iso_now()
    order.status = DELIVERED


def cancel(order: VsOrder, reason: str | None) -> None:
    """Void: any status before SHIPPED -> CANCELLED."""
    if order.status in FROZEN_STATUSES:
        raise TransitionError(f"Order {order.order_number} is {order.status}; it cannot be cancelled")
    order.canceled_at = iso_now()
    order.cancel_reason = reason
    order.status = CANCELLED


def tracking_number(rng: random.Random) -> str:
    """Return a UPS-looking tracking number: `1Z` and 16 upper-case letters or digits."""
    return "1Z" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))


# --- webhooks ------------------------------------------------------------------------------


def link_base(state: VinoshipperState, request: web.Request) -> str:
    """Return the base URL for webhook links: configured, else the one the caller used to reach us."""
    return (state.config.base_url_for_links or str(request.url.origin())).rstrip("/")


def send_order_webhook(
    state: VinoshipperState,
    request: web.Request,
    order: VsOrder,
    event: str,
) -> WebhookDelivery | None:
    """Build a thin ORDER webhook, remember it for redelivery and queue it to the producer."""
    base = link_base(state, request)
    number = quote(order.order_number, safe="")
    body = {
        "identifier": order.order_number,
        "subject": "ORDER",
        "event": event,
        "href": f"{base}/api/v2/p/orders/{number}",
        "hrefV3": f"{base}{order_path(order.order_number)}",
    }
    order.last_webhook, order.last_event = json.dumps(body).encode(), event
    return deliver_last_webhook(state, order)


def deliver_last_webhook(state: VinoshipperState, order: VsOrder) -> WebhookDelivery | None:
    """Queue the order's last webhook to its producer's current URL; None without a URL."""
    producer = state.producers.get(order.producer_id)
    if producer is None or not producer.webhook_url or order.last_webhook is None:
        return None
    headers = {"Content-Type": "application/json"}
    return state.webhooks.enqueue(
        producer.webhook_url,
        order.last_event or "ORDER",
        order.order_number,
        order.last_webhook,
        headers,
    )


# --- vendor middleware: auth, random 429s, faults ------------------------------------------


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply Basic auth, random throttling and injected faults to `/api` requests and count them."""
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


async def guarded_call(
    state: VinoshipperState,
    request: web.Request,
    handler: Handler,
    route_name: str,
) -> web.StreamResponse:
    """Authenticate, check the route, maybe throttle, apply a fault around the handler."""
    request[PRODUCER_KEY] = authenticate(state, request)
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        raise vs_error(routing_error.status, "Not found" if routing_error.status == 404 else "Method not allowed")
    maybe_throttle(state)
    fault = state.faults.take(route_name)
    if fault is None:
        return await handler(request)
    if fault.delay_s:
        # Read the body first: a slow server has received the request even if the client gives up.
        await request.read()
        await asyncio.sleep(fault.delay_s)
    if fault.status is None:
        return await handler(request)
    if fault.after_create:
        await handled_anyway(handler, request)
    state.stats.faults_served += 1
    raise fault_error(fault)


async def handled_anyway(handler: Handler, request: web.Request) -> None:
    """Run the handler for its effects only: the caller will never see its answer."""
    with contextlib.suppress(SimError):
        await handler(request)


def fault_error(fault: Fault) -> SimError:
    """Return the injected error answer for `fault`."""
    headers = {"Retry-After": "1"} if fault.status == 429 else None
    return vs_error(fault.status or 500, f"Injected fault ({fault.status})", headers)


def authenticate(state: VinoshipperState, request: web.Request) -> VinoshipperProducer:
    """Return the producer whose API key and secret match; raises 401 otherwise."""
    given = parse_basic_auth(request.headers.get("Authorization"))
    producer = state.producer_for_key(given[0]) if given else None
    # Compare against a placeholder for unknown keys, so timing does not reveal which keys exist.
    expected = (producer.api_key, producer.api_secret) if producer else ("", "\x00unknown")
    if not credentials_match(given, *expected) or producer is None:
        raise vs_error(401, "Invalid API key or secret", {"WWW-Authenticate": 'Basic realm="Vinoshipper"'})
    return producer


def maybe_throttle(state: VinoshipperState) -> None:
    """Answer 429 at the configured random rate (never when the rate is 0)."""
    rate = state.config.random_429_rate
    if rate > 0 and state.throttle_rng.random() < rate:
        state.stats.random_429s += 1
        raise vs_error(429, "Too many requests", {"Retry-After": "1"})


# --- vendor API ----------------------------------------------------------------------------


@route("create")
async def create_order(request: web.Request) -> web.Response:
    """`POST /api/v3/p/orders`: validate, reject duplicates, check SKUs and compliance, store."""
    state, producer = request.app[STATE_KEY], request[PRODUCER_KEY]
    submitted, order_request = await parse_order_request(request)
    if order_request.orderNumber is not None and order_request.orderNumber in state.orders:
        reject_duplicate(state, order_request.orderNumber)
    check_products(producer, order_request)
    check_compliant(state.config, producer, order_request)
    order = store_order(state, producer, submitted, order_request)
    await run_created_hooks(state, order)
    send_order_webhook(state, request, order, "CREATED")
    return web.json_response(order_detail(order), status=201)


@route("upsert")
async def upsert_order(request: web.Request) -> web.Response:
    """`PUT /api/v3/p/orders`: create, or replace the submission of an unshipped order, by orderNumber.

    Atomic like create: nothing is awaited between looking the number up and storing, so two
    PUTs of one number, however they overlap, leave one order (one 201, then 200s).
    """
    state, producer = request.app[STATE_KEY], request[PRODUCER_KEY]
    submitted, order_request = await parse_order_request(request)
    number = order_request.orderNumber
    if number is None:
        message = "orderNumber is required to create or update an order"
        raise vs_error(400, message, errors=[{"field": "orderNumber", "message": "Field required"}])
    existing = state.orders.get(number)
    if existing is not None and existing.producer_id != producer.producer_id:
        reject_duplicate(state, number)
    if existing is not None and existing.status in FROZEN_STATUSES:
        raise vs_error(409, f"Order {number} is {existing.status} and can no longer be updated")
    check_products(producer, order_request)
    check_compliant(state.config, producer, order_request)
    if existing is None:
        order = store_order(state, producer, submitted, order_request)
        await run_created_hooks(state, order)
        send_order_webhook(state, request, order, "CREATED")
        return web.json_response(order_detail(order), status=201)
    state.stats.orders_updated += 1
    if existing.submitted != submitted:
        existing.submitted, existing.request = submitted, order_request
        send_order_webhook(state, request, existing, "UPDATED")
    return web.json_response(order_detail(existing))


@route("check_compliance")
async def check_compliance(request: web.Request) -> web.Response:
    """`POST /api/v3/p/orders/check-compliance`: the create checks without storing anything."""
    state, producer = request.app[STATE_KEY], request[PRODUCER_KEY]
    _, order_request = await parse_order_request(request)
    check_products(producer, order_request)
    problems = compliance_problems(state.config, producer, order_request)
    return web.json_response({"isCompliant": not problems, "orderProblems": problems})


def store_order(
    state: VinoshipperState,
    producer: VinoshipperProducer,
    submitted: dict[str, Any],
    order_request: OrderRequest,
) -> VsOrder:
    """Store a new order under its own or an assigned number and count it."""
    number = order_request.orderNumber or state.assign_order_number()
    order = VsOrder(
        producer_id=producer.producer_id,
        order_number=number,
        submitted=submitted,
        request=order_request,
        received_at=time.time() * 1000,
        purchased_at=order_request.orderDate or iso_now(),
    )
    state.orders[number] = order
    state.stats.orders_created += 1
    return order


async def run_created_hooks(state: VinoshipperState, order: VsOrder) -> None:
    """Call each `on_order_created` hook, awaiting those that return an awaitable."""
    for hook in list(state.on_order_created):
        outcome = hook(sim_view(order))
        if inspect.isawaitable(outcome):
            await outcome


def owned_order(request: web.Request) -> VsOrder:
    """Return the caller's order named in the path; another producer's order is a 404."""
    number = request.match_info["order_number"]
    order = request.app[STATE_KEY].orders.get(number)
    if order is None or order.producer_id != request[PRODUCER_KEY].producer_id:
        raise vs_error(404, f"Order {number} not found")
    return order


@route("get_order")
async def get_order(request: web.Request) -> web.Response:
    """`GET /api/v3/p/orders/{orderNumber}`: the order detail."""
    return web.json_response(order_detail(owned_order(request)))


@route("receipt")
async def get_receipt(request: web.Request) -> web.Response:
    """`GET /api/v3/p/orders/{orderNumber}/receipt`: the order's receipt."""
    return web.json_response(receipt(owned_order(request)))


@route("cancel")
async def cancel_order(request: web.Request) -> web.Response:
    """`POST /api/v3/p/orders/{orderNumber}/cancel`: cancel an unshipped order; fires CANCELLED.

    Cancelling a cancelled order answers its detail again without a second webhook, so a
    client may retry a cancel whose response it lost.
    """
    order = owned_order(request)
    reason = cancel_reason(await strict_body(request, {"reason", "cancelReason"}))
    if order.status == CANCELLED:
        return web.json_response(order_detail(order))
    try:
        cancel(order, reason)
    except TransitionError as exc:
        raise vs_error(409, str(exc)) from None
    send_order_webhook(request.app[STATE_KEY], request, order, "CANCELLED")
    return web.json_response(order_detail(order))


def cancel_reason(body: Mapping[str, Any]) -> str | None:
    """Return the reason from a cancel body; the shape is unpublished, so `reason` or `cancelReason`."""
    field = "cancelReason" if "cancelReason" in body else "reason"
    reason = body.get(field)
    if reason is not None and not isinstance(reason, str):
        raise vs_error(400, f"{field} must be a string", errors=[{"field": field, "message": "must be a string"}])
    return reason


@route("shipped")
async def mark_shipped(request: web.Request) -> web.Response:
    """`POST /api/v3/p/orders/{orderNumber}/shipped`: a self-shipping producer adds tracking."""
    order = owned_order(request)
    body = await strict_body(request, {"trackingNumbers", "carrier"})
    numbers, carrier = body.get("trackingNumbers"), body.get("carrier", "UPS")
    if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) and n for n in numbers):
        message = "trackingNumbers must be a non-empty list of strings"
        raise vs_error(400, message, errors=[{"field": "trackingNumbers", "message": message}])
    if not isinstance(carrier, str) or not carrier:
        raise vs_error(400, "carrier must be a string", errors=[{"field": "carrier", "message": "must be a string"}])
    try:
        ship(order, numbers, carrier)
    except TransitionError as exc:
        raise vs_error(409, str(exc)) from None
    send_order_webhook(request.app[STATE_KEY], request, order, "TRACKING_NUMBER_ADDED")
    return web.json_response(order_detail(order))


async def strict_body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """Return a JSON object body with only `allowed` fields; raises 400 otherwise."""
    body = await read_json_object(request)
    if body is None:
        raise vs_error(400, "Request body must be a JSON object", errors=[])
    unknown = sorted(set(body) - allowed)
    if unknown:
        errors = [{"field": name, "message": "Extra inputs are not permitted"} for name in unknown]
        raise vs_error(400, f"Unknown field '{unknown[0]}'", errors=errors)
    return body


# --- control API ---------------------------------------------------------------------------


async def put_producer(request: web.Request) -> web.Response:
    """`PUT /_sim/producers/{producer_id}`: add or replace a producer."""
    state = request.app[STATE_KEY]
    producer_id = request.match_info["producer_id"]
    body = await read_control_body(request)
    if body.setdefault("producer_id", producer_id) != producer_id:
        raise control_error(400, "producer_id in the body differs from the path")
    try:
        producer = from_mapping(VinoshipperProducer, body, "producer")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    state.producers[producer_id] = producer
    return web.json_response({"producer": dataclasses.asdict(producer)})


def sim_order(request: web.Request) -> VsOrder:
    """Return the order named in a control path; raises a 404 control error."""
    order = request.app[STATE_KEY].orders.get(request.match_info["order_number"])
    if order is None:
        raise control_error(404, "order not found")
    return order


def lifecycle_handler(event: str, step: Callable[[VinoshipperState, VsOrder, dict[str, Any]], None]) -> Handler:
    """Return a control handler that applies `step` to an order and fires `event` unless told not to."""

    async def handle(request: web.Request) -> web.Response:
        state = request.app[STATE_KEY]
        order = sim_order(request)
        body = await read_control_body(request)
        wait, webhook = flag(body, "wait", False), flag(body, "webhook", True)
        try:
            step(state, order, body)
        except TransitionError as exc:
            raise control_error(409, str(exc)) from None
        delivery = send_order_webhook(state, request, order, event) if webhook else None
        outcome = await state.webhooks.wait(delivery) if delivery and wait else delivery and delivery.summary()
        return web.json_response({"order": sim_view(order), "delivery": outcome})

    return handle


def fulfil_step(state: VinoshipperState, order: VsOrder, body: dict[str, Any]) -> None:
    """Control step: the shipping label was printed."""
    fulfil(order)


def ship_step(state: VinoshipperState, order: VsOrder, body: dict[str, Any]) -> None:
    """Control step: UPS scanned the package; tracking numbers given or generated."""
    numbers = body.get("trackingNumbers") or [tracking_number(state.tracking_rng)]
    if not isinstance(numbers, list) or not all(isinstance(n, str) and n for n in numbers):
        raise control_error(400, "'trackingNumbers' must be a list of strings")
    ship(order, numbers, "UPS")


def deliver_step(state: VinoshipperState, order: VsOrder, body: dict[str, Any]) -> None:
    """Control step: the package reached the recipient."""
    deliver(order)


def cancel_step(state: VinoshipperState, order: VsOrder, body: dict[str, Any]) -> None:
    """Control step: the order was voided inside Vinoshipper."""
    reason = body.get("reason", "Voided in Vinoshipper")
    if not isinstance(reason, (str, type(None))):
        raise control_error(400, "'reason' must be a string")
    cancel(order, reason)


async def redeliver(request: web.Request) -> web.Response:
    """`POST /_sim/orders/{orderNumber}/redeliver`: send the order's last webhook body again."""
    state = request.app[STATE_KEY]
    order = sim_order(request)
    wait = flag(await read_control_body(request), "wait", False)
    delivery = deliver_last_webhook(state, order)
    if delivery is None:
        raise control_error(409, "no webhook to redeliver (none sent, or the producer has no webhook_url)")
    return web.json_response({"delivery": await state.webhooks.wait(delivery) if wait else delivery.summary()})


async def list_sim_orders(request: web.Request) -> web.Response:
    """`GET /_sim/orders?producer_id=`: every order with its producer and receivedAt."""
    producer_id = request.query.get("producer_id")
    orders = [
        sim_view(order)
        for order in request.app[STATE_KEY].orders.values()
        if producer_id is None or order.producer_id == producer_id
    ]
    return web.json_response({"orders": orders})


async def get_sim_order(request: web.Request) -> web.Response:
    """`GET /_sim/orders/{orderNumber}`: one order of any producer."""
    return web.json_response(sim_view(sim_order(request)))


# --- wiring --------------------------------------------------------------------------------


def create_app(config: VinoshipperConfig) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`, webhooks run while the app runs."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = VinoshipperState(config)
    app.cleanup_ctx.append(webhook_cleanup_ctx(lambda a: a[STATE_KEY].webhooks))
    add_vendor_routes(app.router)
    add_control_routes(app.router)
    return app


def add_vendor_routes(router: web.UrlDispatcher) -> None:
    """Register the Vinoshipper `/api/v3/p` routes."""
    router.add_post("/api/v3/p/orders", create_order)
    router.add_put("/api/v3/p/orders", upsert_order)
    router.add_post("/api/v3/p/orders/check-compliance", check_compliance)
    router.add_get("/api/v3/p/orders/{order_number}", get_order)
    router.add_get("/api/v3/p/orders/{order_number}/receipt", get_receipt)
    router.add_post("/api/v3/p/orders/{order_number}/cancel", cancel_order)
    router.add_post("/api/v3/p/orders/{order_number}/shipped", mark_shipped)


def add_control_routes(router: web.UrlDispatcher) -> None:
    """Register the `/_sim` control routes."""
    router.add_put("/_sim/producers/{producer_id}", put_producer)
    router.add_get("/_sim/orders", list_sim_orders)
    router.add_get("/_sim/orders/{order_number}", get_sim_order)
    router.add_post("/_sim/orders/{order_number}/fulfil", lifecycle_handler("UPDATED", fulfil_step))
    router.add_post("/_sim/orders/{order_number}/ship", lifecycle_handler("TRACKING_NUMBER_ADDED", ship_step))
    router.add_post("/_sim/orders/{order_number}/deliver", lifecycle_handler("SHIPMENT_STATUS_UPDATED", deliver_step))
    router.add_post("/_sim/orders/{order_number}/cancel", lifecycle_handler("CANCELLED", cancel_step))
    router.add_post("/_sim/orders/{order_number}/redeliver", redeliver)
    add_shared_control_routes(router, STATE_KEY, FAULT_ROUTES, allow_after_create=True)
