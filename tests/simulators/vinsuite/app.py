"""VinSuite simulator app: the JSON transport of the vinSUITE web service, and /_sim control.

Every method is `POST /2.00/EWSWebServices.asmx/<Method>` with `{"request": {...}}` (other HTTP
methods answer 405), answered in ASP.NET's JSON shape `{"d": {...}}` (ours). Each request names
its winery (`WineryID`) and carries the partner login as `Security: {Username, Password}` (ours);
each answer carries `PrimaryAuthInfo`, `Type` "INVALID" with a `FailureReason` when the login is
wrong or the web-service account inactive. A method's own refusal is `Success: false` with an
`ErrorMessage`.

Public methods: TestConnection, AddOrder (no upsert: every call makes a new order, unknown SKUs
become inactive products, listed in `CreatedProducts`, ours), AddOrderNote. Ours (stand-ins):
GetMembers, AddUpdateMember (matches on e-mail, case-insensitive), GetMemberTypes, SearchOrders.
Each winery may make 60 calls a minute (429 with Retry-After after that).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.simulators.common import (
    FaultQueue,
    FixedWindowRateLimiter,
    Handler,
    SimError,
    WebhookDispatcher,
    add_shared_control_routes,
    control_error,
    control_error_middleware,
    flag,
    from_mapping,
    read_control_body,
    read_json_object,
    records_of,
    retry_after_header,
    stats_as_dict,
)

SERVICE = "/2.00/EWSWebServices.asmx"
METHODS = (
    "TestConnection",
    "AddOrder",
    "AddOrderNote",
    "SearchOrders",
    "GetMembers",
    "AddUpdateMember",
    "GetMemberTypes",
)
BAD_LOGIN = "Invalid username or password."
INACTIVE = "Web service account is inactive."
DOWN_MODES = ("up", "refuse", "503")


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class VinSuiteWinery:
    """A winery's web-service account: its id, the partner login, and whether it is active.

    `products` are SKUs the winery sells already; others are created inactive by AddOrder.
    `member_types` are names; `members` are GetMembers rows (see `seed_members`).
    """

    winery_id: str
    username: str
    password: str
    active: bool = True
    products: list[str] = dataclasses.field(default_factory=list)
    member_types: list[str] = dataclasses.field(default_factory=list)
    members: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class VinSuiteConfig:
    """Settings of one VinSuite simulator; `from_dict` reads the JSON config file's shape.

    Attributes:
        wineries: the web-service accounts it knows.
        requests_per_minute: each winery's budget (429 past it); 0 disables the limit.
    """

    wineries: list[VinSuiteWinery] = dataclasses.field(default_factory=list)
    requests_per_minute: int = 60

    def __post_init__(self) -> None:
        self.wineries = records_of(VinSuiteWinery, self.wineries, "wineries")

    @classmethod
    def from_dict(cls, data: Any) -> VinSuiteConfig:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- state --------------------------------------------------------------------------


@dataclasses.dataclass
class VsOrder:
    """A stored order: what AddOrder was given, VinSuite's OrderID, and its notes."""

    order_id: int
    winery_id: str
    order: dict[str, Any]
    request: dict[str, Any]
    notes: list[str] = dataclasses.field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "OrderID": self.order_id,
            "WineryID": self.winery_id,
            "OrderNumber": self.order.get("OrderNumber"),
            "OrderItems": self.order.get("OrderItems", []),
            "BillingMember": self.order.get("BillingMember"),
            "IsWillCallOrder": self.order.get("IsWillCallOrder"),
            "OrderDate": self.order.get("OrderDate"),
            "PickupDate": self.order.get("PickupDate"),
            "IsSendOrderConfirmation": self.request.get("IsSendOrderConfirmation"),
            "IsDecrementInventory": self.request.get("IsDecrementInventory"),
            "Notes": list(self.notes),
        }


@dataclasses.dataclass
class VinSuiteStats:
    """Counters served by `GET /_sim/stats`: `requests` per method (every call that reached
    VinSuite, refused or not), per winery, and by status."""

    orders_created: int = 0
    notes_added: int = 0
    members_created: int = 0
    members_updated: int = 0
    auth_refused: int = 0
    rate_limited: int = 0
    faults_served: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    responses: Counter[str] = dataclasses.field(default_factory=Counter)
    winery_requests: dict[str, Counter[str]] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return stats_as_dict(self)


class VinSuiteState:
    """Everything the simulator knows. Handlers mutate it without awaiting mid-change."""

    def __init__(self, config: VinSuiteConfig):
        self.config = config
        self.faults = FaultQueue()
        self.webhooks = WebhookDispatcher()  # VinSuite sends none; the shared control routes list it
        self.limiter = FixedWindowRateLimiter(config.requests_per_minute)
        self.wineries: dict[str, VinSuiteWinery] = {}
        self.members: dict[str, dict[int, dict[str, Any]]] = {}
        self.member_types: dict[str, list[dict[str, Any]]] = {}
        self.products: dict[str, dict[str, bool]] = {}  # winery -> SKU -> active
        self.next_member_id = 70001
        self.next_type_id = 11
        # In-process tests' hooks, run once an order is stored and before AddOrder is answered
        # (e.g. to kill the caller then, as a crash between the create and its record would).
        self.on_order_created: list[Callable[[VsOrder], None]] = []
        for winery in config.wineries:
            self.put_winery(winery)
        self.reset()

    def reset(self) -> None:
        """Forget orders, stats, faults, the rate windows and any outage; keep wineries and members."""
        self.orders: dict[int, VsOrder] = {}
        self.next_order_id = 900001
        self.stats = VinSuiteStats()
        self.faults.clear()
        self.limiter.reset()
        self.down = "up"

    def put_winery(self, winery: VinSuiteWinery) -> None:
        self.wineries[winery.winery_id] = winery
        self.members.setdefault(winery.winery_id, {})
        self.member_types.setdefault(winery.winery_id, [])
        catalog = self.products.setdefault(winery.winery_id, {})
        for sku in winery.products:
            catalog.setdefault(sku, True)
        self.seed_types(winery.winery_id, winery.member_types)
        self.seed_members(winery.winery_id, winery.members)

    def seed_types(self, winery_id: str, names: list[str]) -> None:
        types = self.member_types.setdefault(winery_id, [])
        for name in names:
            if not any(t["Name"].lower() == str(name).lower() for t in types):
                types.append({"MemberTypeID": self.next_type_id, "Name": str(name)})
                self.next_type_id += 1

    def seed_members(self, winery_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add members (`FirstName, LastName, Email, Phone?, MemberTypes?, ClubMemberships?`)."""
        seeded = []
        for row in rows:
            if not isinstance(row, dict) or not row.get("Email"):
                raise control_error(400, "each member needs an 'Email'")
            member = self.find_by_email(winery_id, str(row["Email"]))
            if member is None:
                member = {"MemberID": self.next_member_id}
                self.next_member_id += 1
                self.members[winery_id][member["MemberID"]] = member
            member.update({k: v for k, v in row.items() if k != "MemberID"})
            member.setdefault("MemberTypes", [])
            member.setdefault("ClubMemberships", [])
            self.seed_types(winery_id, list(member["MemberTypes"]))
            seeded.append(member_view(member))
        return seeded

    def find_by_email(self, winery_id: str, email: str) -> dict[str, Any] | None:
        wanted = email.strip().lower()
        for member in self.members.get(winery_id, {}).values():
            if str(member.get("Email", "")).strip().lower() == wanted:
                return member
        return None


STATE_KEY = web.AppKey("vinsuite_state", VinSuiteState)
WINERY_KEY = web.RequestKey("vinsuite_winery", str)  # the WineryID a call named
REQUEST_KEY = web.RequestKey("vinsuite_request", dict)  # the call's `request` object
ACCOUNT_KEY = web.RequestKey("vinsuite_account", VinSuiteWinery)  # the winery it authenticated as


def member_view(member: dict[str, Any]) -> dict[str, Any]:
    clubs = [dict(c) for c in member.get("ClubMemberships", [])]
    return {
        "MemberID": member["MemberID"],
        "FirstName": member.get("FirstName", ""),
        "LastName": member.get("LastName", ""),
        "Email": member.get("Email", ""),
        "Phone": member.get("Phone", ""),
        "MemberTypes": list(member.get("MemberTypes", [])),
        "IsClubMember": any(str(c.get("Status", "")).lower() == "active" for c in clubs),
        "ClubMemberships": clubs,
    }


# --- the envelope ---------------------------------------------------------------------


def auth_info(winery_id: str, kind: str, failure: str = "") -> dict[str, Any]:
    return {
        "WineryID": winery_id,
        "AdminContactID": None,
        "Type": kind,
        "ThirdPartySupplierID": None,
        "FailureReason": failure or None,
    }


def answer(winery_id: str, **fields: Any) -> web.Response:
    return web.json_response({"d": {"PrimaryAuthInfo": auth_info(winery_id, "SUPPLIER"), "Success": True, **fields}})


def failed(winery_id: str, message: str) -> SimError:
    body = {"PrimaryAuthInfo": auth_info(winery_id, "SUPPLIER"), "Success": False, "ErrorMessage": message}
    return SimError(200, {"d": body})


def refused(winery_id: str, reason: str) -> SimError:
    body = {"PrimaryAuthInfo": auth_info(winery_id, "INVALID", reason), "Success": False, "ErrorMessage": reason}
    return SimError(200, {"d": body})


def asmx_error(status: int, message: str, headers: dict[str, str] | None = None) -> SimError:
    # ASP.NET's JSON error shape for a failure outside the method.
    return SimError(status, {"Message": message, "ExceptionType": "System.InvalidOperationException"}, headers)


# --- vendor middleware: method, outage, auth, rate limit, faults -------------------------


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count calls by method, then refuse or answer them as VinSuite would."""
    if not request.path.startswith(SERVICE + "/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    method = request.path.rsplit("/", 1)[-1]
    if state.down == "refuse":
        # Connections refused: drop it unanswered (the client sees a broken connection).
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=503)  # never reaches the client: the connection is gone
    state.stats.requests[method] += 1
    try:
        response = await guarded_call(state, request, handler, method)
    except SimError as exc:
        response = exc.response()
    state.stats.responses[str(response.status)] += 1
    winery = request.get(WINERY_KEY)
    if winery is not None:
        state.stats.winery_requests.setdefault(winery, Counter())[method] += 1
    return response


async def guarded_call(state: VinSuiteState, request: web.Request, handler: Handler, method: str) -> web.StreamResponse:
    if state.down == "503":
        raise asmx_error(503, "Service Unavailable")
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        if routing_error.status == 405:
            raise asmx_error(405, "Request format is invalid: only POST is allowed.", {"Allow": "POST"})
        raise asmx_error(500, f"Unknown web method {method}.")
    body = await read_json_object(request)
    inner = body.get("request") if body else None
    if not isinstance(inner, dict):
        raise asmx_error(500, "Invalid web service call, missing value for parameter: 'request'.")
    winery_id = str(inner.get("WineryID") or "")
    request[WINERY_KEY] = winery_id
    wait = state.limiter.hit(winery_id or "-")
    if wait is not None:
        state.stats.rate_limited += 1
        raise asmx_error(429, "Too many requests", retry_after_header(wait))
    request[REQUEST_KEY] = inner
    request[ACCOUNT_KEY] = authenticate(state, winery_id, inner)
    fault = state.faults.take(method)
    if fault is not None and fault.delay_s:
        await request.read()  # a slow server has received the call even if the client gives up
        await asyncio.sleep(fault.delay_s)
    if fault is None or fault.status is None:
        return await handler(request)
    if fault.after_create:  # the method's work is done, the answer lost (a crash, a gateway)
        with contextlib.suppress(SimError):
            await handler(request)
    state.stats.faults_served += 1
    headers = retry_after_header(1) if fault.status == 429 else None
    raise asmx_error(fault.status, f"Injected fault ({fault.status})", headers)


def authenticate(state: VinSuiteState, winery_id: str, inner: dict[str, Any]) -> VinSuiteWinery:
    winery = state.wineries.get(winery_id)
    security = inner.get("Security")
    user, password = ("", "\x00")
    if isinstance(security, dict):
        user, password = str(security.get("Username", "")), str(security.get("Password", "\x00"))
    if winery is None:
        state.stats.auth_refused += 1
        raise refused(winery_id, BAD_LOGIN)
    user_ok = hmac.compare_digest(user.encode(), winery.username.encode())
    password_ok = hmac.compare_digest(password.encode(), winery.password.encode())
    if not (user_ok & password_ok):
        state.stats.auth_refused += 1
        raise refused(winery_id, BAD_LOGIN)
    if not winery.active:
        state.stats.auth_refused += 1
        raise refused(winery_id, INACTIVE)
    return winery


def _call(request: web.Request) -> tuple[VinSuiteState, VinSuiteWinery, dict[str, Any]]:
    return request.app[STATE_KEY], request[ACCOUNT_KEY], request[REQUEST_KEY]


# --- methods ------------------------------------------------------------------------------


async def test_connection(request: web.Request) -> web.Response:
    _, winery, _ = _call(request)
    return answer(winery.winery_id)


async def add_order(request: web.Request) -> web.Response:
    state, winery, inner = _call(request)
    order = inner.get("Order")
    if not isinstance(order, dict):
        raise failed(winery.winery_id, "Order is required.")
    items = order.get("OrderItems")
    if not order.get("OrderNumber"):
        raise failed(winery.winery_id, "OrderNumber is required.")
    if not isinstance(items, list) or not items:
        raise failed(winery.winery_id, "The order has no items.")
    for item in items:
        if not isinstance(item, dict) or not item.get("SKU"):
            raise failed(winery.winery_id, "Every order item needs a SKU.")
        quantity = item.get("Quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise failed(winery.winery_id, f"Quantity of {item['SKU']} must be at least 1.")
    catalog = state.products.setdefault(winery.winery_id, {})
    created = []
    for item in items:
        sku = str(item["SKU"])
        if sku not in catalog:
            catalog[sku] = False  # auto-created as an inactive product
            created.append(sku)
    stored = VsOrder(state.next_order_id, winery.winery_id, dict(order), dict(inner))
    state.orders[stored.order_id] = stored
    state.next_order_id += 1
    state.stats.orders_created += 1
    for hook in list(state.on_order_created):
        hook(stored)
    return answer(winery.winery_id, OrderID=stored.order_id, CreatedProducts=created)


async def add_order_note(request: web.Request) -> web.Response:
    state, winery, inner = _call(request)
    try:
        order_id = int(inner.get("OrderID"))
    except (TypeError, ValueError):
        raise failed(winery.winery_id, "OrderID is required.") from None
    order = state.orders.get(order_id)
    if order is None or order.winery_id != winery.winery_id:
        raise failed(winery.winery_id, f"Order {order_id} was not found.")
    note = str(inner.get("Note") or "").strip()
    if not note:
        raise failed(winery.winery_id, "Note is required.")
    order.notes.append(note)
    state.stats.notes_added += 1
    return answer(winery.winery_id, OrderNoteID=len(order.notes))


async def search_orders(request: web.Request) -> web.Response:
    state, winery, inner = _call(request)
    number = inner.get("OrderNumber")
    rows = [
        {"OrderID": o.order_id, "OrderNumber": o.order.get("OrderNumber")}
        for o in state.orders.values()
        if o.winery_id == winery.winery_id and (not number or o.order.get("OrderNumber") == number)
    ]
    return answer(winery.winery_id, Orders=rows)


async def get_members(request: web.Request) -> web.Response:
    state, winery, inner = _call(request)
    email = str(inner.get("Email") or "").strip().lower()
    last_name = str(inner.get("LastName") or "").strip().lower()
    if not email and not last_name:
        raise failed(winery.winery_id, "Email or LastName is required.")
    rows = [
        member_view(m)
        for m in state.members.get(winery.winery_id, {}).values()
        if (not email or str(m.get("Email", "")).strip().lower() == email)
        and (not last_name or str(m.get("LastName", "")).strip().lower() == last_name)
    ]
    return answer(winery.winery_id, Members=rows)


MEMBER_FIELDS = frozenset(
    {"MemberID", "FirstName", "LastName", "Email", "Phone", "Address", "Address2", "City", "State", "ZipCode"}
    | {"Country", "MemberTypes"}
)


async def add_update_member(request: web.Request) -> web.Response:
    state, winery, inner = _call(request)
    given = inner.get("Member")
    if not isinstance(given, dict) or not str(given.get("Email") or "").strip():
        raise failed(winery.winery_id, "Member.Email is required.")
    unknown = sorted(set(given) - MEMBER_FIELDS)
    if unknown:
        raise failed(winery.winery_id, f"Unknown member field(s): {', '.join(unknown)}.")
    members = state.members.setdefault(winery.winery_id, {})
    member = None
    if given.get("MemberID") not in (None, ""):
        try:
            member = members.get(int(given["MemberID"]))
        except (TypeError, ValueError):
            member = None
        if member is None:
            raise failed(winery.winery_id, f"Member {given['MemberID']} was not found.")
    member = member or state.find_by_email(winery.winery_id, str(given["Email"]))
    is_new = member is None
    if member is None:
        member = {"MemberID": state.next_member_id, "MemberTypes": [], "ClubMemberships": []}
        state.next_member_id += 1
        members[member["MemberID"]] = member
        state.stats.members_created += 1
    else:
        state.stats.members_updated += 1
    member.update({k: v for k, v in given.items() if k != "MemberID" and v not in (None, "")})
    return answer(winery.winery_id, MemberID=member["MemberID"], IsNew=is_new)


async def get_member_types(request: web.Request) -> web.Response:
    state, winery, _ = _call(request)
    return answer(winery.winery_id, MemberTypes=[dict(t) for t in state.member_types.get(winery.winery_id, [])])


HANDLERS = {
    "TestConnection": test_connection,
    "AddOrder": add_order,
    "AddOrderNote": add_order_note,
    "SearchOrders": search_orders,
    "GetMembers": get_members,
    "AddUpdateMember": add_update_member,
    "GetMemberTypes": get_member_types,
}


# --- control --------------------------------------------------------------------------------


def _winery(request: web.Request) -> VinSuiteWinery:
    winery = request.app[STATE_KEY].wineries.get(request.match_info["winery_id"])
    if winery is None:
        raise control_error(404, "no such winery")
    return winery


async def put_winery(request: web.Request) -> web.Response:
    body = await read_control_body(request)
    body.setdefault("winery_id", request.match_info["winery_id"])
    try:
        winery = from_mapping(VinSuiteWinery, body, "winery")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    request.app[STATE_KEY].put_winery(winery)
    return web.json_response({"winery_id": winery.winery_id}, status=201)


async def patch_account(request: web.Request) -> web.Response:
    """`{active?, password?}`: switch the web-service account on or off, or change its password."""
    winery = _winery(request)
    body = await read_control_body(request)
    unknown = sorted(set(body) - {"active", "password"})
    if unknown:
        raise control_error(400, f"unknown field(s): {', '.join(unknown)}")
    winery.active = flag(body, "active", winery.active)
    if "password" in body:
        if not isinstance(body["password"], str) or not body["password"]:
            raise control_error(400, "'password' must be a non-empty string")
        winery.password = body["password"]
    return web.json_response({"winery_id": winery.winery_id, "active": winery.active})


async def post_members(request: web.Request) -> web.Response:
    winery = _winery(request)
    body = await read_control_body(request)
    if not isinstance(body.get("members"), list):
        raise control_error(400, "'members' must be a list")
    seeded = request.app[STATE_KEY].seed_members(winery.winery_id, body["members"])
    return web.json_response({"members": seeded}, status=201)


async def get_sim_members(request: web.Request) -> web.Response:
    winery = _winery(request)
    rows = request.app[STATE_KEY].members.get(winery.winery_id, {}).values()
    return web.json_response({"members": [member_view(m) for m in rows]})


async def post_member_types(request: web.Request) -> web.Response:
    winery = _winery(request)
    body = await read_control_body(request)
    names = body.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise control_error(400, "'names' must be a list of non-empty strings")
    state = request.app[STATE_KEY]
    state.seed_types(winery.winery_id, names)
    return web.json_response({"member_types": state.member_types[winery.winery_id]}, status=201)


async def delete_member_type(request: web.Request) -> web.Response:
    winery = _winery(request)
    state = request.app[STATE_KEY]
    types = state.member_types.get(winery.winery_id, [])
    kept = [t for t in types if str(t["MemberTypeID"]) != request.match_info["type_id"]]
    if len(kept) == len(types):
        raise control_error(404, "no such member type")
    state.member_types[winery.winery_id] = kept
    return web.json_response({"member_types": kept})


async def rename_member_type(request: web.Request) -> web.Response:
    """`{"name"}`: rename a member type as the winery's staff would; its MemberTypeID stays, and
    members holding the old name hold the new one."""
    winery = _winery(request)
    body = await read_control_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise control_error(400, "'name' must be a non-empty string")
    state = request.app[STATE_KEY]
    types = state.member_types.get(winery.winery_id, [])
    found = next((t for t in types if str(t["MemberTypeID"]) == request.match_info["type_id"]), None)
    if found is None:
        raise control_error(404, "no such member type")
    old, found["Name"] = found["Name"], name
    for member in state.members.get(winery.winery_id, {}).values():
        member["MemberTypes"] = [name if t == old else t for t in member.get("MemberTypes", [])]
    return web.json_response({"member_types": types})


async def list_sim_orders(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    winery_id = request.query.get("winery_id")
    number = request.query.get("order_number")
    rows = [
        o.view()
        for o in state.orders.values()
        if (not winery_id or o.winery_id == winery_id) and (not number or o.order.get("OrderNumber") == number)
    ]
    return web.json_response({"orders": rows})


async def get_products(request: web.Request) -> web.Response:
    winery = _winery(request)
    catalog = request.app[STATE_KEY].products.get(winery.winery_id, {})
    return web.json_response({"products": [{"SKU": sku, "Active": active} for sku, active in catalog.items()]})


async def put_down(request: web.Request) -> web.Response:
    """`{"mode": "up" | "refuse" | "503"}`: an outage of every call until set "up" again."""
    body = await read_control_body(request)
    mode = body.get("mode")
    if mode not in DOWN_MODES:
        raise control_error(400, f"'mode' must be one of {list(DOWN_MODES)}")
    request.app[STATE_KEY].down = mode
    return web.json_response({"mode": mode})


# --- wiring --------------------------------------------------------------------------------


def create_app(config: VinSuiteConfig) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = VinSuiteState(config)
    for name, handler in HANDLERS.items():
        app.router.add_post(f"{SERVICE}/{name}", handler)
    router = app.router
    router.add_put("/_sim/wineries/{winery_id}", put_winery)
    router.add_patch("/_sim/wineries/{winery_id}", patch_account)
    router.add_post("/_sim/wineries/{winery_id}/members", post_members)
    router.add_get("/_sim/wineries/{winery_id}/members", get_sim_members)
    router.add_post("/_sim/wineries/{winery_id}/member-types", post_member_types)
    router.add_delete("/_sim/wineries/{winery_id}/member-types/{type_id}", delete_member_type)
    router.add_patch("/_sim/wineries/{winery_id}/member-types/{type_id}", rename_member_type)
    router.add_get("/_sim/wineries/{winery_id}/products", get_products)
    router.add_get("/_sim/orders", list_sim_orders)
    router.add_put("/_sim/down", put_down)
    add_shared_control_routes(router, STATE_KEY, METHODS, allow_after_create=True)
    return app
