"""Tests of the CommerceInterface simulator against the vendor facts it follows, and the connector on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.contract import ChannelUpdate, ParsedOrder, WritebackStep
from libs.connectors.base.errors import InvalidRequest, Unauthorized, Unavailable
from libs.connectors.groupon import codes
from libs.connectors.groupon.client import GrouponClient
from libs.connectors.groupon.connector import GrouponConnector
from libs.connectors.groupon.errors import TrackingRefused
from libs.connectors.groupon.settings import GrouponSettings
from tests.simulators.common import SimulatorServer
from tests.simulators.groupon import STATE_KEY, GrouponConfig, create_app
from tests.simulators.groupon.app import APPROVED_CARRIERS
from tests.simulators.groupon.entry import SIMULATOR

pytestmark = [pytest.mark.timeout(20), pytest.mark.filterwarnings("error")]

SUPPLIER = {"supplier_id": "48213", "token": "tok-value"}
CREDENTIALS = dict(SUPPLIER)
NOW = datetime(2021, 8, 10, 19, 40, tzinfo=UTC).timestamp()
ORDER_FIELDS = {"orderid", "date", "amount", "fulfillment_method", "supplier", "customer", "shipping", "line_items"}
LINE_FIELDS = {
    "ci_lineitemid",
    "fulfillment_lineitem_id",
    "sku",
    "bom_sku",
    "name",
    "quantity",
    "unit_price",
    "status",
    "ship_by_date",
    "gift_message",
    "po_number",
    "groupon_cost",
}


async def run(**overrides: Any) -> SimulatorServer:
    config = GrouponConfig(**({"suppliers": [dict(SUPPLIER)], "page_size": 2} | overrides))
    server = SimulatorServer(create_app(config))
    server.app[STATE_KEY].clock = lambda: NOW
    return await server.start()


@pytest_asyncio.fixture
async def ci() -> AsyncIterator[SimulatorServer]:
    server = await run()
    yield server
    await server.stop()


async def seed(http: httpx.AsyncClient, server: SimulatorServer, *orders: dict[str, Any]) -> list[dict[str, Any]]:
    response = await http.post(f"{server.base_url}/_sim/suppliers/48213/orders", json={"orders": list(orders)})
    assert response.status_code == 201, response.text
    return response.json()["orders"]


async def listing(http: httpx.AsyncClient, server: SimulatorServer, **params: str) -> dict[str, Any]:
    response = await http.get(f"{server.base_url}/api/v4/get_orders", params=CREDENTIALS | params)
    assert response.status_code == 200
    return response.json()


async def post(http: httpx.AsyncClient, server: SimulatorServer, path: str, **form: Any) -> dict[str, Any]:
    fields = CREDENTIALS | {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()}
    response = await http.post(f"{server.base_url}/api/v4/{path}", data=fields)
    assert response.status_code == 200
    return response.json()


async def sim_state(http: httpx.AsyncClient, server: SimulatorServer) -> dict[str, Any]:
    return (await http.get(f"{server.base_url}/_sim/suppliers/48213/state")).json()


def connector_client(server: SimulatorServer, **changes: Any) -> GrouponClient:
    values = {"supplier_id": "48213", "token": "tok-value", "base_url": SIMULATOR.base_url(server.base_url)}
    return GrouponClient(GrouponSettings(**(values | changes)))


def line_ids(order: dict[str, Any]) -> list[int]:
    return [line["ci_lineitemid"] for line in order["line_items"]]


# ---- the API


@pytest.mark.asyncio
async def test_a_wrong_supplier_id_or_token_is_a_200_refusal_with_a_reason(http, ci):
    for credentials in ({}, {"supplier_id": "48213", "token": "wrong"}, {"supplier_id": "1", "token": "tok-value"}):
        response = await http.get(f"{ci.base_url}/api/v4/get_orders", params=credentials)
        assert response.status_code == 200
        assert response.json() == {"success": False, "reason": "Invalid supplier_id or token"}
    response = await http.post(f"{ci.base_url}/api/v4/mark_exported", data={"supplier_id": "48213", "token": "x"})
    assert response.json()["success"] is False


@pytest.mark.asyncio
async def test_pages_hold_at_most_page_size_line_items_and_an_order_splits_across_them(http, ci):
    (big,) = await seed(http, ci, {"lines": 5})
    (small,) = await seed(http, ci, {"lines": 1})
    first = await listing(http, ci)
    assert first["success"] is True
    assert first["meta"] == {"no_of_pages": 3, "current_page": 1, "max_items_per_page": 2, "no_of_items": 6}
    (entry,) = first["data"]
    assert set(entry) == ORDER_FIELDS and set(entry["line_items"][0]) == LINE_FIELDS
    assert set(entry["customer"]) == {"name", "address1", "address2", "city", "state", "zip", "country", "phone"}
    assert set(entry["amount"]) == {"total", "shipping"} and set(entry["shipping"]) == {"carrier", "method"}
    assert entry["date"] == "08/10/2021 07:40PM UTC"
    third = await listing(http, ci, page="3")
    assert [(e["orderid"], line_ids(e)) for e in third["data"]] == [
        (big["orderid"], line_ids(big)[4:]),
        (small["orderid"], line_ids(small)),
    ]
    assert (await listing(http, ci, page="4"))["data"] == []


@pytest.mark.asyncio
async def test_the_date_filters_take_24_hour_time(http, ci):
    await seed(http, ci, {"date": "08/09/2021 11:00PM UTC"}, {"date": "08/10/2021 12:30AM UTC"})
    answer = await listing(http, ci, start_datetime="08/10/2021 00:00", end_datetime="08/10/2021 23:59")
    assert [e["date"] for e in answer["data"]] == ["08/10/2021 12:30AM UTC"]
    assert (await listing(http, ci, start_datetime="08/10/2021 7:40PM"))["success"] is False


@pytest.mark.asyncio
async def test_marked_lines_leave_the_listing_and_unknown_ids_refuse_the_whole_call(http, ci):
    (order,) = await seed(http, ci, {"lines": 3})
    ids = line_ids(order)
    refused = await post(http, ci, "mark_exported", ci_lineitem_ids=[ids[0], 99])
    assert refused["success"] is False and "99" in refused["reason"]
    assert (await listing(http, ci))["meta"]["no_of_items"] == 3
    assert await post(http, ci, "mark_exported", ci_lineitem_ids=[ids[0], str(ids[1])]) == {"success": True}
    assert await post(http, ci, "mark_exported", ci_lineitem_ids=[ids[0]]) == {"success": True}  # again: no change
    remaining = await listing(http, ci)
    assert remaining["meta"]["no_of_items"] == 1 and line_ids(remaining["data"][0]) == [ids[2]]
    state = await sim_state(http, ci)
    assert [line["exported"] for line in state["lines"]] == [True, True, False]
    assert [(e["call"], e["success"], e["at"]) for e in state["log"]] == [("mark_exported", False, NOW)] + [
        ("mark_exported", True, NOW)
    ] * 2


@pytest.mark.asyncio
async def test_tracking_is_checked_against_the_approved_list_and_kept_once(http, ci):
    (order,) = await seed(http, ci, {"line_items": [{"quantity": 2}]})
    (line_id,) = line_ids(order)
    entry = {"carrier": "rym", "ci_lineitem_id": line_id, "tracking": "RM1", "quantity": 2}
    for wrong, words in (
        ({"carrier": "Royal Mail"}, "approved carrier"),
        ({"carrier": "Rym"}, "approved carrier"),
        ({"tracking": " "}, "tracking is empty"),
        ({"ci_lineitem_id": 1}, "unknown ci_lineitem_id"),
        ({"quantity": 3}, "quantity"),
    ):
        answer = await post(http, ci, "tracking_notification", tracking_info=[entry | wrong])
        assert answer["success"] is False and words in answer["reason"], wrong
    assert await post(http, ci, "tracking_notification", tracking_info=[entry]) == {"success": True}
    again = await post(http, ci, "tracking_notification", tracking_info=[entry])
    assert again["success"] is False and "already uploaded" in again["reason"]
    changed = await post(http, ci, "tracking_notification", tracking_info=[entry | {"tracking": "RM2"}])
    assert changed["success"] is False and "cannot be changed" in changed["reason"]
    assert "already uploaded" not in changed["reason"]
    state = await sim_state(http, ci)
    assert state["tracking"][str(line_id)] == {"carrier": "rym", "tracking": "RM1", "quantity": 2, "at": NOW}


@pytest.mark.asyncio
async def test_line_level_tracking_ships_a_line_in_parcels_up_to_its_quantity(http, ci):
    (order,) = await seed(http, ci, {"line_items": [{"quantity": 3, "fulfillment_lineitem_id": "fl-77"}]})
    (line_id,) = line_ids(order)
    first = {"carrier": "DPDUK", "fulfillment_lineitem_id": "fl-77", "tracking": "DPD1", "quantity": 2}
    second = first | {"tracking": "DPD2", "quantity": 1}

    assert await post(http, ci, "lineitem_tracking_notification", tracking_info=[first]) == {"success": True}
    again = await post(http, ci, "lineitem_tracking_notification", tracking_info=[first])
    too_many = await post(http, ci, "lineitem_tracking_notification", tracking_info=[second | {"quantity": 2}])
    unknown = await post(
        http, ci, "lineitem_tracking_notification", tracking_info=[first | {"fulfillment_lineitem_id": "x"}]
    )
    assert await post(http, ci, "lineitem_tracking_notification", tracking_info=[second]) == {"success": True}

    assert again["success"] is False and "already uploaded" in again["reason"]
    assert too_many["success"] is False and "exceeds the 1 left" in too_many["reason"]
    assert unknown["success"] is False and "unknown fulfillment_lineitem_id" in unknown["reason"]
    [line] = [x for x in (await sim_state(http, ci))["lines"] if x["ci_lineitemid"] == line_id]
    assert [(p["tracking"], p["quantity"]) for p in line["parcels"]] == [("DPD1", 2), ("DPD2", 1)]


@pytest.mark.asyncio
async def test_injected_faults_and_refusals_answer_the_next_calls(http, ci):
    await http.post(f"{ci.base_url}/_sim/faults", json={"route": "get_orders", "status": 503})
    await http.post(f"{ci.base_url}/_sim/refusals", json={"route": "get_orders", "reason": "Maintenance"})
    response = await http.get(f"{ci.base_url}/api/v4/get_orders", params=CREDENTIALS)
    assert response.status_code == 503
    assert await listing(http, ci) == {"success": False, "reason": "Maintenance"}
    assert (await listing(http, ci))["success"] is True
    bad = await http.post(f"{ci.base_url}/_sim/refusals", json={"route": "nowhere", "reason": "x"})
    assert bad.status_code == 400


@pytest.mark.asyncio
async def test_the_rate_limit_answers_429_with_retry_after(http):
    server = await run(rate_limit_per_minute=1)
    try:
        await listing(http, server)
        response = await http.get(f"{server.base_url}/api/v4/get_orders", params=CREDENTIALS)
        assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    finally:
        await server.stop()


def test_the_simulators_approved_list_is_the_connectors():
    assert {(code, alias) for code, alias in APPROVED_CARRIERS.items()} == {
        (code, alias) for code, alias, _ in codes.APPROVED_CARRIERS
    }


# ---- the connector on it


@pytest.mark.asyncio
async def test_the_connector_builds_an_order_split_across_three_pages_whole_and_marks_it_exported(http, ci):
    await seed(http, ci, {"orderid": "A", "lines": 1}, {"orderid": "B", "lines": 4}, {"orderid": "C", "lines": 1})
    connector, settings = GrouponConnector(), GrouponSettings("48213", "tok-value", mark_exported=True)
    async with connector_client(ci, mark_exported=True) as client:
        page = await connector.fetch_page(client, settings, "", "harbour")
        orders = {p.order.external_id: p for p in page.orders if isinstance(p, ParsedOrder)}
        assert list(orders) == ["A", "B", "C"] and len(orders["B"].order.lines) == 4
        assert all(not p.issues for p in orders.values())
        await connector.acknowledge(client, settings, [orders["B"]])
        await connector.acknowledge(client, settings, [orders["B"]])  # a repeat is harmless
        again = await connector.fetch_page(client, settings, "", "harbour")
    assert [p.order.external_id for p in again.orders] == ["A", "C"]


@pytest.mark.asyncio
async def test_the_connector_uploads_tracking_and_a_repeat_is_done(http, ci):
    (order,) = await seed(http, ci, {"orderid": "A", "line_items": [{"quantity": 2}, {}]})
    items = [shipment_pb2.ShipmentItem(channel_line_id=str(i), quantity=1) for i in line_ids(order)]
    shipment = shipment_pb2.Shipment(tracking_numbers=["1Z999"], items=items)
    update = ChannelUpdate("A", "A", (WritebackStep.SHIP,), shipment, "ups")
    connector, settings = GrouponConnector(), GrouponSettings("48213", "tok-value")
    async with connector_client(ci) as client:
        assert await connector.write_back(client, settings, update) is True
        assert await connector.write_back(client, settings, update) is True
        other = ChannelUpdate(
            "A", "A", (WritebackStep.SHIP,), shipment_pb2.Shipment(tracking_numbers=["X"], items=items), "UPS"
        )
        with pytest.raises(TrackingRefused):
            await connector.write_back(client, settings, other)
    state = await sim_state(http, ci)
    assert {v["carrier"] for v in state["tracking"].values()} == {"UPS"}
    assert [e["success"] for e in state["log"]] == [True, False, False]


@pytest.mark.asyncio
async def test_the_connector_hears_refusals_and_server_errors_as_such(http, ci):
    connector, settings = GrouponConnector(), GrouponSettings("48213", "wrong")
    async with connector_client(ci, token="wrong") as client:
        with pytest.raises(Unauthorized):
            await connector.fetch_page(client, settings, "", "harbour")
    await http.post(f"{ci.base_url}/_sim/faults", json={"route": "get_orders", "status": 500, "count": 4})
    async with connector_client(ci) as client:
        with pytest.raises(Unavailable):
            await connector.fetch_page(client, GrouponSettings("48213", "tok-value"), "", "harbour")
        await http.post(f"{ci.base_url}/_sim/refusals", json={"route": "mark_exported", "reason": "Try later"})
        with pytest.raises(InvalidRequest):
            await client.mark_exported([1])


@pytest.mark.asyncio
async def test_a_slow_answer_times_the_connector_out_and_the_listing_is_asked_again(http, ci):
    await seed(http, ci, {"orderid": "A", "lines": 1})
    await http.post(f"{ci.base_url}/_sim/faults", json={"route": "get_orders", "delay_s": 1.0})
    async with connector_client(ci, timeout_s=0.2) as client:
        page = await GrouponConnector().fetch_page(client, GrouponSettings("48213", "tok-value"), "", "harbour")
    assert [p.order.external_id for p in page.orders] == ["A"]
    assert (await http.get(f"{ci.base_url}/_sim/stats")).json()["requests"]["get_orders"] == 2


@pytest.mark.asyncio
async def test_stats_count_each_suppliers_requests_and_429s_apart(http):
    other = {"supplier_id": "77001", "token": "other-token"}
    server = await run(suppliers=[dict(SUPPLIER), other], rate_limit_per_minute=2)
    try:
        await listing(http, server)
        for _ in range(3):
            await http.get(f"{server.base_url}/api/v4/get_orders", params=other)
        await http.get(f"{server.base_url}/api/v4/get_orders", params={"supplier_id": "48213", "token": "wrong"})
        stats = (await http.get(f"{server.base_url}/_sim/stats")).json()
    finally:
        await server.stop()
    assert stats["supplier_requests"] == {"48213": {"get_orders": 1}, "77001": {"get_orders": 3}}
    assert stats["supplier_rate_limited"] == {"77001": 1}
    assert stats["requests"]["get_orders"] == 5  # the refused token counts only in the totals
