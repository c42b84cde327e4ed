"""Tests of the CellarPass simulator against our stand-in contract, and the connector on it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from libs.connectors.base.contract import ConnectionProblem, InviteList, ParsedOrder, SyncResult
from libs.connectors.base.errors import NotFound, RateLimited
from libs.connectors.base.http import RetryPolicy
from libs.connectors.cellarpass import codes
from libs.connectors.cellarpass.client import CellarPassClient
from libs.connectors.cellarpass.connector import CellarPassConnector
from libs.connectors.cellarpass.settings import CellarPassSettings
from tests.simulators.cellarpass import STATE_KEY, CellarPassConfig, create_app
from tests.simulators.cellarpass.entry import SIMULATOR
from tests.simulators.common import SimulatorServer

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("error")]

ACCOUNT = {"account_id": "harbour.main", "api_key": "cp-key-1"}
DISABLED = {"account_id": "harbour.off", "api_key": "cp-key-off", "integration_enabled": False}
AUTH = {"Authorization": "Bearer cp-key-1"}
NOW = 1_796_000_000.0  # 2026-11-30
CONNECTOR = CellarPassConnector()


async def run(**overrides: Any) -> SimulatorServer:
    config = CellarPassConfig(**({"accounts": [dict(ACCOUNT), dict(DISABLED)]} | overrides))
    server = SimulatorServer(create_app(config))
    server.app[STATE_KEY].clock = lambda: NOW
    return await server.start()


@pytest_asyncio.fixture
async def cp() -> AsyncIterator[SimulatorServer]:
    server = await run()
    yield server
    await server.stop()


async def seed(http: httpx.AsyncClient, server: SimulatorServer, *reservations: dict[str, Any]) -> list[dict]:
    body = {"account_id": "harbour.main", "reservations": list(reservations)}
    response = await http.post(f"{server.base_url}/_sim/reservations", json=body)
    assert response.status_code == 201, response.text
    return response.json()["reservations"]


async def listing(http: httpx.AsyncClient, server: SimulatorServer, **params: str) -> httpx.Response:
    return await http.get(f"{server.base_url}/v1/reservations", params=params, headers=AUTH)


def connector_client(server: SimulatorServer, key: str = "cp-key-1", page_size: int = 50) -> CellarPassClient:
    async def no_sleep(_: float) -> None:
        return None

    settings = CellarPassSettings(base_url=SIMULATOR.base_url(server.base_url), api_key=key, page_size=page_size)
    return CellarPassClient(settings, retry=RetryPolicy(max_attempts=2), sleep=no_sleep)


# ---- the vendor API ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_reservations_need_an_accounts_bearer_key(cp, http):
    assert (await http.get(f"{cp.base_url}/v1/reservations")).status_code == 401
    wrong = await http.get(f"{cp.base_url}/v1/reservations", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "UNAUTHORIZED"
    assert (await listing(http, cp)).status_code == 200


@pytest.mark.asyncio
async def test_an_account_without_the_integration_answers_403(cp, http):
    response = await http.get(f"{cp.base_url}/v1/customer-types", headers={"Authorization": "Bearer cp-key-off"})
    assert response.status_code == 403 and response.json()["code"] == "INTEGRATION_DISABLED"


@pytest.mark.asyncio
async def test_pages_are_ordered_by_updated_at_and_at_most_50(cp, http):
    seeded = await seed(http, cp, *({} for _ in range(5)))
    assert len({r["updatedAt"] for r in seeded}) == 5  # every change its own instant
    first = (await listing(http, cp, pageSize="2")).json()
    assert (first["page"], first["pageSize"], first["total"]) == (1, 2, 5)
    third = (await listing(http, cp, pageSize="2", page="3")).json()
    ids = [r["reservationId"] for r in first["reservations"] + third["reservations"]]
    assert ids == [seeded[0]["reservationId"], seeded[1]["reservationId"], seeded[4]["reservationId"]]
    assert (await listing(http, cp, pageSize="51")).status_code == 400
    assert (await listing(http, cp, page="0")).status_code == 400


@pytest.mark.asyncio
async def test_filters_by_status_updated_since_and_sync_status(cp, http):
    paid, comp, due, cancelled = await seed(
        http,
        cp,
        {},
        {"isComplimentary": True, "total": 0, "totalPaid": 0},
        {"totalPaid": 40, "balanceDue": 40},
        {"status": "Cancelled"},
    )

    async def ids(**params: str) -> list[str]:
        return [r["reservationId"] for r in (await listing(http, cp, **params)).json()["reservations"]]

    assert await ids(status="paid") == [paid["reservationId"]]
    assert await ids(status="complimentary") == [comp["reservationId"]]
    assert len(await ids(status="all")) == 4
    assert await ids(updatedSince=due["updatedAt"]) == [due["reservationId"], cancelled["reservationId"]]
    assert len(await ids(syncStatus="Pending")) == 4
    assert (await listing(http, cp, status="unpaid")).status_code == 400
    assert (await listing(http, cp, updatedSince="yesterday")).status_code == 400


@pytest.mark.asyncio
async def test_a_sync_result_sets_the_status_without_moving_updated_at_and_processed_stays(cp, http):
    (first, second) = await seed(http, cp, {}, {})
    url = f"{cp.base_url}/v1/reservations/{first['reservationId']}/sync-result"
    ok = await http.post(url, json={"success": True, "externalOrderId": "58213", "error": ""}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["syncStatus"] == "Processed"
    again = await http.post(url, json={"success": True, "externalOrderId": "58213", "error": ""}, headers=AUTH)
    assert again.status_code == 200
    refused = await http.post(url, json={"success": False, "error": "late"}, headers=AUTH)
    assert refused.status_code == 409
    error_url = f"{cp.base_url}/v1/reservations/{second['reservationId']}/sync-result"
    failed = await http.post(error_url, json={"success": False, "error": "SKU unknown"}, headers=AUTH)
    assert failed.json()["syncStatus"] == "Error"
    pending = (await listing(http, cp, syncStatus="Pending")).json()["reservations"]
    assert pending == []
    listed = {r["reservationId"]: r for r in (await listing(http, cp)).json()["reservations"]}
    assert listed[first["reservationId"]]["updatedAt"] == first["updatedAt"]
    assert listed[first["reservationId"]]["externalOrderId"] == "58213"
    unknown = await http.post(f"{cp.base_url}/v1/reservations/R-1/sync-result", json={"success": True}, headers=AUTH)
    assert unknown.status_code == 404
    results = (await http.get(f"{cp.base_url}/_sim/sync-results?account_id=harbour.main")).json()["sync_results"]
    assert [(r["success"], r["error"]) for r in results] == [(True, ""), (True, ""), (False, "SKU unknown")]


@pytest.mark.asyncio
async def test_an_edit_moves_updated_at_and_keeps_the_sync_status(cp, http):
    (reservation,) = await seed(http, cp, {"total": 120, "totalPaid": 120})
    rid = reservation["reservationId"]
    url = f"{cp.base_url}/v1/reservations/{rid}/sync-result"
    await http.post(url, json={"success": True, "externalOrderId": "9"}, headers=AUTH)
    refund = await http.patch(f"{cp.base_url}/_sim/reservations/{rid}", json={"total": 80, "totalPaid": 80})
    assert refund.status_code == 200
    edited = refund.json()
    assert edited["updatedAt"] > reservation["updatedAt"] and edited["syncStatus"] == "Processed"
    newer = (await listing(http, cp, updatedSince=edited["updatedAt"])).json()["reservations"]
    assert [r["reservationId"] for r in newer] == [rid]
    assert (await http.patch(f"{cp.base_url}/_sim/reservations/R-0", json={})).status_code == 404


@pytest.mark.asyncio
async def test_customer_types_are_created_once_per_source_renamed_and_deleted(cp, http):
    types = f"{cp.base_url}/v1/customer-types"
    made = await http.post(types, json={"name": "Wine Club", "sourceId": "12"}, headers=AUTH)
    assert made.status_code == 201
    renamed = await http.post(types, json={"name": "Club Members", "sourceId": "12"}, headers=AUTH)
    assert renamed.status_code == 200 and renamed.json() == made.json() | {"name": "Club Members"}
    await http.post(
        f"{cp.base_url}/_sim/customer-types", json={"account_id": "harbour.main", "types": [{"name": "Friends"}]}
    )
    listed = (await http.get(types, headers=AUTH)).json()
    assert [(t["name"], t.get("sourceId")) for t in listed] == [("Club Members", "12"), ("Friends", None)]
    url = f"{types}/{made.json()['id']}"
    assert (await http.delete(url, headers=AUTH)).status_code == 204
    assert (await http.delete(url, headers=AUTH)).status_code == 404
    assert (await http.post(types, json={"sourceId": "3"}, headers=AUTH)).status_code == 400


@pytest.mark.asyncio
async def test_60_requests_a_minute_per_key_then_429_with_retry_after(http):
    server = await run(rate_limit_per_minute=3)
    try:
        statuses = [(await listing(http, server)).status_code for _ in range(4)]
        limited = await listing(http, server)
    finally:
        await server.stop()
    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


@pytest.mark.asyncio
async def test_injected_faults_answer_the_route_then_clear(cp, http):
    fault = {"route": "list_reservations", "status": 503, "count": 2}
    assert (await http.post(f"{cp.base_url}/_sim/faults", json=fault)).status_code == 201
    statuses = [(await listing(http, cp)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    await http.post(f"{cp.base_url}/_sim/faults", json={"route": "list_reservations", "status": 429})
    throttled = await listing(http, cp)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"


@pytest.mark.asyncio
async def test_reset_forgets_reservations_and_keeps_accounts(cp, http):
    await seed(http, cp, {})
    await http.post(f"{cp.base_url}/_sim/reset")
    response = await listing(http, cp)
    assert response.status_code == 200 and response.json()["total"] == 0


# ---- the connector on the simulator -----------------------------------------------------------


async def poll_all(server: SimulatorServer, cursor: str = "", page_size: int = 50) -> tuple[list[ParsedOrder], str]:
    orders: list[ParsedOrder] = []
    async with connector_client(server, page_size=page_size) as client:
        while True:
            page = await CONNECTOR.fetch_page(client, client.settings, cursor, "harbour")
            orders += [p for p in page.orders if isinstance(p, ParsedOrder)]
            cursor = page.next_cursor
            if not page.more:
                return orders, cursor


@pytest.mark.asyncio
async def test_the_connector_reads_every_page_then_only_what_changed_also_after_a_sync(cp, http):
    seeded = await seed(
        http, cp, {}, {"isComplimentary": True, "total": 0, "totalPaid": 0}, {"orderType": "Ticket"}, {}, {}
    )
    orders, cursor = await poll_all(cp, page_size=2)
    assert [o.order.external_id for o in orders] == [r["reservationId"] for r in seeded]
    assert [f.code for f in orders[2].rule_failures] == [codes.TICKET_ORDER]
    async with connector_client(cp) as client:
        await CONNECTOR.report_sync_results(
            client, client.settings, [SyncResult(orders[0].ack_token, provider_reference="58213")]
        )
    assert (await poll_all(cp, cursor))[0] == []  # a sync result is no change of the reservation
    rid = seeded[0]["reservationId"]
    await http.patch(f"{cp.base_url}/_sim/reservations/{rid}", json={"total": 40, "totalPaid": 40})
    changed, _ = await poll_all(cp, cursor)
    assert [o.order.external_id for o in changed] == [rid]
    assert changed[0].order.revision > orders[0].order.revision
    state = (await http.get(f"{cp.base_url}/_sim/reservations?account_id=harbour.main")).json()["reservations"]
    assert {r["reservationId"]: r["syncStatus"] for r in state}[rid] == "Processed"


@pytest.mark.asyncio
async def test_the_connector_names_a_reservation_cellarpass_does_not_know(cp):
    async with connector_client(cp) as client:
        with pytest.raises(NotFound, match="R-404"):
            await CONNECTOR.report_sync_results(client, client.settings, [SyncResult("R-404", failure="x")])


@pytest.mark.asyncio
async def test_the_connector_mirrors_invite_lists(cp, http):
    await http.post(
        f"{cp.base_url}/_sim/customer-types", json={"account_id": "harbour.main", "types": [{"name": "Friends"}]}
    )
    async with connector_client(cp) as client:
        made = await CONNECTOR.put_invite_list(client, client.settings, "Wine Club", "12")
        again = await CONNECTOR.put_invite_list(client, client.settings, "Club", "12")
        assert again == InviteList(made.list_id, "Club", "12")
        lists = await CONNECTOR.list_invite_lists(client, client.settings)
        assert [(i.name, i.source_id) for i in lists] == [("Friends", ""), ("Club", "12")]
        assert await CONNECTOR.remove_invite_list(client, client.settings, made.list_id) is True
        assert await CONNECTOR.remove_invite_list(client, client.settings, made.list_id) is False


@pytest.mark.asyncio
async def test_the_connection_check_tells_a_wrong_key_from_a_disabled_integration(cp):
    for key, problem in (
        ("cp-key-1", None),
        ("wrong", ConnectionProblem.BAD_CREDENTIALS),
        ("cp-key-off", ConnectionProblem.ACCOUNT_INACTIVE),
    ):
        async with connector_client(cp, key=key) as client:
            check = await CONNECTOR.check_connection(client, client.settings)
        assert check.problem is problem and check.ok is (problem is None)


@pytest.mark.asyncio
async def test_the_connection_check_says_unreachable_for_an_outage(cp, http):
    await http.post(f"{cp.base_url}/_sim/faults", json={"route": "list_customer_types", "status": 500, "count": 2})
    async with connector_client(cp) as client:
        check = await CONNECTOR.check_connection(client, client.settings)
    assert check.problem is ConnectionProblem.UNREACHABLE


@pytest.mark.asyncio
async def test_the_connector_backs_off_a_429_and_gives_up_as_rate_limited(http):
    server = await run(rate_limit_per_minute=1)
    try:
        async with connector_client(server) as client:
            await client.list_customer_types()
            with pytest.raises(RateLimited) as raised:
                await client.list_customer_types()
    finally:
        await server.stop()
    assert raised.value.retry_after is not None and raised.value.retry_after >= 1


@pytest.mark.asyncio
async def test_the_connector_walks_an_instant_wider_than_a_page_and_misses_nothing_changed_mid_walk(cp, http):
    same = "2026-11-29T08:00:00.000Z"
    seeded = await seed(http, cp, *({"reservationId": f"R-{i}", "updatedAt": same} for i in range(1, 6)))
    async with connector_client(cp, page_size=2) as client:
        first = await CONNECTOR.fetch_page(client, client.settings, "", "harbour")
        second = await CONNECTOR.fetch_page(client, client.settings, first.next_cursor, "harbour")
        # R-1 is refunded while the walk is on page 2: move one place down.
        await http.patch(f"{cp.base_url}/_sim/reservations/R-1", json={"total": 40, "totalPaid": 40})
        cursor, rest = second.next_cursor, []
        while True:
            page = await CONNECTOR.fetch_page(client, client.settings, cursor, "harbour")
            rest += [p.order.external_id for p in page.orders if isinstance(p, ParsedOrder)]
            cursor = page.next_cursor
            if not page.more:
                break
    read = [p.order.external_id for p in [*first.orders, *second.orders] if isinstance(p, ParsedOrder)] + rest
    assert set(read) == {r["reservationId"] for r in seeded}
    assert read.count("R-1") == 2 and len(read) == 6  # every one once, and R-1 again with its refund


def test_the_module_runs_standalone_and_stops_on_sigterm(tmp_path):
    config = tmp_path / "cellarpass.json"
    config.write_text(json.dumps({"accounts": [ACCOUNT]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.simulators.cellarpass", "--port", "0", "--config", str(config)],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        base_url = line.removeprefix("listening on ")
        response = httpx.get(f"{base_url}/v1/customer-types", headers=AUTH, trust_env=False)
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
