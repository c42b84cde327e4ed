"""Tests of the Mintsoft simulator against the vendor facts it follows, and of the connector on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.contract import CatalogProduct, ClientResources, PushRequest, Submitted
from libs.connectors.base.errors import UnknownProduct
from libs.connectors.mintsoft.client import MintsoftClient
from libs.connectors.mintsoft.connector import CONNECTOR, MintsoftAccount
from libs.connectors.mintsoft.settings import MintsoftSettings
from libs.connectors.mintsoft.tests.builders import submission
from tests.simulators.common import SimulatorServer
from tests.simulators.mintsoft import STATE_KEY, MintsoftConfig, create_app
from tests.simulators.mintsoft.app import MsOrder
from tests.simulators.tests.conftest import FAST_WEBHOOKS, Receiver, eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(15), pytest.mark.filterwarnings("error")]

USER = {"username": "ms-user", "password": "ms-pass", "client_id": 12, "products": ["WH-RED-750", "WH-GLASS", "WH-BOX"]}


async def run_ms(**overrides: Any) -> SimulatorServer:
    config = MintsoftConfig(**({"users": [dict(USER)]} | FAST_WEBHOOKS | overrides))
    return await SimulatorServer(create_app(config)).start()


@pytest_asyncio.fixture
async def ms() -> AsyncIterator[SimulatorServer]:
    server = await run_ms()
    yield server
    await server.stop()


async def key(http: httpx.AsyncClient, ms: SimulatorServer, password: str = "ms-pass") -> httpx.Response:
    return await http.post(f"{ms.base_url}/api/Auth", json={"Username": "ms-user", "Password": password})


async def api(http: httpx.AsyncClient, ms: SimulatorServer) -> httpx.AsyncClient:
    answer = await key(http, ms)
    return httpx.AsyncClient(base_url=f"{ms.base_url}/api/", headers={"ms-apikey": answer.json()}, trust_env=False)


def order_body(**overrides: Any) -> dict[str, Any]:
    return {
        "OrderNumber": "GR-1001",
        "ExternalOrderReference": "ref-1001",
        "FirstName": "Jane",
        "LastName": "Doe",
        "Address1": "10 High Street",
        "Town": "Leeds",
        "PostCode": "LS1 4AP",
        "Country": "GB",
        "CourierService": "AUTO",
        "OrderNameValues": [{"Name": "ci_lineitem_ids", "Value": '{"54553918":2}'}],
        "OrderItems": [{"SKU": "WH-RED-750", "Quantity": 2, "Details": "54553918"}],
    } | overrides


def connector_account(ms: SimulatorServer, receiver: Receiver | None = None, **changes: Any) -> MintsoftAccount:
    values: dict[str, Any] = {
        # A fast pace: these tests time key expiry, not our politeness.
        "api": MintsoftSettings("ms-user", "ms-pass", base_url=f"{ms.base_url}/api/", requests_per_minute=6000),
        "order_number_prefix": "GR-",
        "callback_base_url": receiver.url if receiver else "",
        "callback_token": "tok-1" if receiver else "",
    }
    return MintsoftAccount(**(values | changes))


async def test_auth_answers_a_bare_string_key_and_refuses_bad_credentials(http, ms):
    answer = await key(http, ms)
    assert answer.status_code == 200 and isinstance(answer.json(), str) and answer.json()
    refused = await key(http, ms, password="wrong")
    assert refused.status_code == 401 and "ms-pass" not in refused.text
    no_key = await http.get(f"{ms.base_url}/api/Order/Statuses")
    assert no_key.status_code == 401


async def test_keys_expire_after_the_ttl_and_the_api_key_query_parameter_works(http):
    server = await run_ms(key_ttl_s=0.3)
    try:
        api_key = (await key(http, server)).json()
        fresh = await http.get(f"{server.base_url}/api/Order/Statuses", params={"APIKey": api_key})
        assert fresh.status_code == 200
        await asyncio.sleep(0.35)
        expired = await http.get(f"{server.base_url}/api/Order/Statuses", headers={"ms-apikey": api_key})
        assert expired.status_code == 401
        assert server.app[STATE_KEY].stats.expired_key_refusals == 1
    finally:
        await server.stop()


async def test_create_answers_rows_and_refuses_duplicates_unknown_skus_and_missing_country(http, ms):
    async with await api(http, ms) as client:
        created = await client.put("Order", json=order_body())
        [row] = created.json()
        assert created.status_code == 200 and row["Success"] is True and row["OrderId"] > 0
        for body, words in [
            (order_body(), "OrderNumber GR-1001 already exists"),
            (order_body(OrderNumber="GR-2"), "ExternalOrderReference ref-1001 already exists"),
            (order_body(OrderNumber="GR-3", ExternalOrderReference="r3", Country=None), "Country is required"),
            (order_body(OrderNumber="GR-4", ExternalOrderReference="r4", OrderItems=[]), "no OrderItems"),
            (
                order_body(
                    OrderNumber="GR-5", ExternalOrderReference="r5", OrderItems=[{"SKU": "NOPE", "Quantity": 1}]
                ),
                "SKU 'NOPE' was not found",
            ),
        ]:
            refused = await client.put("Order", json=body)
            [row] = refused.json()
            assert refused.status_code == 200 and row["Success"] is False and words in row["Message"], words
        typo = await client.put("Order", json=order_body(OrderNumber="GR-6", Countryy="GB"))
        assert typo.status_code == 400
    stats = ms.app[STATE_KEY].stats
    assert (stats.orders_created, stats.duplicate_refusals, stats.unknown_sku_refusals) == (1, 2, 1)


async def test_orders_are_read_searched_listed_with_filters_and_pages(http, ms):
    async with await api(http, ms) as client:
        for n in range(5):
            await client.put("Order", json=order_body(OrderNumber=f"GR-{n}", ExternalOrderReference=f"r{n}"))
        [found] = (await client.get("Order/Search", params={"OrderNumber": "GR-3"})).json()
        order = (await client.get(f"Order/{found['ID']}")).json()
        assert order["OrderNumber"] == "GR-3" and order["OrderStatusId"] == 1 and order["OrderItems"][0]["SKU"]
        assert order["OrderNameValues"] == [{"Name": "ci_lineitem_ids", "Value": '{"54553918":2}'}]
        first = (await client.get("Order/List", params={"PageNo": 1, "Limit": 2, "IncludeOrderItems": "true"})).json()
        third = (await client.get("Order/List", params={"PageNo": 3, "Limit": 2})).json()
        assert [o["OrderNumber"] for o in first] == ["GR-0", "GR-1"] and "OrderItems" in first[0]
        assert [o["OrderNumber"] for o in third] == ["GR-4"] and "OrderItems" not in third[0]
        later = (await client.get("Order/List", params={"SinceLastUpdated": "2999-01-01T00:00:00"})).json()
        despatched = (await client.get("Order/List", params={"OrderStatusId": 4})).json()
        assert later == [] and despatched == []
        assert (await client.get("Order/999999")).status_code == 404


async def test_despatch_and_cancel_post_the_order_to_its_connect_action_urls(http, ms, receiver):
    async with await api(http, ms) as client:
        [a] = (await client.put("Order", json=order_body())).json()
        [b] = (await client.put("Order", json=order_body(OrderNumber="GR-2", ExternalOrderReference="r2"))).json()
        for row in (a, b):
            action = {
                "Type": "API",
                "SourceOrderId": "src",
                "Complete": False,
                "ExtraCode1": f"{receiver.url}/despatched",
                "ExtraCode2": f"{receiver.url}/cancelled",
            }
            saved = await client.put(f"Order/{row['OrderId']}/ConnectActions", json=action)
            assert saved.json()["Success"] is True
        despatched = await http.post(
            f"{ms.base_url}/_sim/orders/{a['OrderId']}/despatch",
            json={"TrackingNumber": "RM1GB", "CourierServiceName": "DPD Next Day", "wait": True},
        )
        assert despatched.json()["delivery"]["state"] == "delivered"
        cancelled = (await client.get(f"Order/{b['OrderId']}/Cancel")).json()
        assert cancelled["Success"] is True
        await eventually(lambda: len(receiver.requests) == 2)
        refused = (await client.get(f"Order/{a['OrderId']}/Cancel")).json()
        assert refused["Success"] is False and "despatched" in refused["Message"]
    by_path = {r.path: json.loads(r.body) for r in receiver.requests}
    sent = by_path["/hooks/despatched"]
    assert (sent["ID"], sent["OrderStatusId"], sent["TrackingNumber"]) == (a["OrderId"], 4, "RM1GB")
    assert sent["CourierServiceName"] == "DPD Next Day" and sent["DespatchDate"]
    assert by_path["/hooks/cancelled"]["OrderStatusId"] == 5


async def test_reference_data_products_and_faults(http, ms):
    async with await api(http, ms) as client:
        services = (await client.get("Courier/Services")).json()
        assert [s["Name"] for s in services] == ["Royal Mail Tracked 48", "DPD Next Day"]
        assert (await client.get("Warehouse")).json()[0]["ID"] == 3
        assert {s["ID"]: s["Name"] for s in (await client.get("Order/Statuses")).json()}[4] == "DESPATCHED"
        created = (await client.put("Product", json={"SKU": "NEW-1", "Name": "New", "Weight": 0})).json()
        again = (await client.put("Product", json={"SKU": "NEW-1", "Name": "New", "Weight": 0})).json()
        assert created["Success"] is True and again["Success"] is False and "already exists" in again["Message"]
        page = (await client.get("Product/List", params={"PageNo": 1, "Limit": 3})).json()
        assert [p["SKU"] for p in page] == ["WH-RED-750", "WH-GLASS", "WH-BOX"]
        await http.post(f"{ms.base_url}/_sim/faults", json={"route": "create", "status": 503, "after_create": True})
        failed = await client.put("Order", json=order_body())
        assert failed.status_code == 503
        assert len((await client.get("Order/Search", params={"OrderNumber": "GR-1001"})).json()) == 1
    stats = (await http.get(f"{ms.base_url}/_sim/stats")).json()
    assert stats["requests"]["auth"] == 1 and stats["requests"]["create"] == 1 and stats["faults_served"] == 1


# --- the connector against the simulator ------------------------------------------------------


async def test_the_connector_submits_registers_callbacks_and_believes_the_despatch_after_re_reading(http, ms, receiver):
    settings = connector_account(ms, receiver)
    async with CONNECTOR.open_client(settings, _resources()) as client:
        [result] = await CONNECTOR.submit(client, settings, [submission()])
        assert isinstance(result, Submitted) and "callbacks registered" in result.activity
        [again] = await CONNECTOR.submit(client, settings, [submission()])
        assert isinstance(again, Submitted) and "already in Mintsoft" in again.activity
        [order] = (await http.get(f"{ms.base_url}/_sim/orders")).json()["orders"]
        assert order["ConnectActions"][0]["ExtraCode1"] == f"{receiver.url}/webhooks/mintsoft/tenant-a/tok-1"
        await http.post(
            f"{ms.base_url}/_sim/orders/{order['ID']}/despatch",
            json={"TrackingNumber": "RM9GB", "CourierServiceName": "Royal Mail Tracked 48", "wait": True},
        )
        [callback] = receiver.requests
        assert CONNECTOR.authenticate_notice(settings, PushRequest({}, callback.path.rsplit("/", 1)[-1]))
        [notice] = await CONNECTOR.resolve_notice(client, settings, CONNECTOR.parse_notice(callback.body))
    shipment = notice.shipment
    assert shipment is not None and shipment.status == shipment_pb2.SHIPMENT_STATUS_SHIPPED
    assert list(shipment.tracking_numbers) == ["RM9GB"] and shipment.service_code == "Royal Mail Tracked 48"
    assert [(i.channel_line_id, i.quantity) for i in shipment.items] == [("54553918", 2), ("54553919", 1)]
    assert ms.app[STATE_KEY].stats.orders_created == 1


async def test_the_connector_renews_an_expired_key_without_failing_a_call(http):
    server = await run_ms(key_ttl_s=0.5)
    try:
        settings = connector_account(server)
        async with CONNECTOR.open_client(settings, _resources()) as client:
            assert await CONNECTOR.read_back(client, settings, "GR-404") is None
            await asyncio.sleep(0.55)
            assert await CONNECTOR.read_back(client, settings, "GR-404") is None
            assert isinstance(client, MintsoftClient) and client.authentications == 2
        stats = server.app[STATE_KEY].stats
        assert stats.keys_issued == 2 and stats.expired_key_refusals == 1
    finally:
        await server.stop()


async def test_the_connector_names_an_unknown_sku_and_syncs_products(http, ms):
    settings = connector_account(ms)
    async with CONNECTOR.open_client(settings, _resources()) as client:
        [result] = await CONNECTOR.submit(client, settings, [submission(items=())])
        assert isinstance(result, UnknownProduct) and "GRP-RED" in result.message
        assert await CONNECTOR.create_product(client, settings, CatalogProduct("GRP-RED", "Red")) is True
        assert await CONNECTOR.create_product(client, settings, CatalogProduct("GRP-RED", "Red")) is False
        assert "GRP-RED" in {p.sku for p in await CONNECTOR.list_products(client, settings)}


async def test_the_connector_polls_despatches_and_cancellations_it_missed(http, ms):
    settings = connector_account(ms)
    async with CONNECTOR.open_client(settings, _resources()) as client:
        for number in ("1", "2", "3"):
            order = submission().order
            order.external_number = number
            await CONNECTOR.submit(
                client, settings, [submission(order=order, order_number=f"GR-{number}", idempotency_key=number)]
            )
        ids = {o["OrderNumber"]: o["ID"] for o in (await http.get(f"{ms.base_url}/_sim/orders")).json()["orders"]}
        await http.post(f"{ms.base_url}/_sim/orders/{ids['GR-1']}/despatch", json={})
        await CONNECTOR.cancel(client, settings, "GR-2", "customer asked")
        page = await CONNECTOR.read_back_since(client, settings, "")
    states = {n.order_number: n.shipment.status for n in page.notices if n.shipment is not None}
    assert states == {"GR-1": shipment_pb2.SHIPMENT_STATUS_SHIPPED, "GR-2": shipment_pb2.SHIPMENT_STATUS_CANCELLED}
    assert not page.more and page.next_cursor.split("|")[0]


def _resources() -> ClientResources:
    return ClientResources()


async def test_polling_sees_every_despatch_when_hundreds_of_orders_share_one_second(http, ms):
    state = ms.app[STATE_KEY]
    second = 1_714_660_269.0
    despatched = set()
    for n in range(400):
        # 250 orders updated in one second (more than two pages of ties), then 150 a second apart.
        updated = second if n < 250 else second + (n - 249)
        order = MsOrder(
            id=50_000 + n,
            client_id=12,
            submitted=order_body(OrderNumber=f"GR-{n}", ExternalOrderReference=f"r{n}"),
            warehouse_id=3,
            status_id=4 if n % 3 == 0 else 1,
            created_at=updated,
            last_updated=updated,
            tracking_number=f"RM{n}GB" if n % 3 == 0 else None,
        )
        state.orders[order.id] = order
        if n % 3 == 0:
            despatched.add(f"GR-{n}")
    settings = connector_account(ms)
    seen: set[str] = set()
    cursor = ""
    async with CONNECTOR.open_client(settings, _resources()) as client:
        for _ in range(20):
            page = await CONNECTOR.read_back_since(client, settings, cursor)
            seen |= {n.order_number for n in page.notices}
            cursor = page.next_cursor
            if not page.more:
                break
        assert not page.more, "polling did not come to an end"
    assert seen == despatched
    assert cursor == "2024-05-02T14:33:39|1|"  # the newest order's second, not before it


async def test_stats_count_each_users_requests_apart(http):
    other = {"username": "ms-other", "password": "other-pass", "client_id": 13, "products": ["WH-RED-750"]}
    server = await run_ms(users=[dict(USER), other])
    try:
        async with await api(http, server) as client:
            await client.put("Order", json=order_body())
            await client.get("Order/Search", params={"OrderNumber": "GR-1001"})
        answer = await http.post(f"{server.base_url}/api/Auth", json={"Username": "ms-other", "Password": "other-pass"})
        await http.get(f"{server.base_url}/api/Order/Statuses", headers={"ms-apikey": answer.json()})
        await key(http, server, password="wrong")  # a refused Auth still names its user
        await http.get(f"{server.base_url}/api/Order/Statuses", headers={"ms-apikey": "unknown"})
        stats = (await http.get(f"{server.base_url}/_sim/stats")).json()
    finally:
        await server.stop()
    assert stats["user_requests"] == {
        "ms-user": {"auth": 2, "create": 1, "search": 1},
        "ms-other": {"auth": 1, "statuses": 1},
    }
    assert stats["user_responses"]["ms-user"] == {"200": 3, "401": 1}
