"""CommerceInterface (Groupon Goods supplier API v4) simulator app and its /_sim control API.

Follows the v4 reference: `supplier_id` and `token` on every call (GET query, POST form), a
refused one answered HTTP 200 `{success: false, reason}`; `GET /api/v4/get_orders` listing the
line items not marked exported, at most 250 a page (`page_size` here, smaller for tests), each
`data` entry an order with those of its lines on the page, so an order's lines can straddle
pages; `POST /api/v4/mark_exported` (form `ci_lineitem_ids`, a JSON array) taking lines out of
the listing; `POST /api/v4/tracking_notification` (form `tracking_info`, a JSON array of
`{carrier, ci_lineitem_id, tracking, quantity}`) validating couriers against Groupon's approved
list. Uploaded tracking cannot be changed: another number for a line is refused, the identical
upload again is answered "Tracking already uploaded for ...". CommerceInterface sends no webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import time
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
    read_control_body,
    records_of,
    retry_after_header,
    route,
    route_of,
    stats_as_dict,
)

FAULT_ROUTES = ("get_orders", "mark_exported", "tracking_notification", "lineitem_tracking_notification")
MAX_ITEMS_PER_PAGE = 250
OUTPUT_DATE = "%m/%d/%Y %I:%M%p UTC"  # 08/10/2021 07:40PM UTC
FILTER_DATE = "%m/%d/%Y %H:%M"
AUTH_REASON = "Invalid supplier_id or token"
ALREADY_UPLOADED = "Tracking already uploaded for ci_lineitem_id(s) {ids}"
TRACKING_CHANGED = (
    "Tracking for ci_lineitem_id {id} was uploaded before with another tracking number and cannot be "
    "changed: contact Groupon support"
)
# Groupon's approved courier list as of July 2018 (the Groupon-to-Mintsoft integration guide):
# each code and its other accepted spelling. Kept here, not imported: simulators need no libs/.
APPROVED_CARRIERS = {
    "4SL": "4sl", "APC": "apc", "ASDUK": "asduk", "APT": "apt", "AXL": "axl", "ASDUT": "asdut",
    "BCE": "bce", "BCEUT": "bceut", "BTI": "bti", "BULT": "bult", "CSO": "cso", "COR": "cor",
    "DHL": "dhl", "DHLG": "dhlg", "DHLNL": "dhlnl", "DPDFR": "dpdfr", "DPDIE": "dpdie",
    "DPDUK": "dpduk", "NTF": "ntf", "DCH": "dch", "DEP": "dep", "ENVIALIA": "Envialia",
    "ERD": "erd", "FTWY": "ftwy", "FEDEX": "fedex", "GLS": "gls", "HMS": "hms", "IMXP": "imxp",
    "IKE": "ike", "POSTIUT": "postiut", "LPCUT": "lpcut", "LPC": "lpc", "NTL": "ntl", "NTK": "ntk",
    "PLW": "plw", "PLF": "plf", "PNLUT": "pnlut", "POSTNL": "postnl", "RED": "red", "RYM": "rym",
    "RMUT": "rmut", "SAIL": "sail", "SEUR": "seur", "SKNT": "sknt", "SEPST": "sepst",
    "SEPSTUT": "sepstut", "SPTUT": "sptut", "SPT": "spt", "TNT": "tnt", "TNTIT": "tntit",
    "TNTUT": "tntut", "TRK": "trk", "UKM": "ukm", "UPS": "ups", "WHISTL": "Whistl",
    "WISELOADS": "wiseloads", "XDPX": "xdpx", "YDL": "ydl",
}  # fmt: skip
ACCEPTED_CARRIERS = frozenset(APPROVED_CARRIERS) | frozenset(APPROVED_CARRIERS.values())
LINE_DEFAULTS: dict[str, Any] = {
    "fulfillment_lineitem_id": "",
    "sku": "GRP-SKU",
    "bom_sku": "",
    "name": "Groupon item",
    "quantity": 1,
    "unit_price": "10.00",
    "status": "open",
    "ship_by_date": "",
    "gift_message": "",
    "po_number": "",
    "groupon_cost": "6.00",
}


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class GrouponSupplier:
    """One supplier account: its id and token; `page_size` overrides the config's for it."""

    supplier_id: str
    token: str
    page_size: int | None = None


@dataclasses.dataclass
class GrouponConfig:
    """Settings of one CommerceInterface simulator; `from_dict` reads the JSON config file's shape.

    `page_size` is the line items a get_orders page holds (CommerceInterface: 250); tests set it
    small to split orders across pages. `rate_limit_per_minute` 0 disables the limit (none is
    published); `random_429_rate` answers that share of requests 429 anyway.
    """

    suppliers: list[GrouponSupplier] = dataclasses.field(default_factory=list)
    page_size: int = MAX_ITEMS_PER_PAGE
    rate_limit_per_minute: int = 600
    random_429_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.suppliers = records_of(GrouponSupplier, self.suppliers, "suppliers")
        if not 1 <= self.page_size <= MAX_ITEMS_PER_PAGE:
            raise ValueError(f"config: page_size must be from 1 to {MAX_ITEMS_PER_PAGE}")

    @classmethod
    def from_dict(cls, data: Any) -> GrouponConfig:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- state --------------------------------------------------------------------------


@dataclasses.dataclass
class GrouponStats:
    """Counters served by `GET /_sim/stats`."""

    orders_seeded: int = 0
    lines_seeded: int = 0
    lines_exported: int = 0
    tracking_uploaded: int = 0
    refused: int = 0
    rate_limited: int = 0
    faults_served: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    responses: Counter[str] = dataclasses.field(default_factory=Counter)
    # supplier_id -> route -> requests, and 429s per supplier, for the calls whose supplier
    # authenticated: benchmarks running two clients on one simulator count each apart.
    supplier_requests: dict[str, Counter[str]] = dataclasses.field(default_factory=dict)
    supplier_rate_limited: Counter[str] = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return stats_as_dict(self)


@dataclasses.dataclass
class Refusal:
    """An injected `success: false` answer (HTTP 200) for the next `count` calls to `route`."""

    route: str
    reason: str
    count: int = 1


class SupplierBook:
    """One supplier's orders and line items, in listing order, with what was done to them."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}  # orderid -> the order's own fields
        self.lines: dict[int, dict[str, Any]] = {}  # ci_lineitemid -> line (with "orderid")
        self.exported: dict[int, float] = {}  # ci_lineitemid -> when marked exported
        self.tracking: dict[int, dict[str, Any]] = {}  # ci_lineitemid -> the upload kept
        self.parcels: dict[int, list[dict[str, Any]]] = {}  # ci_lineitemid -> line-level uploads (v4)
        self.log: list[dict[str, Any]] = []  # mark_exported and tracking_notification calls

    def listed(self) -> list[dict[str, Any]]:
        return [line for line_id, line in self.lines.items() if line_id not in self.exported]


class GrouponState:
    """Everything the simulator knows; handlers change it without awaiting mid-change."""

    def __init__(self, config: GrouponConfig, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.suppliers = {s.supplier_id: s for s in config.suppliers}
        self.limiter = FixedWindowRateLimiter(config.rate_limit_per_minute)
        self.throttle_rng = random.Random(config.seed)
        self.faults = FaultQueue()
        self.webhooks = WebhookDispatcher()  # CommerceInterface sends none; the shared routes list them
        # In-process tests' hooks, run when a valid mark_exported arrives, before its lines are
        # marked (e.g. to kill the caller mid-call).
        self.on_mark_exported: list[Callable[[list[int]], None]] = []
        self.reset()

    def reset(self) -> None:
        """Forget orders, lines, logs, stats, faults and rate windows; keep suppliers."""
        self.books: dict[str, SupplierBook] = {}
        self.refusals: list[Refusal] = []
        self.next_order = 1
        self.next_line_id = 54553900
        self.stats = GrouponStats()
        self.faults.clear()
        self.limiter.reset()

    def book(self, supplier_id: str) -> SupplierBook:
        return self.books.setdefault(supplier_id, SupplierBook())

    def page_size(self, supplier: GrouponSupplier) -> int:
        return supplier.page_size or self.config.page_size

    def take_refusal(self, route_name: str) -> Refusal | None:
        for refusal in self.refusals:
            if refusal.route in ("*", route_name):
                refusal.count -= 1
                if refusal.count <= 0:
                    self.refusals.remove(refusal)
                return refusal
        return None

    def seed(self, supplier_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Store an order from `fields` (`line_items`, or `lines`: how many default lines),
        filling what Groupon would; returns it as get_orders shows it whole."""
        book = self.book(supplier_id)
        order_id = str(fields.get("orderid") or f"GRP{self.next_order:06d}")
        self.next_order += 1
        if order_id in book.orders:
            raise control_error(409, f"order {order_id!r} exists")
        order = {
            "orderid": order_id,
            "date": datetime.fromtimestamp(self.clock(), UTC).strftime(OUTPUT_DATE),
            "amount": {"total": "10.00", "shipping": "0.00"},
            "fulfillment_method": "supplier",
            "supplier": supplier_id,
            "customer": {
                "name": "Sam Buyer",
                "address1": "1 Main Street",
                "address2": "",
                "city": "Chicago",
                "state": "IL",
                "zip": "60601",
                "country": "US",
                "phone": "",
            },
            "shipping": {"carrier": "UPS", "method": "Standard"},
        }
        order.update({k: v for k, v in fields.items() if k not in ("orderid", "line_items", "lines")})
        lines = fields.get("line_items")
        if lines is None:
            count = fields.get("lines", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise control_error(400, "'lines' must be a positive integer")
            lines = [{} for _ in range(count)]
        if not isinstance(lines, list) or not lines or not all(isinstance(line, dict) for line in lines):
            raise control_error(400, "'line_items' must be a non-empty list of objects")
        book.orders[order_id] = order
        for index, given in enumerate(lines):
            line_id = self.next_line_id
            self.next_line_id += 1
            line = LINE_DEFAULTS | {"sku": f"GRP-SKU-{index + 1}", "fulfillment_lineitem_id": f"fl-{line_id}"}
            book.lines[line_id] = line | dict(given) | {"ci_lineitemid": line_id, "orderid": order_id}
        self.stats.orders_seeded += 1
        self.stats.lines_seeded += len(lines)
        return order | {"line_items": [self.public_line(x) for x in book.lines.values() if x["orderid"] == order_id]}

    @staticmethod
    def public_line(line: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in line.items() if k != "orderid"}


STATE_KEY = web.AppKey("groupon_state", GrouponState)
SUPPLIER_KEY = web.RequestKey("groupon_supplier", GrouponSupplier)
FORM_KEY = web.RequestKey("groupon_form", dict)


# --- vendor answers, auth, throttling, faults ----------------------------------------


def answer(body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(dict(body), status=status, headers=headers)


def refused(reason: str) -> SimError:
    """CommerceInterface's refusal: HTTP 200, `success: false` and a reason."""
    return SimError(200, {"success": False, "reason": reason})


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply auth, the rate limit and injected faults to `/api` requests and count them."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    route_name = route_of(request)
    state.stats.requests[route_name] += 1
    try:
        response = await guarded_call(state, request, handler, route_name)
    except SimError as exc:
        if exc.status == 200:
            state.stats.refused += 1
        response = exc.response()
    state.stats.responses[str(response.status)] += 1
    if SUPPLIER_KEY in request:
        supplier_id = request[SUPPLIER_KEY].supplier_id
        state.stats.supplier_requests.setdefault(supplier_id, Counter())[route_name] += 1
        if response.status == 429:
            state.stats.supplier_rate_limited[supplier_id] += 1
    return response


async def guarded_call(
    state: GrouponState, request: web.Request, handler: Handler, route_name: str
) -> web.StreamResponse:
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        raise SimError(routing_error.status, {"success": False, "reason": "Not found"})
    form = dict(await request.post()) if request.method == "POST" else {}
    request[FORM_KEY] = {k: v for k, v in form.items() if isinstance(v, str)}
    supplier = authenticate(state, request)
    request[SUPPLIER_KEY] = supplier
    throttle(state, supplier)
    fault = state.faults.take(route_name)
    if fault is not None:
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.status is not None:
            if fault.after_create:
                with contextlib.suppress(SimError):
                    await handler(request)
            state.stats.faults_served += 1
            raise fault_error(fault)
    refusal = state.take_refusal(route_name)
    if refusal is not None:
        raise refused(refusal.reason)
    return await handler(request)


def fault_error(fault: Fault) -> SimError:
    headers = {"Retry-After": "1"} if fault.status == 429 else None
    return SimError(fault.status or 500, {"success": False, "reason": f"Injected fault ({fault.status})"}, headers)


def authenticate(state: GrouponState, request: web.Request) -> GrouponSupplier:
    given = request.query if request.method == "GET" else request[FORM_KEY]
    supplier = state.suppliers.get(given.get("supplier_id", ""))
    expected = (supplier.supplier_id, supplier.token) if supplier else ("", "\x00unknown")
    pair = (given.get("supplier_id", ""), given.get("token", ""))
    if not credentials_match(pair, *expected) or supplier is None:
        raise refused(AUTH_REASON)
    return supplier


def throttle(state: GrouponState, supplier: GrouponSupplier) -> None:
    wait = state.limiter.hit(supplier.supplier_id)
    rate = state.config.random_429_rate
    if wait is None and rate > 0 and state.throttle_rng.random() < rate:
        wait = 1.0
    if wait is not None:
        state.stats.rate_limited += 1
        raise SimError(429, {"success": False, "reason": "Too many requests"}, retry_after_header(wait))


# --- vendor API ----------------------------------------------------------------------


def filter_time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return datetime.strptime(text, FILTER_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise refused(f"Invalid {name}: expected MM/DD/YYYY HH:MM") from None


def placed(order: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.strptime(str(order.get("date")), OUTPUT_DATE).replace(tzinfo=UTC)
    except ValueError:
        return None


@route("get_orders")
async def get_orders(request: web.Request) -> web.Response:
    """`GET /api/v4/get_orders?supplier_id&token&page[&start_datetime&end_datetime]`."""
    state = request.app[STATE_KEY]
    supplier = request[SUPPLIER_KEY]
    text = request.query.get("page", "1")
    if not text.isdigit() or int(text) < 1:
        raise refused("Invalid page")
    page = int(text)
    start, end = filter_time(request, "start_datetime"), filter_time(request, "end_datetime")
    book = state.book(supplier.supplier_id)
    lines = [line for line in book.listed() if in_window(book.orders[line["orderid"]], start, end)]
    size = state.page_size(supplier)
    pages = -(-len(lines) // size)
    window = lines[(page - 1) * size : page * size]
    meta = {"no_of_pages": pages, "current_page": page, "max_items_per_page": size, "no_of_items": len(lines)}
    return answer({"success": True, "meta": meta, "data": entries_of(book, window)})


def in_window(order: Mapping[str, Any], start: datetime | None, end: datetime | None) -> bool:
    if start is None and end is None:
        return True
    when = placed(order)
    return when is not None and (start is None or when >= start) and (end is None or when <= end)


def entries_of(book: SupplierBook, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A page's lines as `data` entries: consecutive lines of one order make one entry."""
    entries: list[dict[str, Any]] = []
    for line in lines:
        if not entries or entries[-1]["orderid"] != line["orderid"]:
            entries.append(dict(book.orders[line["orderid"]]) | {"line_items": []})
        entries[-1]["line_items"].append(GrouponState.public_line(line))
    return entries


def json_field(request: web.Request, name: str) -> Any:
    text = request[FORM_KEY].get(name)
    if text is None:
        raise refused(f"Missing {name}")
    try:
        return json.loads(text)
    except ValueError:
        raise refused(f"{name} is not valid JSON") from None


def line_id_of(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


@route("mark_exported")
async def mark_exported(request: web.Request) -> web.Response:
    """`POST /api/v4/mark_exported` (form `ci_lineitem_ids`): the lines leave get_orders; marking
    an exported line again changes nothing. Any unknown id refuses the whole call."""
    state = request.app[STATE_KEY]
    book = state.book(request[SUPPLIER_KEY].supplier_id)
    given = json_field(request, "ci_lineitem_ids")
    if not isinstance(given, list) or not given:
        raise refused("ci_lineitem_ids must be a non-empty JSON array")
    ids = [line_id_of(value) for value in given]
    unknown = [str(value)[:20] for value, line_id in zip(given, ids, strict=True) if line_id not in book.lines]
    now = state.clock()
    if unknown:
        book.log.append({"call": "mark_exported", "at": now, "ci_lineitem_ids": given, "success": False})
        raise refused(f"Unknown ci_lineitem_id(s): {', '.join(unknown)}")
    for hook in list(state.on_mark_exported):
        hook([i for i in ids if i is not None])
    for line_id in ids:
        if line_id is not None and line_id not in book.exported:
            book.exported[line_id] = now
            state.stats.lines_exported += 1
    book.log.append({"call": "mark_exported", "at": now, "ci_lineitem_ids": ids, "success": True})
    return answer({"success": True})


@route("tracking_notification")
async def tracking_notification(request: web.Request) -> web.Response:
    """`POST /api/v4/tracking_notification` (form `tracking_info`): every entry is checked
    before any is kept; tracking already kept for a line cannot change."""
    state = request.app[STATE_KEY]
    book = state.book(request[SUPPLIER_KEY].supplier_id)
    info = json_field(request, "tracking_info")
    now = state.clock()
    try:
        uploads = check_tracking(book, info)
    except SimError:
        book.log.append({"call": "tracking_notification", "at": now, "tracking_info": info, "success": False})
        raise
    new = {line_id: upload for line_id, upload in uploads.items() if line_id not in book.tracking}
    book.log.append({"call": "tracking_notification", "at": now, "tracking_info": info, "success": bool(new)})
    if not new:
        raise refused(ALREADY_UPLOADED.format(ids=", ".join(str(i) for i in uploads)))
    for line_id, upload in new.items():
        book.tracking[line_id] = upload | {"at": now}
        state.stats.tracking_uploaded += 1
    return answer({"success": True})


@route("lineitem_tracking_notification")
async def lineitem_tracking_notification(request: web.Request) -> web.Response:
    """v4 `POST /api/v4/lineitem_tracking_notification` (form `tracking_info`, entries
    `{carrier, fulfillment_lineitem_id, tracking, quantity}`): part of a line shipped under one
    tracking number; the parcels of a line may not ship more than its quantity, nor the same
    tracking number twice (an identical repeat is answered as already uploaded)."""
    state = request.app[STATE_KEY]
    book = state.book(request[SUPPLIER_KEY].supplier_id)
    info = json_field(request, "tracking_info")
    now = state.clock()
    entry_log = {"call": "lineitem_tracking_notification", "at": now, "tracking_info": info}
    try:
        parcels = check_line_tracking(book, info)
    except SimError:
        book.log.append(entry_log | {"success": False})
        raise
    new = [
        (line_id, p)
        for line_id, p in parcels
        if p["tracking"] not in {k["tracking"] for k in book.parcels.get(line_id, [])}
    ]
    book.log.append(entry_log | {"success": bool(new)})
    if not new:
        raise refused(ALREADY_UPLOADED.format(ids=", ".join(str(i) for i, _ in parcels)))
    for line_id, parcel in new:
        book.parcels.setdefault(line_id, []).append(parcel | {"at": now})
        state.stats.tracking_uploaded += 1
    return answer({"success": True})


def check_line_tracking(book: SupplierBook, info: Any) -> list[tuple[int, dict[str, Any]]]:
    """The parcels of a valid line-level `tracking_info`; raises the refusal naming every problem."""
    if not isinstance(info, list) or not info:
        raise refused("tracking_info must be a non-empty JSON array")
    by_fulfillment_line = {str(line["fulfillment_lineitem_id"]): i for i, line in book.lines.items()}
    problems: list[str] = []
    parcels: list[tuple[int, dict[str, Any]]] = []
    for index, entry in enumerate(info):
        if not isinstance(entry, dict):
            problems.append(f"entry {index} is not an object")
            continue
        line_id = by_fulfillment_line.get(str(entry.get("fulfillment_lineitem_id")))
        carrier, tracking, quantity = entry.get("carrier"), entry.get("tracking"), entry.get("quantity")
        if line_id is None:
            problems.append(f"entry {index}: unknown fulfillment_lineitem_id")
            continue
        if not isinstance(carrier, str) or carrier not in ACCEPTED_CARRIERS:
            problems.append(f"entry {index}: carrier is not an approved carrier code")
        if not isinstance(tracking, str) or not tracking.strip():
            problems.append(f"entry {index}: tracking is empty")
        kept = book.parcels.get(line_id, [])
        repeat = any(isinstance(tracking, str) and k["tracking"] == tracking.strip() for k in kept)
        remaining = int(book.lines[line_id]["quantity"]) - sum(k["quantity"] for k in kept)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            problems.append(f"entry {index}: quantity must be a positive integer")
        elif not repeat and quantity > remaining:
            problems.append(f"entry {index}: quantity {quantity} exceeds the {remaining} left to ship on the line")
        parcels.append((line_id, {"carrier": carrier, "tracking": (tracking or "").strip(), "quantity": quantity}))
    if problems:
        raise refused("; ".join(problems))
    return parcels


def check_tracking(book: SupplierBook, info: Any) -> dict[int, dict[str, Any]]:
    """The uploads of a valid `tracking_info`, by line; raises the refusal naming every problem."""
    if not isinstance(info, list) or not info:
        raise refused("tracking_info must be a non-empty JSON array")
    problems: list[str] = []
    uploads: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(info):
        if not isinstance(entry, dict):
            problems.append(f"entry {index} is not an object")
            continue
        line_id = line_id_of(entry.get("ci_lineitem_id"))
        carrier, tracking, quantity = entry.get("carrier"), entry.get("tracking"), entry.get("quantity")
        line = book.lines.get(line_id) if line_id is not None else None
        if line_id is None or line is None:
            problems.append(f"entry {index}: unknown ci_lineitem_id")
            continue
        if not isinstance(carrier, str) or carrier not in ACCEPTED_CARRIERS:
            problems.append(f"entry {index}: carrier is not an approved carrier code")
        if not isinstance(tracking, str) or not tracking.strip():
            problems.append(f"entry {index}: tracking is empty")
        if quantity is not None and (
            isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= int(line["quantity"])
        ):
            problems.append(f"entry {index}: quantity must be from 1 to the line's quantity")
        kept = book.tracking.get(line_id)
        if kept is not None and isinstance(tracking, str) and kept["tracking"] != tracking.strip():
            problems.append(TRACKING_CHANGED.format(id=line_id))
        uploads[line_id] = {"carrier": carrier, "tracking": (tracking or "").strip(), "quantity": quantity}
    if problems:
        raise refused("; ".join(problems))
    return uploads


# --- control API ----------------------------------------------------------------------


def sim_supplier(request: web.Request) -> tuple[GrouponState, str]:
    state = request.app[STATE_KEY]
    supplier_id = request.match_info["supplier_id"]
    if supplier_id not in state.suppliers:
        raise control_error(404, f"no supplier {supplier_id!r}")
    return state, supplier_id


async def put_supplier(request: web.Request) -> web.Response:
    """`PUT /_sim/suppliers/{supplier_id}`: add or replace a supplier account."""
    state = request.app[STATE_KEY]
    try:
        supplier = from_mapping(GrouponSupplier, await read_control_body(request), "supplier")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    if supplier.supplier_id != request.match_info["supplier_id"]:
        raise control_error(400, "'supplier_id' must match the path")
    state.suppliers[supplier.supplier_id] = supplier
    return web.json_response(dataclasses.asdict(supplier) | {"token": "***"})


async def seed_orders(request: web.Request) -> web.Response:
    """`POST /_sim/suppliers/{supplier_id}/orders`: `{"orders": [fields, ...]}`, each with
    `line_items` (line fields; ci_lineitemid assigned) or `lines` (a count of default lines)."""
    state, supplier_id = sim_supplier(request)
    orders = (await read_control_body(request)).get("orders")
    if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
        raise control_error(400, "'orders' must be a list of objects")
    return web.json_response({"orders": [state.seed(supplier_id, o) for o in orders]}, status=201)


async def get_state(request: web.Request) -> web.Response:
    """`GET /_sim/suppliers/{supplier_id}/state`: lines (exported or not, tracking), the
    exported ids, the tracking kept, and the log of mark_exported and tracking calls."""
    state, supplier_id = sim_supplier(request)
    book = state.book(supplier_id)
    lines = [
        {
            "ci_lineitemid": line_id,
            "orderid": line["orderid"],
            "exported": line_id in book.exported,
            "tracking": book.tracking.get(line_id),
            "parcels": book.parcels.get(line_id, []),
        }
        for line_id, line in book.lines.items()
    ]
    return web.json_response(
        {
            "lines": lines,
            "exported": {str(k): v for k, v in book.exported.items()},
            "tracking": {str(k): v for k, v in book.tracking.items()},
            "log": book.log,
        }
    )


async def export_in_panel(request: web.Request) -> web.Response:
    """`POST /_sim/suppliers/{supplier_id}/exported`: `{"ci_lineitem_ids": [...]}` exported as a
    user in the CommerceInterface panel would (not logged as an API call)."""
    state, supplier_id = sim_supplier(request)
    book = state.book(supplier_id)
    ids = (await read_control_body(request)).get("ci_lineitem_ids")
    if not isinstance(ids, list) or not all(line_id_of(i) in book.lines for i in ids):
        raise control_error(400, "'ci_lineitem_ids' must list known line ids")
    for line_id in ids:
        book.exported.setdefault(int(line_id), state.clock())
    return web.json_response({"exported": len(ids)})


async def add_refusal(request: web.Request) -> web.Response:
    """`POST /_sim/refusals`: `{"route", "reason", "count"?}` answers the next calls to the
    route (or "*") HTTP 200 `success: false` with `reason`."""
    state = request.app[STATE_KEY]
    body = await read_control_body(request)
    try:
        refusal = from_mapping(Refusal, body, "refusal")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    if refusal.route not in ("*", *FAULT_ROUTES) or not isinstance(refusal.reason, str) or not refusal.reason:
        raise control_error(400, f"'route' must be one of {['*', *FAULT_ROUTES]} and 'reason' non-empty")
    if isinstance(refusal.count, bool) or not isinstance(refusal.count, int) or refusal.count < 1:
        raise control_error(400, "'count' must be a positive integer")
    state.refusals.append(refusal)
    return web.json_response({"pending": [dataclasses.asdict(r) for r in state.refusals]}, status=201)


# --- wiring --------------------------------------------------------------------------------


def create_app(config: GrouponConfig) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = GrouponState(config)
    router = app.router
    router.add_get("/api/v4/get_orders", get_orders)
    router.add_post("/api/v4/mark_exported", mark_exported)
    router.add_post("/api/v4/tracking_notification", tracking_notification)
    router.add_post("/api/v4/lineitem_tracking_notification", lineitem_tracking_notification)
    router.add_put("/_sim/suppliers/{supplier_id}", put_supplier)
    router.add_post("/_sim/suppliers/{supplier_id}/orders", seed_orders)
    router.add_get("/_sim/suppliers/{supplier_id}/state", get_state)
    router.add_post("/_sim/suppliers/{supplier_id}/exported", export_in_panel)
    router.add_post("/_sim/refusals", add_refusal)
    add_shared_control_routes(router, STATE_KEY, FAULT_ROUTES, allow_after_create=True)
    return app
