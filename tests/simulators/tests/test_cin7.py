"""Tests of the Cin7 Omni simulator against the vendor facts it follows, and the connector on it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.contract import ChannelUpdate, ParsedOrder, WritebackStep
from libs.connectors.cin7.client import Cin7Client
from libs.connectors.cin7.connector import Cin7Connector
from libs.connectors.cin7.settings import Cin7Settings
from tests.simulators.cin7 import STATE_KEY, Cin7Config, create_app
from tests.simulators.cin7.entry import SIMULATOR, build_config
from tests.simulators.common import SimulatorServer
from tests.simulators.registry import SimulatedAccount

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error")]

ACCOUNT = {"username": "harbour-api", "api_key": "k3y-value", "stages": ["New", "Fully Picked", "Dispatched"]}
AUTH = (ACCOUNT["username"], ACCOUNT["api_key"])
T1, T2, T3 = "2024-05-02T10:00:00Z", "2024-05-02T11:00:00Z", "2024-05-02T12:00:00Z"
LINE = {"code": "CAB-750", "name": "Estate Cabernet", "qty": 6, "unitPrice": 35.0}


async def run(**overrides: Any) -> SimulatorServer:
    config = Cin7Config(**({"accounts": [dict(ACCOUNT)], "rate_limit_per_minute": 1000} | overrides))
    server = SimulatorServer(create_app(config))
    server.app[STATE_KEY].clock = lambda: T3
    return await server.start()


@pytest_asyncio.fixture
async def cin7() -> AsyncIterator[SimulatorServer]:
    server = await run()
    yield server
    await server.stop()


def order(**fields: Any) -> dict[str, Any]:
    return {
        "stage": "Fully Picked",
        "createdDate": "2024-05-01T09:00:00Z",
        "modifiedDate": T1,
        "deliveryCountry": "US",
        "deliveryAddress1": "200 Embarcadero",
        "deliveryCity": "San Francisco",
        "deliveryState": "CA",
        "deliveryPostalCode": "94111",
        "lineItems": [dict(LINE)],
    } | fields


async def seed(http: httpx.AsyncClient, server: SimulatorServer, *orders: dict[str, Any]) -> list[dict[str, Any]]:
    response = await http.post(f"{server.base_url}/_sim/accounts/harbour-api/orders", json={"orders": list(orders)})
    assert response.status_code == 201
    return response.json()["orders"]


async def listing(http: httpx.AsyncClient, server: SimulatorServer, **params: str) -> httpx.Response:
    return await http.get(f"{server.base_url}/api/v1/SalesOrders", params=params, auth=AUTH)


# ---- the API


@pytest.mark.asyncio
async def test_requests_need_the_connections_basic_credentials(http, cin7):
    for auth in (None, ("harbour-api", "wrong"), ("someone", "k3y-value")):
        response = await http.get(f"{cin7.base_url}/api/v1/SalesOrders", auth=auth)
        assert response.status_code == 401 and "message" in response.json()


@pytest.mark.asyncio
async def test_listing_filters_on_where_sorts_pages_and_trims_fields(http, cin7):
    seeded = await seed(
        http,
        cin7,
        order(modifiedDate=T1),
        order(modifiedDate=T2),
        order(modifiedDate=T2),
        order(stage="New", modifiedDate=T3),
    )
    ids = [o["id"] for o in seeded]
    response = await listing(
        http, cin7, where=f"ModifiedDate>='{T2}' AND Stage='Fully Picked'", order="ModifiedDate ASC", rows="1"
    )
    assert response.status_code == 200 and isinstance(response.json(), list)
    # Ties come by descending id: nothing guarantees a tie order.
    assert [o["id"] for o in response.json()] == [ids[2]]
    second = await listing(http, cin7, where=f"ModifiedDate>='{T2}'", order="ModifiedDate ASC", rows="1", page="2")
    assert [o["id"] for o in second.json()] == [ids[1]]
    walk = await listing(http, cin7, where=f"ModifiedDate='{T2}' AND Id>{ids[1]}", order="Id ASC", fields="id,stage")
    assert walk.json() == [{"id": ids[2], "stage": "Fully Picked"}]
    past = await listing(http, cin7, where=f"ModifiedDate>'{T2}'")
    assert [o["id"] for o in past.json()] == [ids[3]]
    assert (await listing(http, cin7, page="9")).json() == []


@pytest.mark.parametrize(
    "params",
    [
        {"where": "ModifiedDate>'2024-05-01' OR 1=1"},
        {"where": "Colour='red'"},
        {"where": "ModifiedDate>'yesterday'"},
        {"rows": "251"},
        {"rows": "0"},
        {"order": "Id SIDEWAYS"},
    ],
)
@pytest.mark.asyncio
async def test_what_cin7_cannot_read_is_a_400(http, cin7, params):
    response = await listing(http, cin7, **params)
    assert response.status_code == 400 and response.json()["message"]


@pytest.mark.asyncio
async def test_put_answers_a_row_per_order_and_200_even_with_failed_rows(http, cin7):
    [one] = await seed(http, cin7, order())
    rows = [
        {"id": one["id"], "stage": "Dispatched", "trackingCode": "1Z9", "dispatchedDate": T3},
        {"id": 999999, "stage": "Dispatched"},
        {"id": one["id"], "status": "Void"},
        {"id": one["id"], "stage": "Shipped"},
        {"stage": "Dispatched"},
    ]
    response = await http.put(f"{cin7.base_url}/api/v1/SalesOrders", json=rows, auth=AUTH)
    assert response.status_code == 200
    results = response.json()
    assert [(r["index"], r["success"]) for r in results] == [(0, True), (1, False), (2, False), (3, False), (4, False)]
    assert results[2]["errors"] == ["status is read-only"]
    assert "not a stage" in results[3]["errors"][0]
    stored = (await http.get(f"{cin7.base_url}/api/v1/SalesOrders/{one['id']}", auth=AUTH)).json()
    assert stored["stage"] == "Dispatched" and stored["trackingCode"] == "1Z9" and stored["modifiedDate"] == T3
    assert stored["lineItems"][0]["qtyShipped"] == 6  # the dispatched date dispatched the stock
    assert (await http.put(f"{cin7.base_url}/api/v1/SalesOrders", json={"id": 1}, auth=AUTH)).status_code == 400


@pytest.mark.asyncio
async def test_put_takes_freight_as_a_number_and_its_description(http, cin7):
    [one] = await seed(http, cin7, order())
    rows = [
        {"id": one["id"], "freightTotal": 8.08, "freightDescription": "USPS Priority Mail - Package"},
        {"id": one["id"], "freightTotal": "8.08"},
        {"id": one["id"], "freightTotal": -1},
    ]
    results = (await http.put(f"{cin7.base_url}/api/v1/SalesOrders", json=rows, auth=AUTH)).json()
    assert [r["success"] for r in results] == [True, False, False]
    assert results[1]["errors"] == ["freightTotal is not a non-negative number"]
    stored = (await http.get(f"{cin7.base_url}/api/v1/SalesOrders/{one['id']}", auth=AUTH)).json()
    assert (stored["freightTotal"], stored["freightDescription"]) == (8.08, "USPS Priority Mail - Package")


@pytest.mark.asyncio
async def test_the_rate_limit_answers_429_with_retry_after(http):
    server = await run(rate_limit_per_minute=2)
    try:
        statuses = [(await listing(http, server)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        throttled = await listing(http, server)
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
        assert server.app[STATE_KEY].stats.rate_limited == 2
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_faults_are_injected_and_an_after_create_fault_still_applies_the_change(http, cin7):
    [one] = await seed(http, cin7, order())
    fault = {"route": "update", "status": 500, "after_create": True}
    assert (await http.post(f"{cin7.base_url}/_sim/faults", json=fault)).status_code == 201
    rows = [{"id": one["id"], "trackingCode": "1Z9"}]
    assert (await http.put(f"{cin7.base_url}/api/v1/SalesOrders", json=rows, auth=AUTH)).status_code == 500
    stored = (await http.get(f"{cin7.base_url}/_sim/accounts/harbour-api/orders/{one['id']}")).json()
    assert stored["trackingCode"] == "1Z9"
    assert (await http.get(f"{cin7.base_url}/_sim/stats")).json()["faults_served"] == 1


@pytest.mark.asyncio
async def test_control_api_changes_an_order_as_a_user_would_and_adds_accounts(http, cin7):
    [one] = await seed(http, cin7, order(stage="New"))
    changed = await http.post(f"{cin7.base_url}/_sim/accounts/harbour-api/orders/{one['id']}", json={"stage": "X"})
    assert changed.json()["stage"] == "X" and changed.json()["modifiedDate"] == T3
    other = {"username": "other", "api_key": "k2"}
    assert (await http.put(f"{cin7.base_url}/_sim/accounts/other", json=other)).status_code == 200
    response = await http.get(f"{cin7.base_url}/api/v1/SalesOrders", auth=("other", "k2"))
    assert response.json() == []  # a connection sees its own orders only
    assert (await http.post(f"{cin7.base_url}/_sim/accounts/nobody/orders", json={"orders": []})).status_code == 404


# ---- the connector against the simulator


def connector_settings(server: SimulatorServer, **changes: Any) -> Cin7Settings:
    values: dict[str, Any] = {
        "username": ACCOUNT["username"],
        "api_key": ACCOUNT["api_key"],
        "base_url": f"{server.base_url}/api",
        "rate_limit_per_minute": 6000,  # the client paces itself; these tests need no waiting
    }
    return Cin7Settings(**(values | changes))


@pytest.mark.asyncio
async def test_the_connector_pulls_every_order_once_through_equal_timestamps(http, cin7):
    seeded = await seed(
        http, cin7, order(modifiedDate=T1), *[order(modifiedDate=T2) for _ in range(7)], order(stage="New")
    )
    connector = Cin7Connector(clock=lambda: datetime(2024, 5, 10, tzinfo=UTC))
    settings = connector_settings(cin7, page_size=3)
    pulled: list[str] = []
    cursor = ""
    async with Cin7Client(settings) as client:
        for _ in range(20):
            page = await connector.fetch_page(client, settings, cursor, "harbour")
            pulled += [p.order.external_id for p in page.orders]
            cursor = page.next_cursor
            if not page.more:
                break
        again = await connector.fetch_page(client, settings, cursor, "harbour")
    assert sorted(pulled, key=int) == [str(o["id"]) for o in seeded]
    assert again.orders == []
    requests = cin7.app[STATE_KEY].stats.requests["list"]
    assert requests < 20


@pytest.mark.asyncio
async def test_orders_changed_while_paging_are_read_again_and_none_is_skipped(http, cin7):
    seeded = await seed(http, cin7, *[order(modifiedDate=T1) for _ in range(4)], order(modifiedDate=T2))
    connector = Cin7Connector(clock=lambda: datetime(2024, 5, 10, tzinfo=UTC))
    settings = connector_settings(cin7, page_size=2)
    pulled: list[tuple[str, str]] = []
    cursor = ""
    async with Cin7Client(settings) as client:
        for number in range(20):
            page = await connector.fetch_page(client, settings, cursor, "harbour")
            pulled += [(p.order.external_id, p.order.revision) for p in page.orders if isinstance(p, ParsedOrder)]
            cursor = page.next_cursor
            if number == 0:
                # A user edits one order already read and one not read yet (its page shifts).
                for target in (seeded[0], seeded[3]):
                    url = f"{cin7.base_url}/_sim/accounts/harbour-api/orders/{target['id']}"
                    await http.post(url, json={"internalComments": "call first"})
            if not page.more:
                break
    assert {external_id for external_id, _ in pulled} == {str(o["id"]) for o in seeded}
    changed = [r for i, r in pulled if i in (str(seeded[0]["id"]), str(seeded[3]["id"]))]
    assert "2024-05-02T12:00:00.000Z" in changed  # read again with the edit's revision


@pytest.mark.asyncio
async def test_the_connector_dispatches_and_keeps_the_carrier_cin7_has(http, cin7):
    [plain, carried] = await seed(http, cin7, order(), order(logisticsCarrier="Local courier"))
    settings = connector_settings(cin7)
    shipment = shipment_pb2.Shipment(tracking_numbers=["1Z999"], carrier="UPS", service="Ground")
    async with Cin7Client(settings) as client:
        for target in (plain, carried):
            update = ChannelUpdate(str(target["id"]), target["reference"], [WritebackStep.SHIP], shipment)
            assert await Cin7Connector().write_back(client, settings, update) is False
            assert await Cin7Connector().write_back(client, settings, update) is False  # a repeat writes nothing
    state = cin7.app[STATE_KEY]
    first, second = (state.orders_of("harbour-api")[o["id"]] for o in (plain, carried))
    assert (first["stage"], first["trackingCode"], first["logisticsCarrier"]) == ("Dispatched", "1Z999", "UPS Ground")
    assert second["logisticsCarrier"] == "Local courier" and second["trackingCode"] == "1Z999"
    assert state.stats.rows_updated == 2


@pytest.mark.asyncio
async def test_the_connector_rides_out_a_429(http, cin7):
    await http.post(f"{cin7.base_url}/_sim/faults", json={"route": "list", "status": 429})
    settings = connector_settings(cin7)
    async with Cin7Client(settings) as client:
        assert await client.list_sales_orders({"rows": "5"}) == []
    assert cin7.app[STATE_KEY].stats.responses["429"] == 1


@pytest.mark.parametrize("command", [["tests.simulators", "cin7"], ["tests.simulators.cin7"]])
def test_runs_standalone_from_a_config_file(tmp_path, command):
    config_file = tmp_path / "cin7.json"
    config_file.write_text(json.dumps({"accounts": [ACCOUNT]}))
    process = subprocess.Popen(
        [sys.executable, "-m", *command, "--host", "127.0.0.1", "--port", "0", "--config", str(config_file)],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        response = httpx.get(f"{line.removeprefix('listening on ')}/api/v1/SalesOrders", auth=AUTH, trust_env=False)
        assert response.status_code == 200 and response.json() == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_a_fresh_account_is_one_the_connector_takes_and_the_simulator_serves():
    account = SIMULATOR.new_account("stock", "harbour", fully_picked_stage="Ready to Ship")
    section = {"connector": "cin7", **SIMULATOR.file_options(account), "api_key": "env:CIN7_TEST_KEY"}
    settings = Cin7Connector().parse_settings(section, lambda ref, where: account["api_key"], "tenant 'harbour'")
    assert settings.username == account["username"] and settings.fully_picked_stage == "Ready to Ship"
    [connection] = build_config([SimulatedAccount("harbour", account, "", "")])["accounts"]
    assert connection["api_key"] == account["api_key"] and "Ready to Ship" in connection["stages"]
    assert SIMULATOR.base_url("http://cin7-sim:8085") == "http://cin7-sim:8085/api"
