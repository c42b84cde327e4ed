"""A stand-in customer directory for dispatch's look-up tests and the look-up bench: a small
aiohttp HTTP server speaking the JSON transport of VinSuite's (stand-in) member methods, and a
test-only provider connector implementing the CustomerDirectory Protocol over real HTTP.

The server is the external system, so it is the double; everything of ordersync's own (gRPC,
Postgres, the cache, the account clients and their rate budget) is real. Its routes:

    POST /GetMembers      {"request": {WineryID, Username, Password, Email? | LastName?}}
                          -> {"Members": [{MemberID, FirstName, LastName, Email, Phone,
                              MemberTypes[], ClubMemberships[{ClubID, ClubName, Status}]}]}
    POST /AddUpdateMember {"request": {..., "Member": {FirstName, LastName, Email, Phone}}}
                          -> {"MemberID", "IsNew"}   (matched on e-mail)
    POST /GetMemberTypes  -> {"MemberTypes": [{MemberTypeID, Name}]}

Wrong credentials answer `{"PrimaryAuthInfo": {"Type": "INVALID", "FailureReason": ...}}`.
Tests steer it through `DirectoryState` (the app's STATE): `down` answers 503, `gate` holds
every answer until set, `calls` counts requests per method.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from ordersync.common.v1 import order_pb2, postal_address_pb2

from libs.connectors.base.contract import (
    Capability,
    ClientResources,
    ClubMembership,
    ConnectorInfo,
    DirectoryMember,
    Limits,
    MemberType,
    ProviderConnector,
    Role,
    SecretResolver,
    Submission,
    SubmitResult,
    UpsertedMember,
    provider_titles,
)
from libs.connectors.base.errors import InvalidResponse, Unauthorized, build_error, error_class_for_status
from libs.connectors.base.http import ConnectorClient, HttpTransport, RetryPolicy, json_object
from libs.connectors.base.ratelimit import KeyedRateLimiter

CONNECTOR_ID = "testdirectory"
STATE = web.AppKey("directory_state", object)


# ---- the server ----------------------------------------------------------------------------


@dataclass
class DirectoryState:
    """What the stand-in directory holds and how it behaves right now."""

    winery_id: str = "1001"
    username: str = "ws-user"
    password: str = "ws-pass"
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # by folded e-mail
    member_types: list[str] = field(default_factory=lambda: ["Trade", "Club Member"])
    down: bool = False
    gate: asyncio.Event | None = None
    calls: Counter = field(default_factory=Counter)
    next_id: int = 5000

    def add(self, first: str, last: str, email: str, *, types=(), clubs=(), phone: str = "") -> str:
        self.next_id += 1
        member_id = str(self.next_id)
        self.members[email.casefold()] = {
            "MemberID": member_id,
            "FirstName": first,
            "LastName": last,
            "Email": email,
            "Phone": phone,
            "MemberTypes": list(types),
            "ClubMemberships": [{"ClubID": cid, "ClubName": name, "Status": status} for cid, name, status in clubs],
        }
        return member_id


def create_app(state: DirectoryState | None = None) -> web.Application:
    app = web.Application()
    app[STATE] = state or DirectoryState()
    app.router.add_post("/GetMembers", _get_members)
    app.router.add_post("/AddUpdateMember", _add_update_member)
    app.router.add_post("/GetMemberTypes", _get_member_types)
    return app


async def _admitted(request: web.Request, method: str) -> tuple[DirectoryState, dict]:
    state: DirectoryState = request.app[STATE]  # type: ignore[assignment]
    state.calls[method] += 1
    if state.gate is not None:
        await state.gate.wait()
    if state.down:
        raise web.HTTPServiceUnavailable(text="maintenance")
    body = (await request.json()).get("request", {})
    if (body.get("Username"), body.get("Password")) != (state.username, state.password):
        reason = "Invalid username or password"
        raise web.HTTPOk(
            text=f'{{"PrimaryAuthInfo": {{"Type": "INVALID", "FailureReason": "{reason}"}}}}',
            content_type="application/json",
        )
    return state, body


async def _get_members(request: web.Request) -> web.Response:
    state, body = await _admitted(request, "GetMembers")
    if body.get("Email"):
        found = [m for m in [state.members.get(body["Email"].casefold())] if m]
    else:
        last = str(body.get("LastName", "")).casefold()
        found = [m for m in state.members.values() if m["LastName"].casefold() == last]
    return web.json_response({"Members": found})


async def _add_update_member(request: web.Request) -> web.Response:
    state, body = await _admitted(request, "AddUpdateMember")
    member = body.get("Member", {})
    known = state.members.get(member["Email"].casefold())
    if known is not None:
        known.update({k: member[k] for k in ("FirstName", "LastName", "Phone") if member.get(k)})
        return web.json_response({"MemberID": known["MemberID"], "IsNew": False})
    member_id = state.add(member.get("FirstName", ""), member.get("LastName", ""), member["Email"])
    return web.json_response({"MemberID": member_id, "IsNew": True})


async def _get_member_types(request: web.Request) -> web.Response:
    state, _ = await _admitted(request, "GetMemberTypes")
    types = [{"MemberTypeID": str(i + 1), "Name": name} for i, name in enumerate(state.member_types)]
    return web.json_response({"MemberTypes": types})


# ---- the connector -------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectorySettings:
    base_url: str
    winery_id: str = "1001"
    username: str = "ws-user"
    password: str = field(default="ws-pass", repr=False)
    requests_per_minute: int = 60


class DirectoryClient(ConnectorClient):
    """The account's HTTP client: rate-limited by the service's shared budget when lent one."""

    def __init__(self, settings: DirectorySettings, resources: ClientResources):
        self.settings = settings
        scope = "testdirectory-" + hashlib.sha256(f"{settings.base_url}|{settings.winery_id}".encode()).hexdigest()[:16]
        limiter = resources.limiter_for(scope, settings.requests_per_minute, 10) or KeyedRateLimiter(
            settings.requests_per_minute, burst=10
        )
        self._http = HttpTransport(
            connector=CONNECTOR_ID,
            base_url=settings.base_url,
            max_concurrency=resources.max_concurrency,
            retry=RetryPolicy(max_attempts=2, base_delay_s=0.02, max_delay_s=0.05),
            rate_limiter=limiter,
            rate_limit_key=scope,
        )

    async def call(self, method: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        s = self.settings
        request = {"WineryID": s.winery_id, "Username": s.username, "Password": s.password, **fields}
        # Look-ups and the e-mail-matched upsert change nothing when repeated.
        response = await self._http.request("POST", f"/{method}", json={"request": request}, operation=method,
                                            retry_unsafe=True)  # fmt: skip
        if response.status_code >= 400:
            cls = error_class_for_status(response.status_code)
            raise build_error(
                cls, f"{CONNECTOR_ID} {method}: HTTP {response.status_code}", status_code=response.status_code
            )
        body = json_object(response, label=f"{CONNECTOR_ID} {method}")
        auth = body.get("PrimaryAuthInfo") or {}
        if auth.get("Type") == "INVALID":
            raise Unauthorized(f"the directory refused the credentials: {auth.get('FailureReason', 'no reason')}")
        return body


class TestDirectoryConnector(ProviderConnector):
    """A provider with a customer directory only (it takes no orders)."""

    info = ConnectorInfo(
        id=CONNECTOR_ID,
        label="Test Directory",
        roles=frozenset({Role.PROVIDER}),
        capabilities=frozenset({Capability.CUSTOMER_DIRECTORY}),
        limits=Limits(requests_per_minute=60),
        status_titles=provider_titles("Test Directory"),
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> Hashable:
        return DirectorySettings(
            base_url=section["base_url"],
            winery_id=str(section.get("winery_id", "1001")),
            username=section.get("username", "ws-user"),
            password=resolve(section["password"], where) if "password" in section else "ws-pass",
            requests_per_minute=int(section.get("requests_per_minute", 60)),
        )

    def open_client(self, settings: DirectorySettings, resources: ClientResources) -> DirectoryClient:
        return DirectoryClient(settings, resources)

    def order_number(self, settings: Any, order: order_pb2.Order) -> str:
        return order.external_number

    async def submit(self, client: Any, settings: Any, batch: Sequence[Submission]) -> list[SubmitResult]:
        raise NotImplementedError("the test directory takes no orders")

    async def find_members(
        self, client: DirectoryClient, settings: Any, *, email: str = "", last_name: str = ""
    ) -> list[DirectoryMember]:
        body = await client.call("GetMembers", {"Email": email} if email else {"LastName": last_name})
        try:
            return [_member(m) for m in body["Members"]]
        except (KeyError, TypeError) as exc:
            raise InvalidResponse(f"{CONNECTOR_ID} GetMembers: unexpected member shape ({exc})") from None

    async def upsert_member(
        self,
        client: DirectoryClient,
        settings: Any,
        customer: order_pb2.Customer,
        address: postal_address_pb2.PostalAddress | None = None,
    ) -> UpsertedMember:
        member = {"FirstName": customer.first_name, "LastName": customer.last_name, "Email": customer.email,
                  "Phone": customer.phone}  # fmt: skip
        body = await client.call("AddUpdateMember", {"Member": member})
        return UpsertedMember(str(body["MemberID"]), bool(body["IsNew"]))

    async def member_types(self, client: DirectoryClient, settings: Any) -> list[MemberType]:
        body = await client.call("GetMemberTypes", {})
        return [MemberType(t["MemberTypeID"], t["Name"]) for t in body["MemberTypes"]]


def _member(raw: dict[str, Any]) -> DirectoryMember:
    return DirectoryMember(
        member_id=str(raw["MemberID"]),
        first_name=raw["FirstName"],
        last_name=raw["LastName"],
        email=raw["Email"],
        phone=raw.get("Phone", ""),
        member_types=tuple(raw.get("MemberTypes", ())),
        clubs=tuple(ClubMembership(str(c["ClubID"]), c["ClubName"], c["Status"]) for c in raw["ClubMemberships"]),
    )


CONNECTOR = TestDirectoryConnector()  # for ORDERSYNC_CONNECTOR_MODULES
