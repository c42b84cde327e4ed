"""Two small vendors over real HTTP for the directory admin's tests, each behind a test connector
registered in a test Registry: a channel with invite lists ("listshop", shaped like CellarPass's
invite lists) and a provider with a customer directory ("clubdirectory", shaped like VinSuite's
member types and TestConnection). Both check their connection.

The vendors are the external systems: aiohttp apps holding their state (lists, member types, the
credentials they accept, whether the web-service account is active) and counting the writes they
took. Everything of ordersync's own (AccountClients, Postgres, gRPC) is real in the tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import (
    Capability,
    ChannelConnector,
    ClientResources,
    ConnectionCheck,
    ConnectionProblem,
    ConnectorInfo,
    DirectoryMember,
    InviteList,
    MemberType,
    ProviderConnector,
    Role,
    SecretResolver,
    Submission,
    SubmitResult,
    UpsertedMember,
    provider_titles,
)
from libs.connectors.base.errors import ConnectorError, InvalidRequest, InvalidResponse, Unauthorized
from libs.connectors.base.http import ConnectorClient, HttpTransport, RetryPolicy, json_body
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.tenants import Account, Route, Tenant, TenantDirectory
from tests.simulators.common import SimulatorServer

QUICK = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02)
LISTS_KEY = "lists-key-7f3a9c"
DIRECTORY_USER, DIRECTORY_PASSWORD = "cellar-ws", "dir-pass-51d2e8"


# ---- the vendors


@dataclass
class ListsVendor:
    """A channel's invite lists: id -> (name, source id); the key it accepts; writes taken.
    `down` makes it answer 503 to everything (an outage)."""

    key: str = LISTS_KEY
    active: bool = True
    down: bool = False
    lists: dict[str, tuple[str, str]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(101))

    def add(self, name: str, source_id: str = "") -> str:
        list_id = f"L{next(self._ids)}"
        self.lists[list_id] = (name, source_id)
        return list_id

    def named(self) -> dict[str, str]:
        """name -> source id of every list (what a reader of the channel sees)."""
        return {name: source for name, source in self.lists.values()}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/v1/account", self._account)
        app.router.add_get("/v1/invite-lists", self._list)
        app.router.add_put("/v1/invite-lists/by-source/{source_id}", self._put)
        app.router.add_delete("/v1/invite-lists/{list_id}", self._delete)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if self.down:
            return web.json_response({"error": "service unavailable"}, status=503)
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": "invalid API key"}, status=401)
        if not self.active:
            return web.json_response({"error": "this API account is disabled"}, status=403)
        return await handler(request)

    async def _account(self, _: web.Request) -> web.Response:
        return web.json_response({"active": True})

    async def _list(self, _: web.Request) -> web.Response:
        rows = [{"id": i, "name": name, "sourceId": source} for i, (name, source) in self.lists.items()]
        return web.json_response(rows)

    async def _put(self, request: web.Request) -> web.Response:
        source_id, name = request.match_info["source_id"], (await request.json())["name"]
        self.writes.append(f"put {source_id} {name}")
        list_id = next((i for i, (_, s) in self.lists.items() if s == source_id), None) or self.add(name, source_id)
        self.lists[list_id] = (name, source_id)
        return web.json_response({"id": list_id, "name": name, "sourceId": source_id})

    async def _delete(self, request: web.Request) -> web.Response:
        list_id = request.match_info["list_id"]
        self.writes.append(f"delete {list_id}")
        return web.Response(status=204 if self.lists.pop(list_id, None) else 404)


@dataclass
class DirectoryVendor:
    """A directory's member types (id -> name), and the web-service login it accepts. Its
    refusals echo the password it was sent, as careless vendors do."""

    user: str = DIRECTORY_USER
    password: str = DIRECTORY_PASSWORD
    active: bool = True
    types: dict[str, str] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/TestConnection", self._test_connection)
        app.router.add_post("/GetMemberTypes", self._member_types)
        return app

    def _auth(self, request: dict) -> dict:
        if (request.get("Username"), request.get("Password")) != (self.user, self.password):
            failure = f"Invalid username or password (password {request.get('Password')!r} refused)"
            return {"Type": "INVALID", "FailureReason": failure}
        if not self.active:
            return {"Type": "INVALID", "FailureReason": "Web service account is not active"}
        return {"Type": "SUPPLIER", "FailureReason": ""}

    async def _test_connection(self, request: web.Request) -> web.Response:
        return web.json_response({"d": {"PrimaryAuthInfo": self._auth((await request.json())["request"])}})

    async def _member_types(self, request: web.Request) -> web.Response:
        auth = self._auth((await request.json())["request"])
        types = [{"MemberTypeID": i, "Name": n} for i, n in self.types.items()] if auth["Type"] != "INVALID" else []
        return web.json_response({"d": {"PrimaryAuthInfo": auth, "MemberTypes": types}})


# ---- the test connectors


@dataclass(frozen=True)
class ListsAccount:
    base_url: str
    api_key: str = field(repr=False)


@dataclass(frozen=True)
class DirectoryAccount:
    base_url: str
    username: str
    password: str = field(repr=False)


class VendorClient(ConnectorClient):
    def __init__(self, connector: str, base_url: str, resources: ClientResources, headers=None):
        self._http = HttpTransport(
            connector=connector,
            base_url=base_url,
            headers=headers,
            retry=QUICK,
            timeout=httpx.Timeout(5.0),
            max_concurrency=resources.max_concurrency,
        )

    async def call(self, method: str, path: str, operation: str, **kwargs) -> httpx.Response:
        return await self._http.request(method, path, operation=operation, **kwargs)


def _checked(problem: ConnectionProblem, detail: str) -> ConnectionCheck:
    return ConnectionCheck(False, problem, detail)


class ListShop(ChannelConnector):
    info = ConnectorInfo(
        id="listshop",
        label="ListShop",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset({Capability.INVITE_LISTS, Capability.CONNECTION_CHECK}),
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> ListsAccount:
        return ListsAccount(section["base_url"], section["api_key"])

    def open_client(self, settings: ListsAccount, resources: ClientResources) -> VendorClient:
        return VendorClient("listshop", settings.base_url, resources, {"Authorization": f"Bearer {settings.api_key}"})

    async def _json(self, client: VendorClient, method: str, path: str, operation: str, **kwargs) -> Any:
        response = await client.call(method, path, operation, **kwargs)
        if response.status_code in (401, 403):
            raise Unauthorized(f"listshop {operation}: HTTP {response.status_code}", status_code=response.status_code)
        if response.status_code >= 400 and response.status_code != 404:
            raise InvalidRequest(f"listshop {operation}: HTTP {response.status_code}", status_code=response.status_code)
        return json_body(response, label=f"listshop {operation}") if response.status_code == 200 else None

    async def list_invite_lists(self, client: VendorClient, settings: ListsAccount) -> list[InviteList]:
        rows = await self._json(client, "GET", "/v1/invite-lists", "list_invite_lists")
        return [InviteList(r["id"], r["name"], r["sourceId"]) for r in rows]

    async def put_invite_list(self, client: VendorClient, settings: ListsAccount, name: str, source_id: str):
        row = await self._json(
            client, "PUT", f"/v1/invite-lists/by-source/{source_id}", "put_invite_list", json={"name": name}
        )
        return InviteList(row["id"], row["name"], row["sourceId"])

    async def remove_invite_list(self, client: VendorClient, settings: ListsAccount, list_id: str) -> bool:
        response = await client.call("DELETE", f"/v1/invite-lists/{list_id}", "remove_invite_list")
        return response.status_code == 204

    async def check_connection(self, client: VendorClient, settings: ListsAccount) -> ConnectionCheck:
        try:
            response = await client.call("GET", "/v1/account", "check_connection")
        except ConnectorError as exc:
            return _checked(ConnectionProblem.UNREACHABLE, exc.message)
        words = response.json().get("error", "") if response.status_code != 200 else ""
        if response.status_code == 401:
            return _checked(ConnectionProblem.BAD_CREDENTIALS, words)
        if response.status_code == 403:
            return _checked(ConnectionProblem.ACCOUNT_INACTIVE, words)
        return ConnectionCheck(True)


class ClubDirectory(ProviderConnector):
    info = ConnectorInfo(
        id="clubdirectory",
        label="ClubDirectory",
        roles=frozenset({Role.PROVIDER}),
        capabilities=frozenset({Capability.SUBMIT, Capability.CUSTOMER_DIRECTORY, Capability.CONNECTION_CHECK}),
        status_titles=provider_titles("ClubDirectory"),
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> DirectoryAccount:
        return DirectoryAccount(section["base_url"], section["username"], section["password"])

    def open_client(self, settings: DirectoryAccount, resources: ClientResources) -> VendorClient:
        return VendorClient("clubdirectory", settings.base_url, resources)

    def order_number(self, settings: DirectoryAccount, order: order_pb2.Order) -> str:
        return order.external_number

    async def submit(self, client, settings, batch: Sequence[Submission]) -> list[SubmitResult]:
        return [InvalidRequest("these tests send no orders") for _ in batch]

    async def _call(self, client: VendorClient, settings: DirectoryAccount, method: str) -> dict:
        body = {"request": {"Username": settings.username, "Password": settings.password}}
        response = await client.call("POST", f"/{method}", method, json=body, retry_unsafe=True)
        answer = json_body(response, label=f"clubdirectory {method}")
        if not isinstance(answer, dict) or "d" not in answer:
            raise InvalidResponse(f"clubdirectory {method}: no 'd' in the answer")
        return answer["d"]

    async def member_types(self, client: VendorClient, settings: DirectoryAccount) -> list[MemberType]:
        answer = await self._call(client, settings, "GetMemberTypes")
        if answer["PrimaryAuthInfo"]["Type"] == "INVALID":
            raise Unauthorized(f"clubdirectory GetMemberTypes: {answer['PrimaryAuthInfo']['FailureReason']}")
        return [MemberType(t["MemberTypeID"], t["Name"]) for t in answer["MemberTypes"]]

    async def find_members(self, client, settings, *, email: str = "", last_name: str = "") -> list[DirectoryMember]:
        raise NotImplementedError("these tests look nobody up")

    async def upsert_member(self, client, settings, customer, address=None) -> UpsertedMember:
        raise NotImplementedError("these tests upsert nobody")

    async def check_connection(self, client: VendorClient, settings: DirectoryAccount) -> ConnectionCheck:
        try:
            auth = (await self._call(client, settings, "TestConnection"))["PrimaryAuthInfo"]
        except ConnectorError as exc:
            return _checked(ConnectionProblem.UNREACHABLE, exc.message)
        if auth["Type"] != "INVALID":
            return ConnectionCheck(True)
        inactive = "not active" in auth["FailureReason"]
        problem = ConnectionProblem.ACCOUNT_INACTIVE if inactive else ConnectionProblem.BAD_CREDENTIALS
        return _checked(problem, auth["FailureReason"])


# ---- the world


@dataclass
class Vendors:
    """Each tenant's vendors, the registry and the tenants' account clients."""

    lists: dict[str, ListsVendor]
    directories: dict[str, DirectoryVendor]
    servers: dict[str, SimulatorServer]
    registry: Registry
    tenants: TenantDirectory
    accounts: AccountClients

    async def stop(self) -> None:
        await self.accounts.stop()
        for server in reversed(list(self.servers.values())):
            await server.stop()


def _route(channel: str, provider: str) -> Route:
    return Route(f"{channel}-to-{provider}", channel, provider, order_kinds=frozenset({"reservation"}))


async def start_vendors() -> Vendors:
    """Tenants acme and globex, each with a ListShop channel "store" routed to a ClubDirectory
    account "club", on vendors of their own (`servers["acme/club"]`...: stop one to make it
    unreachable); tenant "plain" with a channel and no directory; tenant "empty" with no account."""
    lists = {t: ListsVendor() for t in ("acme", "globex")}
    directories = {t: DirectoryVendor() for t in ("acme", "globex")}
    servers: dict[str, SimulatorServer] = {}
    for name in ("acme", "globex"):
        servers[f"{name}/store"] = await SimulatorServer(lists[name].app()).start()
        servers[f"{name}/club"] = await SimulatorServer(directories[name].app()).start()
    plain_lists = ListsVendor()
    lists["plain"] = plain_lists
    servers["plain/store"] = await SimulatorServer(plain_lists.app()).start()

    def tenant(tenant_id: str) -> Tenant:
        store = Account("store", "listshop", ListsAccount(servers[f"{tenant_id}/store"].base_url, LISTS_KEY))
        club = DirectoryAccount(servers[f"{tenant_id}/club"].base_url, DIRECTORY_USER, DIRECTORY_PASSWORD)
        accounts = {"store": store, "club": Account("club", "clubdirectory", club)}
        return Tenant(tenant_id, accounts, (_route("store", "club"),))

    plain_store = Account("store", "listshop", ListsAccount(servers["plain/store"].base_url, LISTS_KEY))
    directory = TenantDirectory(
        {
            "acme": tenant("acme"),
            "globex": tenant("globex"),
            "plain": Tenant("plain", {"store": plain_store}),
            "empty": Tenant("empty", {}),
        }
    )
    registry = Registry([ListShop(), ClubDirectory()])
    accounts = AccountClients(directory, registry, ClientResources(max_concurrency=4))
    return Vendors(lists, directories, servers, registry, directory, accounts)
