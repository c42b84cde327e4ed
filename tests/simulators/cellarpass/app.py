"""CellarPass simulator app (our stand-in contract) and its /_sim control API.

CellarPass publishes no API: this follows our stand-in (the connector's README), shaped after
the help pages. `Authorization: Bearer <api_key>` per account (401 otherwise; a key whose
account has the VinSuite integration disabled answers 403); `GET /v1/reservations` filtered by
`status`, `updatedSince` (inclusive) and `syncStatus`, ordered by updatedAt then reservationId,
paged by `page`/`pageSize` (at most 50; 400 above); `POST /v1/reservations/{id}/sync-result`
setting the sync status (Processed with VinSuite's order id, or Error with the reason; once
Processed, never Pending again); customer types listed, created or renamed idempotently on
`sourceId`, deleted. 60 requests a minute per key, 429 with Retry-After past it. A sync result
changes no `updatedAt` (it is the integration's record, not an edit of the reservation).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
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
    from_mapping,
    iso_from_epoch_ms,
    parse_iso_datetime,
    read_control_body,
    read_json_object,
    records_of,
    retry_after_header,
    route,
    route_of,
    stats_as_dict,
)

FAULT_ROUTES = (
    "list_reservations",
    "sync_result",
    "list_customer_types",
    "put_customer_type",
    "delete_customer_type",
)
MAX_PAGE_SIZE = 50
STATUSES = ("Booked", "Paid", "Cancelled", "NoShow", "Completed")
SYNC_STATUSES = ("Pending", "Processed", "Error")
CANCELLED = frozenset({"Cancelled", "NoShow"})
RESERVATION_DEFAULTS: dict[str, Any] = {
    "eventId": "EV-100",
    "eventName": "Estate Tasting",
    "eventSku": "TAST-EST",
    "eventDate": "2026-12-12",
    "eventStartTime": "14:00",
    "guestCount": 2,
    "total": 80.0,
    "totalPaid": 80.0,
    "balanceDue": 0.0,
    "isComplimentary": False,
    "status": "Paid",
    "bookingSource": "WGT",
    "guest": {
        "firstName": "Dana",
        "lastName": "Whitfield",
        "email": "dana.whitfield@example.com",
        "phone": "707-555-0142",
        "address": {
            "address1": "18 Vine Street",
            "address2": "",
            "city": "Napa",
            "state": "CA",
            "zipCode": "94558",
            "country": "US",
        },
    },
    "guestNotes": "",
    "customerTypes": [],
    "orderType": "Reservation",
}
# Kept by the simulator: a control call may not set them (sync-result sets the first three).
SIM_OWNED = frozenset({"syncStatus", "externalOrderId", "syncError", "reservationId"})


# --- configuration ------------------------------------------------------------------


@dataclasses.dataclass
class CellarPassAccount:
    """One CellarPass account: its id (for the control API), its API key, and whether CellarPass
    has enabled the VinSuite integration for it (False: every call answers 403)."""

    account_id: str
    api_key: str
    integration_enabled: bool = True


@dataclasses.dataclass
class CellarPassConfig:
    """Settings of one CellarPass simulator; `from_dict` reads the JSON config file's shape.

    `rate_limit_per_minute` per API key (0 disables it); `random_429_rate` answers that share of
    requests 429 anyway.
    """

    accounts: list[CellarPassAccount] = dataclasses.field(default_factory=list)
    rate_limit_per_minute: int = 60
    random_429_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.accounts = records_of(CellarPassAccount, self.accounts, "accounts")

    @classmethod
    def from_dict(cls, data: Any) -> CellarPassConfig:
        """Build a config from parsed JSON; raises ValueError naming an unknown or missing field."""
        return from_mapping(cls, data, "config")


# --- state --------------------------------------------------------------------------


@dataclasses.dataclass
class CellarPassStats:
    """Counters served by `GET /_sim/stats`."""

    reservations_seeded: int = 0
    reservations_edited: int = 0
    sync_results: int = 0
    rate_limited: int = 0
    faults_served: int = 0
    requests: Counter[str] = dataclasses.field(default_factory=Counter)
    responses: Counter[str] = dataclasses.field(default_factory=Counter)
    account_requests: dict[str, Counter[str]] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return stats_as_dict(self)


class AccountBook:
    """One account's reservations, customer types and the sync results it received."""

    def __init__(self) -> None:
        self.reservations: dict[str, dict[str, Any]] = {}
        self.customer_types: dict[str, dict[str, Any]] = {}
        self.sync_results: list[dict[str, Any]] = []


class CellarPassState:
    """Everything the simulator knows; handlers change it without awaiting mid-change."""

    def __init__(self, config: CellarPassConfig, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.accounts = {a.account_id: a for a in config.accounts}
        self.limiter = FixedWindowRateLimiter(config.rate_limit_per_minute)
        self.throttle_rng = random.Random(config.seed)
        self.faults = FaultQueue()
        self.webhooks = WebhookDispatcher()  # the stand-in's webhook is optional and not simulated
        self.reset()

    def reset(self) -> None:
        """Forget reservations, customer types, results, stats, faults and rate windows; keep accounts."""
        self.books: dict[str, AccountBook] = {}
        self.owner: dict[str, str] = {}  # reservationId -> account_id
        self.next_reservation = 10001
        self.next_type = 1
        self.last_ms = 0
        self.stats = CellarPassStats()
        self.faults.clear()
        self.limiter.reset()

    def book(self, account_id: str) -> AccountBook:
        return self.books.setdefault(account_id, AccountBook())

    def stamp(self) -> str:
        """Now as updatedAt, each stamp later than the last, so every change sorts after the ones
        before it (two changes in one millisecond would otherwise tie)."""
        self.last_ms = max(math.floor(self.clock() * 1000), self.last_ms + 1)
        return iso_from_epoch_ms(self.last_ms)

    def by_key(self, api_key: str) -> CellarPassAccount | None:
        found = None
        for account in self.accounts.values():
            # Every key compared, in constant time, so timing does not tell which prefix matched.
            if hmac.compare_digest(account.api_key.encode(), api_key.encode()):
                found = account
        return found

    def put_reservation(self, account_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Add a reservation (defaults fill what is not given) or replace one with the same id."""
        given = {k: v for k, v in fields.items() if k not in SIM_OWNED}
        rid = str(fields.get("reservationId") or f"R-{self.next_reservation}")
        self.next_reservation += 1
        owner = self.owner.get(rid)
        if owner is not None and owner != account_id:
            raise control_error(409, f"reservation {rid!r} belongs to another account")
        book = self.book(account_id)
        kept = book.reservations.get(rid)
        now = self.stamp()
        # A replacement is the same booking changed: its code and booked time stay.
        reservation = dict(RESERVATION_DEFAULTS) | {
            "reservationId": rid,
            "bookingCode": kept["bookingCode"] if kept else f"CP{rid[-5:]}",
            "bookedAt": kept["bookedAt"] if kept else now,
        }
        reservation |= given
        reservation["updatedAt"] = str(given.get("updatedAt") or now)
        sync = kept or {"syncStatus": "Pending", "externalOrderId": None, "syncError": ""}
        reservation |= {k: sync[k] for k in ("syncStatus", "externalOrderId", "syncError")}
        check_reservation(reservation)
        book.reservations[rid] = reservation
        self.owner[rid] = account_id
        self.stats.reservations_seeded += 1
        return reservation

    def edit_reservation(self, rid: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change some fields (a refund, a new guest count); updatedAt moves on unless given."""
        account_id = self.owner.get(rid)
        if account_id is None:
            raise control_error(404, f"no reservation {rid!r}")
        reservation = self.book(account_id).reservations[rid]
        edited = reservation | {k: v for k, v in changes.items() if k not in SIM_OWNED}
        edited["updatedAt"] = str(changes.get("updatedAt") or self.stamp())
        check_reservation(edited)
        reservation.clear()
        reservation.update(edited)
        self.stats.reservations_edited += 1
        return reservation


def check_reservation(reservation: Mapping[str, Any]) -> None:
    """Refuse (400) a control call's reservation the vendor could not hold."""
    if reservation.get("status") not in STATUSES:
        raise control_error(400, f"'status' must be one of {list(STATUSES)}")
    try:
        parse_iso_datetime(str(reservation["updatedAt"]))
    except ValueError:
        raise control_error(400, "'updatedAt' must be an ISO-8601 date-time") from None
    for name in ("total", "totalPaid", "balanceDue"):
        if amount(reservation.get(name)) is None:
            raise control_error(400, f"'{name}' must be an amount")


def amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


STATE_KEY = web.AppKey("cellarpass_state", CellarPassState)
ACCOUNT_KEY = web.RequestKey("cellarpass_account", CellarPassAccount)


# --- vendor middleware: auth, rate limit, faults ---------------------------------------


def vendor_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> SimError:
    """The stand-in's error shape: `{"code", "message"}`."""
    return SimError(status, {"code": code, "message": message}, headers)


@web.middleware
async def vendor_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, rate-limit and apply injected faults to `/v1` requests, and count them."""
    if not request.path.startswith("/v1/"):
        return await handler(request)
    state = request.app[STATE_KEY]
    route_name = route_of(request)
    state.stats.requests[route_name] += 1
    try:
        response = await guarded_call(state, request, handler, route_name)
    except SimError as exc:
        response = exc.response()
    state.stats.responses[str(response.status)] += 1
    if ACCOUNT_KEY in request:
        state.stats.account_requests.setdefault(request[ACCOUNT_KEY].account_id, Counter())[route_name] += 1
    return response


async def guarded_call(
    state: CellarPassState, request: web.Request, handler: Handler, route_name: str
) -> web.StreamResponse:
    routing_error = request.match_info.http_exception
    if routing_error is not None:
        raise vendor_error(routing_error.status, "NOT_FOUND", "No such resource")
    account = authenticate(state, request)
    request[ACCOUNT_KEY] = account
    throttle(state, account)
    if not account.integration_enabled:
        raise vendor_error(403, "INTEGRATION_DISABLED", "The VinSuite integration is not enabled for this account")
    fault = state.faults.take(route_name)
    if fault is not None:
        if fault.delay_s:
            await request.read()  # a slow server has the request even if the client gives up
            await asyncio.sleep(fault.delay_s)
        if fault.status is not None:
            if fault.after_create:
                with contextlib.suppress(SimError):
                    await handler(request)
            state.stats.faults_served += 1
            raise fault_error(fault)
    return await handler(request)


def fault_error(fault: Fault) -> SimError:
    headers = {"Retry-After": "1"} if fault.status == 429 else None
    return vendor_error(fault.status or 500, "INJECTED", f"Injected fault ({fault.status})", headers)


def authenticate(state: CellarPassState, request: web.Request) -> CellarPassAccount:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    account = state.by_key(key.strip()) if scheme.lower() == "bearer" and key.strip() else None
    if account is None:
        raise vendor_error(401, "UNAUTHORIZED", "The API key is not valid")
    return account


def throttle(state: CellarPassState, account: CellarPassAccount) -> None:
    wait = state.limiter.hit(account.api_key)
    rate = state.config.random_429_rate
    if wait is None and rate > 0 and state.throttle_rng.random() < rate:
        wait = 1.0
    if wait is not None:
        state.stats.rate_limited += 1
        raise vendor_error(429, "RATE_LIMITED", "Too many requests", retry_after_header(wait))


# --- vendor API ----------------------------------------------------------------------


def page_params(request: web.Request) -> tuple[int, int]:
    page_text, size_text = request.query.get("page", "1"), request.query.get("pageSize", str(MAX_PAGE_SIZE))
    if not page_text.isdigit() or int(page_text) < 1:
        raise vendor_error(400, "INVALID_REQUEST", "page must be a whole number from 1")
    if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
        raise vendor_error(400, "INVALID_REQUEST", f"pageSize must be from 1 to {MAX_PAGE_SIZE}")
    return int(page_text), int(size_text)


def matches_status(reservation: Mapping[str, Any], status: str) -> bool:
    """`paid`: nothing left to pay and not complimentary; `complimentary`; `all`. Cancelled and
    no-show reservations are only in `all`."""
    if status == "all":
        return True
    if reservation["status"] in CANCELLED:
        return False
    if status == "complimentary":
        return bool(reservation.get("isComplimentary"))
    return not reservation.get("isComplimentary") and (amount(reservation.get("balanceDue")) or 0) <= 0


@route("list_reservations")
async def list_reservations(request: web.Request) -> web.Response:
    """`GET /v1/reservations?status=&updatedSince=&syncStatus=&page=&pageSize=`."""
    state = request.app[STATE_KEY]
    page, size = page_params(request)
    status = request.query.get("status", "all")
    if status not in ("paid", "complimentary", "all"):
        raise vendor_error(400, "INVALID_REQUEST", "status must be paid, complimentary or all")
    sync_status = request.query.get("syncStatus")
    if sync_status is not None and sync_status not in SYNC_STATUSES:
        raise vendor_error(400, "INVALID_REQUEST", f"syncStatus must be one of {', '.join(SYNC_STATUSES)}")
    since = None
    if "updatedSince" in request.query:
        try:
            since = parse_iso_datetime(request.query["updatedSince"])
        except ValueError:
            raise vendor_error(400, "INVALID_REQUEST", "updatedSince must be an ISO-8601 date-time") from None
    rows = [
        r
        for r in state.book(request[ACCOUNT_KEY].account_id).reservations.values()
        if matches_status(r, status)
        and (sync_status is None or r["syncStatus"] == sync_status)
        and (since is None or updated(r) >= since)
    ]
    rows.sort(key=lambda r: (updated(r), r["reservationId"]))
    window = rows[(page - 1) * size : page * size]
    return web.json_response(
        {"page": page, "pageSize": size, "total": len(rows), "reservations": [public(r) for r in window]}
    )


def updated(reservation: Mapping[str, Any]) -> datetime:
    return parse_iso_datetime(str(reservation["updatedAt"])).astimezone(UTC)


def public(reservation: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reservation.items() if k != "syncError"}


@route("sync_result")
async def sync_result(request: web.Request) -> web.Response:
    """`POST /v1/reservations/{id}/sync-result {success, externalOrderId, externalCustomerId?, error}`."""
    state = request.app[STATE_KEY]
    account = request[ACCOUNT_KEY]
    rid = request.match_info["reservation_id"]
    reservation = state.book(account.account_id).reservations.get(rid)
    if reservation is None:
        raise vendor_error(404, "NOT_FOUND", f"Reservation {rid} was not found")
    body = await read_json_object(request)
    if body is None or not isinstance(body.get("success"), bool):
        raise vendor_error(400, "INVALID_REQUEST", "success must be true or false")
    order_id = str(body.get("externalOrderId") or "")
    error = str(body.get("error") or "")
    if body["success"] and not order_id:
        raise vendor_error(400, "INVALID_REQUEST", "externalOrderId is required with success")
    if reservation["syncStatus"] == "Processed" and (not body["success"] or order_id != reservation["externalOrderId"]):
        # Once Processed a reservation is never re-synced: only the same success again is taken.
        raise vendor_error(
            409, "ALREADY_PROCESSED", f"Reservation {rid} was processed as order {reservation['externalOrderId']}"
        )
    reservation["syncStatus"] = "Processed" if body["success"] else "Error"
    reservation["externalOrderId"] = order_id or reservation["externalOrderId"]
    reservation["syncError"] = "" if body["success"] else error
    book = state.book(account.account_id)
    book.sync_results.append(
        {
            "reservationId": rid,
            "success": body["success"],
            "externalOrderId": order_id,
            "externalCustomerId": str(body.get("externalCustomerId") or ""),
            "error": error,
            "at": state.clock(),
        }
    )
    state.stats.sync_results += 1
    return web.json_response(
        {
            "reservationId": rid,
            "syncStatus": reservation["syncStatus"],
            "externalOrderId": reservation["externalOrderId"],
            "syncError": reservation["syncError"],
        }
    )


@route("list_customer_types")
async def list_customer_types(request: web.Request) -> web.Response:
    """`GET /v1/customer-types`: `[{id, name, sourceId?}]` in the order they were made."""
    book = request.app[STATE_KEY].book(request[ACCOUNT_KEY].account_id)
    return web.json_response(list(book.customer_types.values()))


@route("put_customer_type")
async def put_customer_type(request: web.Request) -> web.Response:
    """`POST /v1/customer-types {name, sourceId?}` (ours): the type mirroring sourceId renamed
    (200), else created (201); without sourceId always created (a type staff made)."""
    state = request.app[STATE_KEY]
    body = await read_json_object(request)
    name = body.get("name") if body is not None else None
    source = body.get("sourceId") if body is not None else None
    if not isinstance(name, str) or not name.strip():
        raise vendor_error(400, "INVALID_REQUEST", "name is required")
    if source is not None and not isinstance(source, str):
        raise vendor_error(400, "INVALID_REQUEST", "sourceId must be a string")
    kind, created = add_customer_type(state, request[ACCOUNT_KEY].account_id, name.strip(), source or None)
    return web.json_response(kind, status=201 if created else 200)


def add_customer_type(
    state: CellarPassState, account_id: str, name: str, source: str | None
) -> tuple[dict[str, Any], bool]:
    book = state.book(account_id)
    if source:
        for kind in book.customer_types.values():
            if kind.get("sourceId") == source:
                kind["name"] = name
                return kind, False
    kind = {"id": f"CT-{state.next_type}", "name": name} | ({"sourceId": source} if source else {})
    state.next_type += 1
    book.customer_types[kind["id"]] = kind
    return kind, True


@route("delete_customer_type")
async def delete_customer_type(request: web.Request) -> web.Response:
    """`DELETE /v1/customer-types/{id}` (ours): 204, or 404 when it is gone."""
    book = request.app[STATE_KEY].book(request[ACCOUNT_KEY].account_id)
    if book.customer_types.pop(request.match_info["type_id"], None) is None:
        raise vendor_error(404, "NOT_FOUND", "No such customer type")
    return web.Response(status=204)


# --- control API ---------------------------------------------------------------------------


def account_of(state: CellarPassState, given: Any) -> str:
    """The account a control call names (`account_id`), or the only one there is."""
    if given is None and len(state.accounts) == 1:
        return next(iter(state.accounts))
    if not isinstance(given, str) or given not in state.accounts:
        raise control_error(404, f"no account {given!r}: name one of {sorted(state.accounts)} as 'account_id'")
    return given


async def put_account(request: web.Request) -> web.Response:
    """`PUT /_sim/accounts/{account_id}`: add or replace an account (`api_key`, `integration_enabled`)."""
    state = request.app[STATE_KEY]
    body = await read_control_body(request)
    body.setdefault("account_id", request.match_info["account_id"])
    try:
        account = from_mapping(CellarPassAccount, body, "account")
    except (ValueError, TypeError) as exc:
        raise control_error(400, str(exc)) from None
    if account.account_id != request.match_info["account_id"]:
        raise control_error(400, "'account_id' must match the path")
    state.accounts[account.account_id] = account
    return web.json_response(dataclasses.asdict(account) | {"api_key": "***"})


async def seed_reservations(request: web.Request) -> web.Response:
    """`POST /_sim/reservations {account_id?, reservations: [fields]}`: add or replace each (by
    reservationId); defaults fill the rest, updatedAt and bookedAt are now unless given."""
    state = request.app[STATE_KEY]
    body = await read_control_body(request)
    account_id = account_of(state, body.get("account_id"))
    given = body.get("reservations")
    if not isinstance(given, list) or not all(isinstance(r, dict) for r in given):
        raise control_error(400, "'reservations' must be a list of objects")
    return web.json_response({"reservations": [state.put_reservation(account_id, r) for r in given]}, status=201)


async def edit_reservation(request: web.Request) -> web.Response:
    """`PATCH /_sim/reservations/{id} {fields}`: change a reservation as CellarPass staff would
    (a refund: `totalPaid`, `total`...); updatedAt moves on, so it is listed as changed."""
    state = request.app[STATE_KEY]
    changes = await read_control_body(request)
    return web.json_response(state.edit_reservation(request.match_info["reservation_id"], changes))


async def list_sim_reservations(request: web.Request) -> web.Response:
    """`GET /_sim/reservations?account_id=`: every reservation with its sync status and error."""
    state = request.app[STATE_KEY]
    account_id = account_of(state, request.query.get("account_id"))
    return web.json_response({"reservations": list(state.book(account_id).reservations.values())})


async def list_sync_results(request: web.Request) -> web.Response:
    """`GET /_sim/sync-results?account_id=`: every sync result received, in order."""
    state = request.app[STATE_KEY]
    account_id = account_of(state, request.query.get("account_id"))
    return web.json_response({"sync_results": state.book(account_id).sync_results})


async def seed_customer_types(request: web.Request) -> web.Response:
    """`POST /_sim/customer-types {account_id?, types: [{name, sourceId?}]}`: types made in
    CellarPass (without sourceId: by staff, which a mirror never touches)."""
    state = request.app[STATE_KEY]
    body = await read_control_body(request)
    account_id = account_of(state, body.get("account_id"))
    types = body.get("types")
    if not isinstance(types, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in types):
        raise control_error(400, "'types' must be a list of {name, sourceId?}")
    made = [add_customer_type(state, account_id, t["name"], t.get("sourceId"))[0] for t in types]
    return web.json_response({"types": made}, status=201)


async def list_sim_customer_types(request: web.Request) -> web.Response:
    """`GET /_sim/customer-types?account_id=`."""
    state = request.app[STATE_KEY]
    account_id = account_of(state, request.query.get("account_id"))
    return web.json_response({"types": list(state.book(account_id).customer_types.values())})


# --- wiring --------------------------------------------------------------------------------


def create_app(config: CellarPassConfig) -> web.Application:
    """Build the simulator app; its state is `app[STATE_KEY]`."""
    app = web.Application(middlewares=[control_error_middleware, vendor_middleware])
    app[STATE_KEY] = CellarPassState(config)
    router = app.router
    router.add_get("/v1/reservations", list_reservations)
    router.add_post("/v1/reservations/{reservation_id}/sync-result", sync_result)
    router.add_get("/v1/customer-types", list_customer_types)
    router.add_post("/v1/customer-types", put_customer_type)
    router.add_delete("/v1/customer-types/{type_id}", delete_customer_type)
    router.add_put("/_sim/accounts/{account_id}", put_account)
    router.add_post("/_sim/reservations", seed_reservations)
    router.add_get("/_sim/reservations", list_sim_reservations)
    router.add_patch("/_sim/reservations/{reservation_id}", edit_reservation)
    router.add_get("/_sim/sync-results", list_sync_results)
    router.add_post("/_sim/customer-types", seed_customer_types)
    router.add_get("/_sim/customer-types", list_sim_customer_types)
    add_shared_control_routes(router, STATE_KEY, FAULT_ROUTES, allow_after_create=True)
    return app
