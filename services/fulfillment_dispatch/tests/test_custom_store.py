"""Pull mode on real Postgres over real HTTP with the ShipStation connector: the sender holds a
custom_store route's orders, the store endpoint exports them page by page (marking them sent
once, with their events) and takes ShipNotices; every answer code it gives.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from xml.etree import ElementTree

import asyncpg
import httpx
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.api.custom_store import MAX_BODY_BYTES, CustomStoreHandler, add_store_routes
from fulfillment_dispatch.api.webhooks import ProviderWebhookHandler, build_web_app
from fulfillment_dispatch.app import MIGRATIONS
from fulfillment_dispatch.custom_store import Exporter
from fulfillment_dispatch.sender import Sender
from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.dispatches import NewDispatch, enqueue
from libs.clients.carrier_mapping import CarrierMappingClient
from libs.connectors.base.contract import ClientResources
from libs.connectors.base.testing import vendor_bytes
from libs.connectors.registry import load
from libs.connectors.shipstation.connector import ShipStationAccount
from libs.connectors.shipstation.settings import ShipStationSettings
from libs.connectors.shipstation.tests.builders import valid_order
from libs.connectors.vinoshipper.connector import VinoshipperAccount
from libs.connectors.vinoshipper.settings import VinoshipperSettings
from libs.platform.accounts import AccountClients
from libs.platform.db import create_pool, migrate
from libs.platform.events import parse_envelope
from libs.platform.http_server import tracing_middleware
from libs.platform.tenants import Account, Route, Tenant, TenantDirectory
from tests.databases import fresh_database, unreachable

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.integration, pytest.mark.timeout(60)]

TENANT, USER, PASSWORD = "acme", "shipstation", "store-pw"
PAGE_SIZE = 2
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
WINDOW = {"start_date": "01/01/2020 00:00", "end_date": "12/31/2099 23:59"}


def labels(**changes) -> Account:
    api = ShipStationSettings(api_key="ss-key", api_secret="ss-secret", base_url="http://127.0.0.1:9")
    settings = ShipStationAccount(api, webhook_token="hook-token", store_user=USER, store_password=PASSWORD)
    return Account(changes.get("name", "labels"), "shipstation", settings)


def tenants() -> TenantDirectory:
    """acme: a ShipStation account 'labels' fed by a custom_store route, a misconfigured route,
    and a second account 'other' with its own store."""
    routes = (
        Route("pull", "omni", "labels", options={"mode": "custom_store"}),
        Route("odd", "omni", "labels", options={"mode": "carrier-pigeon"}),
        Route("vino", "omni", "wine", options={"mode": "custom_store"}),
    )
    wine_api = VinoshipperSettings(
        api_key="vs-key", api_secret="vs-secret", base_url="http://127.0.0.1:9", order_number_prefix="W"
    )
    wine = Account("wine", "vinoshipper", VinoshipperAccount(wine_api, webhook_token="vs-token"))
    accounts = {"labels": labels(), "other": labels(name="other"), "wine": wine}
    return TenantDirectory({TENANT: Tenant(TENANT, accounts, routes), "empty": Tenant("empty", {})})


@dataclass
class Store:
    url: str
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    sender: Sender

    async def export(self, page: int = 1, *, auth: str = AUTH, url: str | None = None, **query) -> httpx.Response:
        params = {"action": "export", **WINDOW, "page": str(page), **query}
        return await self.http.get(url or self.url, params=params, headers={"Authorization": auth})

    async def shipnotify(self, body: bytes, *, auth: str = AUTH, **query) -> httpx.Response:
        params = {"action": "shipnotify", **query}
        headers = {"Authorization": auth, "Content-Type": "application/xml"}
        return await self.http.post(self.url, params=params, content=body, headers=headers)

    async def statuses(self) -> dict[str, tuple[str, str]]:
        rows = await self.pool.fetch("SELECT provider_order_number, status, reason_code FROM dispatches")
        return {r["provider_order_number"]: (r["status"], r["reason_code"]) for r in rows}

    async def dispatched(self) -> list[str]:
        """The provider order numbers of the OrderDispatched events in the outbox, in order."""
        numbers = []
        for row in await self.pool.fetch("SELECT value FROM outbox ORDER BY id"):
            message = events_pb2.OrderDispatched()
            if parse_envelope(row["value"]).payload.Unpack(message):
                numbers.append(message.provider_order_number)
        return numbers


async def hold(
    store: Store, *numbers: str, route: str = "pull", account: str = "labels", provider: str = "shipstation"
) -> None:
    """Queue orders routed by `route` and let the sender handle them."""
    rows = [
        NewDispatch(
            f"ord-{n}", TENANT, provider, n, valid_order(n).SerializeToString(), "cin7", f"c-{n}", n, "",
            provider_account=account, route=route, channel_account="omni",
        )
        for n in numbers
    ]  # fmt: skip
    async with store.pool.acquire() as conn:
        await enqueue(conn, rows)
    await store.sender.run_once()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_store(infra) -> AsyncIterator[Store]:
    registry, check = load(), timedelta(minutes=15)
    accounts = AccountClients(tenants(), registry, ClientResources(max_concurrency=2))
    async with fresh_database(infra.pg_dsn) as dsn, contextlib.AsyncExitStack() as cleanup:
        cleanup.push_async_callback(accounts.stop)
        await migrate(dsn, "fulfillment_dispatch", MIGRATIONS)
        pool = await create_pool(dsn, "fulfillment_dispatch", 4)
        cleanup.push_async_callback(pool.close)
        recorder = ShipmentRecorder(pool, registry, topic="dispatch.shipments.v1", producer="t", check_after=check)
        exporter = Exporter(
            pool, topic="dispatch.orders.v1", producer="t", first_check_after=check, page_size=PAGE_SIZE
        )
        app = build_web_app(ProviderWebhookHandler(pool, accounts, recorder), [tracing_middleware])
        add_store_routes(app, CustomStoreHandler(accounts, exporter, recorder))
        # ShipStation needs no service codes: the sender never calls carrier mapping here, so its
        # client is never started.
        sender = Sender(
            pool, accounts, CarrierMappingClient("127.0.0.1:9"), topic="dispatch.orders.v1", producer="t",
            lease_s=30, batch=50, max_attempts=5, concurrency=4, first_check_after=check,
        )  # fmt: skip
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        cleanup.push_async_callback(server.close)
        http = await cleanup.enter_async_context(httpx.AsyncClient(trust_env=False, timeout=20))
        yield Store(f"http://127.0.0.1:{server.port}/stores/shipstation/{TENANT}/labels", http, pool, sender)


@pytest_asyncio.fixture(loop_scope="module")
async def store(shared_store) -> Store:
    await shared_store.pool.execute("TRUNCATE provider_webhooks, dispatches, dispatch_activity, outbox CASCADE")
    return shared_store


def exported(response: httpx.Response) -> tuple[str, list[tuple[str, str]]]:
    """The page's `pages` and each order's (OrderNumber, OrderStatus)."""
    root = ElementTree.fromstring(response.content)
    return root.get("pages") or "", [(o.findtext("OrderNumber", ""), o.findtext("OrderStatus", "")) for o in root]


def notice(number: str) -> bytes:
    return vendor_bytes("shipstation", "shipnotice.xml").replace(
        b"<OrderNumber>1001<", f"<OrderNumber>{number}<".encode()
    )


# ---- holding ----------------------------------------------------------------------------------


async def test_a_custom_store_routes_orders_wait_for_the_fetch_and_an_unknown_mode_is_a_clear_error(store):
    await hold(store, "1001")
    await hold(store, "1002", route="odd")
    statuses = await store.statuses()
    assert statuses["1001"] == ("awaiting_pull", "")
    assert statuses["1002"] == ("retry_wait", "INVALID_ROUTE_OPTION")
    reason = await store.pool.fetchval("SELECT reason FROM dispatches WHERE order_id = 'ord-1002'")
    assert "carrier-pigeon" in reason and "push, custom_store" in reason
    await hold(store, "1003", route="vino", account="wine", provider="vinoshipper")
    assert (await store.statuses())["1003"] == ("retry_wait", "INVALID_ROUTE_OPTION")
    reason = await store.pool.fetchval("SELECT reason FROM dispatches WHERE order_id = 'ord-1003'")
    assert reason == "route 'vino' is in custom_store mode, but Vinoshipper does not fetch orders; use push"
    assert await store.dispatched() == []  # held is not sent: nothing announced yet
    activity = await store.pool.fetchval(
        "SELECT message FROM dispatch_activity WHERE order_id = 'ord-1001' AND kind = 'awaiting_pull'"
    )
    assert activity == "held for ShipStation to fetch (route 'pull' is in custom_store mode)"


# ---- export: 200 ------------------------------------------------------------------------------


async def test_the_export_pages_through_the_window_and_marks_each_order_sent_once(store):
    await hold(store, "1001", "1002", "1003")
    first, second = await store.export(1), await store.export(2)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["Content-Type"].startswith("application/xml")
    assert exported(first) == ("2", [("1001", "Fully Picked"), ("1002", "Fully Picked")])
    assert exported(second) == ("2", [("1003", "Fully Picked")])
    assert {s for s, _ in (await store.statuses()).values()} == {"sent"}
    assert await store.dispatched() == ["1001", "1002", "1003"]
    # ShipStation pulls the same window again: the same pages, nothing announced twice.
    again = await store.export(1)
    assert exported(again) == exported(first)
    assert await store.dispatched() == ["1001", "1002", "1003"]
    due = await store.pool.fetchval("SELECT count(*) FROM dispatches WHERE next_check_at > now()")
    assert due == 3  # read back later, like a pushed order, in case no ShipNotice comes


async def test_the_export_holds_only_the_accounts_orders_that_changed_in_the_window(store):
    await hold(store, "1001", "1002")
    await hold(store, "2001", account="other")
    await store.pool.execute(
        "UPDATE dispatches SET export_modified_at = '2024-05-01T10:00:00Z' WHERE order_id = 'ord-1002'"
    )
    narrow = await store.export(start_date="05/01/2024 09:00", end_date="05/01/2024 10:00")
    assert exported(narrow) == ("1", [("1002", "Fully Picked")])  # the end minute is included
    assert (await store.statuses())["1001"] == ("awaiting_pull", "")
    empty = await store.export(start_date="05/01/2024 10:01", end_date="05/01/2024 11:00")
    assert exported(empty) == ("1", [])


async def test_shipped_and_voided_orders_are_exported_with_their_state(store):
    await hold(store, "1001", "1002", "1003")
    await store.pool.execute(
        "UPDATE dispatches SET status = 'sent', shipment_status = 'shipped' WHERE order_id = 'ord-1002'"
    )
    await store.pool.execute("UPDATE dispatches SET status = 'voided' WHERE order_id = 'ord-1003'")
    pages = [exported(await store.export(page)) for page in (1, 2)]
    assert pages == [("2", [("1001", "Fully Picked"), ("1002", "Dispatched")]), ("2", [("1003", "Cancelled")])]
    assert await store.dispatched() == ["1001"]  # only the held one became sent


# ---- shipnotify: 200 --------------------------------------------------------------------------


async def test_a_shipnotice_ships_the_order_once_and_an_unknown_order_is_kept(store):
    await hold(store, "1001")
    await store.export()
    answers = [
        await store.shipnotify(notice("1001"), order_number="1001", carrier="USPS", tracking_number="9400"),
        await store.shipnotify(notice("1001"), order_number="1001"),
        await store.shipnotify(notice("9999")),
    ]
    assert [(a.status_code, a.json()["status"]) for a in answers] == [
        (200, "applied"),
        (200, "unchanged"),
        (200, "unknown_order"),
    ]
    row = await store.pool.fetchrow("SELECT status, shipment_status FROM dispatches WHERE order_id = 'ord-1001'")
    assert (row["status"], row["shipment_status"]) == ("sent", "shipped")
    kept = await store.pool.fetch("SELECT outcome, detail FROM provider_webhooks ORDER BY id")
    assert [(k["outcome"], k["detail"]) for k in kept] == [
        ("applied", "shipnotify"),
        ("unchanged", "shipnotify"),
        ("unknown_order", "shipnotify"),
    ]
    assert exported(await store.export()) == ("1", [("1001", "Dispatched")])


# ---- refusals: 401, 404, 400, 413, 503 --------------------------------------------------------


async def test_calls_without_the_accounts_credentials_are_401_with_a_basic_challenge(store):
    await hold(store, "1001")
    wrong = "Basic " + base64.b64encode(f"{USER}:nope".encode()).decode()
    answers = [
        await store.export(auth=""),
        await store.export(auth=wrong),
        await store.shipnotify(notice("1001"), auth=wrong),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert all(a.headers["WWW-Authenticate"].startswith("Basic ") for a in answers)
    assert answers[0].json()["error"] == "UNAUTHORIZED"
    assert (await store.statuses())["1001"] == ("awaiting_pull", "")  # nothing exported
    # The other account's store has credentials of its own (the same here): its URL, its orders.
    other = await store.export(url=store.url.replace("/labels", "/other"))
    assert exported(other) == ("1", [])


@pytest.mark.parametrize(
    "path",
    [
        "/stores/shipstation/nobody/labels",  # unknown tenant
        "/stores/shipstation/empty/labels",  # a tenant without the account
        "/stores/shipstation/acme/nothing",  # unknown account
        "/stores/vinoshipper/acme/labels",  # a provider that does not pull
        "/stores/nope/acme/labels",  # no such connector
    ],
)
async def test_unknown_stores_are_404(store, path):
    response = await store.export(url=store.url.split("/stores/")[0] + path)
    assert response.status_code == 404 and response.json()["error"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "query",
    [
        {"start_date": ""},
        {"start_date": "2024-05-01T10:00:00Z"},
        {"end_date": "13/40/2024 10:00"},
        {"start_date": "05/02/2024 10:00", "end_date": "05/01/2024 10:00"},
        {"page": "0"},
        {"page": "two"},
        {"page": "2"},  # past the last page
        {"action": "shipnotify"},  # a GET exports
        {"action": ""},
    ],
)
async def test_malformed_exports_are_400(store, query):
    response = await store.export(**query)
    assert response.status_code == 400 and response.json()["error"] == "INVALID_REQUEST", response.text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<ShipNotice>",
        b"<Orders/>",
        b'<?xml version="1.0"?><!DOCTYPE ShipNotice [<!ENTITY x "1001">]><ShipNotice><OrderNumber>&x;</OrderNumber></ShipNotice>',
        b"<ShipNotice><OrderNumber>1001</OrderNumber><Items><Item><Quantity>-1</Quantity></Item></Items></ShipNotice>",
    ],
)
async def test_malformed_shipnotices_are_400_and_kept(store, body):
    response = await store.shipnotify(body, order_number="1001")
    assert response.status_code == 400 and response.json()["error"] == "MALFORMED_WEBHOOK"
    kept = await store.pool.fetchrow("SELECT id, outcome, body FROM provider_webhooks")
    assert (kept["id"], kept["outcome"], kept["body"]) == (response.json()["receipt_id"], "malformed", body)


async def test_a_shipnotice_for_another_order_than_the_url_names_is_400(store):
    await hold(store, "1001")
    response = await store.shipnotify(notice("1001"), order_number="1002")
    assert response.status_code == 400 and "differs" in response.json()["message"]
    assert (await store.statuses())["1001"] == ("awaiting_pull", "")


async def test_an_oversized_shipnotice_is_413_and_its_head_kept(store):
    response = await store.shipnotify(b"<" + b"x" * MAX_BODY_BYTES + b">")
    assert response.status_code == 413 and response.json()["error"] == "PAYLOAD_TOO_LARGE"
    kept = await store.pool.fetchrow("SELECT outcome, length(body) AS size FROM provider_webhooks")
    assert (kept["outcome"], kept["size"]) == ("too_large", MAX_BODY_BYTES)


async def test_the_store_answers_503_while_the_database_is_down_and_the_retry_then_succeeds(store, infra):
    await hold(store, "1001")
    async with unreachable(infra.pg_dsn, await store.pool.fetchval("SELECT current_database()")):
        answers = [await store.export(), await store.shipnotify(notice("1001"))]
    assert [a.status_code for a in answers] == [503, 503]
    assert all(a.json()["error"] == "TEMPORARILY_UNAVAILABLE" for a in answers)
    retried = await store.export()
    assert retried.status_code == 200 and exported(retried) == ("1", [("1001", "Fully Picked")])


async def test_other_methods_are_405_in_json(store):
    response = await store.http.put(store.url, headers={"Authorization": AUTH})
    assert response.status_code == 405 and response.json()["error"] == "METHOD_NOT_ALLOWED"
