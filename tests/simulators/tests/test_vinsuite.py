"""Tests of the VinSuite simulator against the web service it stands in for, and of the connector on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import ConnectionProblem, Submitted, UpsertedMember
from libs.connectors.base.errors import Unavailable
from libs.connectors.base.http import RetryPolicy
from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.vinsuite.client import VinSuiteApi, VinSuiteClient
from libs.connectors.vinsuite.connector import CONNECTOR, VinSuiteAccount
from libs.connectors.vinsuite.tests.builders import submission, valid_order
from tests.simulators.common import SimulatorServer
from tests.simulators.vinsuite import STATE_KEY, VinSuiteConfig, create_app
from tests.simulators.vinsuite.entry import SIMULATOR

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(15), pytest.mark.filterwarnings("error")]

WINERY = {
    "winery_id": "4471",
    "username": "cp-partner",
    "password": "vs-pass",
    "products": ["EVT-TASTING"],
    "member_types": ["Club Member", "Trade"],
}
MEMBER = {
    "FirstName": "Ana",
    "LastName": "Reyes",
    "Email": "Ana.Reyes@example.com",
    "MemberTypes": ["Club Member"],
    "ClubMemberships": [{"ClubID": "C1", "ClubName": "Reserve Club", "Status": "Active"}],
}
SERVICE = "/2.00/EWSWebServices.asmx"


async def run_vinsuite(**overrides: Any) -> SimulatorServer:
    config = VinSuiteConfig(**({"wineries": [dict(WINERY)]} | overrides))
    return await SimulatorServer(create_app(config)).start()


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    server = await run_vinsuite()
    yield server
    await server.stop()


async def call(
    http: httpx.AsyncClient, sim: SimulatorServer, method: str, password: str = "vs-pass", **request: Any
) -> httpx.Response:
    body = {"request": {"WineryID": "4471", "Security": {"Username": "cp-partner", "Password": password}, **request}}
    return await http.post(f"{sim.base_url}{SERVICE}/{method}", json=body)


def d(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()["d"]


def account(sim: SimulatorServer, **changes: Any) -> VinSuiteAccount:
    api = VinSuiteApi(SIMULATOR.base_url(sim.base_url), "4471", "cp-partner", changes.pop("password", "vs-pass"))
    return VinSuiteAccount(api, order_number_prefix="CP-", **changes)


def vs_client(settings: VinSuiteAccount, **kwargs: Any) -> VinSuiteClient:
    # A budget past the test's calls: the client's own pace (60 a minute) would only add waits.
    return VinSuiteClient(settings.api, rate_limiter=KeyedRateLimiter(6000, burst=100), **kwargs)


async def test_methods_answer_posts_only_in_the_asmx_json_envelope(http, sim):
    ok = d(await call(http, sim, "TestConnection"))
    assert ok["Success"] is True and ok["PrimaryAuthInfo"]["Type"] == "SUPPLIER"
    assert set(ok["PrimaryAuthInfo"]) == {"WineryID", "AdminContactID", "Type", "ThirdPartySupplierID", "FailureReason"}
    got = await http.get(f"{sim.base_url}{SERVICE}/TestConnection")
    assert got.status_code == 405 and got.headers["Allow"] == "POST"
    assert (await http.post(f"{sim.base_url}{SERVICE}/NoSuchMethod", json={"request": {}})).status_code == 500
    assert (await http.post(f"{sim.base_url}{SERVICE}/TestConnection", json={})).status_code == 500


async def test_a_wrong_login_and_an_inactive_account_are_invalid_with_their_reason(http, sim):
    wrong = d(await call(http, sim, "AddOrder", password="nope"))
    assert wrong["PrimaryAuthInfo"]["Type"] == "INVALID"
    assert wrong["PrimaryAuthInfo"]["FailureReason"] == "Invalid username or password."
    assert (await http.patch(f"{sim.base_url}/_sim/wineries/4471", json={"active": False})).status_code == 200
    inactive = d(await call(http, sim, "TestConnection"))
    assert inactive["PrimaryAuthInfo"]["FailureReason"] == "Web service account is inactive."
    await http.patch(f"{sim.base_url}/_sim/wineries/4471", json={"active": True, "password": "new-pass"})
    assert d(await call(http, sim, "TestConnection"))["PrimaryAuthInfo"]["Type"] == "INVALID"
    assert d(await call(http, sim, "TestConnection", password="new-pass"))["Success"] is True
    assert sim.app[STATE_KEY].orders == {}


async def test_orders_get_increasing_ids_keep_their_fields_and_notes_and_are_searchable(http, sim):
    order = {
        "OrderNumber": "CP-B1",
        "OrderItems": [{"SKU": "EVT-TASTING", "Quantity": 2, "Price": 45.0}, {"SKU": "EVT-NEW", "Quantity": 1}],
        "IsWillCallOrder": True,
        "OrderDate": "2026-06-01",
        "PickupDate": "2026-06-12",
    }
    first = d(await call(http, sim, "AddOrder", Order=order, IsSendOrderConfirmation=False))
    assert first["CreatedProducts"] == ["EVT-NEW"]  # unknown SKUs are created, inactive
    second = d(await call(http, sim, "AddOrder", Order=order))  # no upsert: a second order
    assert second["OrderID"] == first["OrderID"] + 1 and second["CreatedProducts"] == []
    products = (await http.get(f"{sim.base_url}/_sim/wineries/4471/products")).json()["products"]
    assert {"SKU": "EVT-NEW", "Active": False} in products
    assert d(await call(http, sim, "AddOrderNote", OrderID=first["OrderID"], Note="Window seat"))["Success"]
    missing = d(await call(http, sim, "AddOrderNote", OrderID=1, Note="x"))
    assert missing["Success"] is False and "not found" in missing["ErrorMessage"]
    found = d(await call(http, sim, "SearchOrders", OrderNumber="CP-B1"))["Orders"]
    assert [row["OrderID"] for row in found] == [first["OrderID"], second["OrderID"]]
    assert d(await call(http, sim, "SearchOrders", OrderNumber="CP-B2"))["Orders"] == []
    [listed, _] = (await http.get(f"{sim.base_url}/_sim/orders?order_number=CP-B1")).json()["orders"]
    assert listed["Notes"] == ["Window seat"] and listed["IsWillCallOrder"] is True
    assert (listed["OrderDate"], listed["PickupDate"], listed["IsSendOrderConfirmation"]) == (
        "2026-06-01",
        "2026-06-12",
        False,
    )
    refused = d(await call(http, sim, "AddOrder", Order={"OrderNumber": "CP-B3", "OrderItems": []}))
    assert refused["Success"] is False and refused["ErrorMessage"] == "The order has no items."


async def test_members_are_seeded_found_by_email_or_last_name_and_upserted_on_email(http, sim):
    seeded = await http.post(f"{sim.base_url}/_sim/wineries/4471/members", json={"members": [MEMBER]})
    assert seeded.status_code == 201
    [ana] = d(await call(http, sim, "GetMembers", Email="ana.reyes@EXAMPLE.COM"))["Members"]
    assert ana["IsClubMember"] is True and ana["ClubMemberships"][0]["ClubName"] == "Reserve Club"
    assert [m["MemberID"] for m in d(await call(http, sim, "GetMembers", LastName="reyes"))["Members"]] == [
        ana["MemberID"]
    ]
    assert d(await call(http, sim, "GetMembers", Email="nobody@example.com"))["Members"] == []
    same = d(await call(http, sim, "AddUpdateMember", Member={"FirstName": "Ana", "Email": "ANA.REYES@example.com"}))
    assert same == same | {"MemberID": ana["MemberID"], "IsNew": False}
    new = {"FirstName": "Ben", "LastName": "Ode", "Email": "ben@example.com", "MemberTypes": ["Trade"]}
    created = d(await call(http, sim, "AddUpdateMember", Member=new))
    again = d(await call(http, sim, "AddUpdateMember", Member=new))  # a retried upsert
    assert created["IsNew"] is True and again == again | {"MemberID": created["MemberID"], "IsNew": False}
    assert len((await http.get(f"{sim.base_url}/_sim/wineries/4471/members")).json()["members"]) == 2
    types = d(await call(http, sim, "GetMemberTypes"))["MemberTypes"]
    assert [t["Name"] for t in types] == ["Club Member", "Trade"]


async def test_a_renamed_member_type_keeps_its_id_and_its_members(http, sim):
    await http.post(f"{sim.base_url}/_sim/wineries/4471/members", json={"members": [MEMBER]})
    [club] = [t for t in d(await call(http, sim, "GetMemberTypes"))["MemberTypes"] if t["Name"] == "Club Member"]
    url = f"{sim.base_url}/_sim/wineries/4471/member-types"

    renamed = await http.patch(f"{url}/{club['MemberTypeID']}", json={"name": "Reserve Member"})

    assert renamed.status_code == 200
    types = d(await call(http, sim, "GetMemberTypes"))["MemberTypes"]
    assert {"MemberTypeID": club["MemberTypeID"], "Name": "Reserve Member"} in types
    [ana] = d(await call(http, sim, "GetMembers", Email=MEMBER["Email"]))["Members"]
    assert "Reserve Member" in ana["MemberTypes"] and "Club Member" not in ana["MemberTypes"]
    assert (await http.patch(f"{url}/999999", json={"name": "X"})).status_code == 404


async def test_each_winery_has_60_calls_a_minute_then_429_with_retry_after(http):
    server = await run_vinsuite(requests_per_minute=3)
    try:
        for _ in range(3):
            assert (await call(http, server, "TestConnection")).status_code == 200
        limited = await call(http, server, "TestConnection")
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert server.app[STATE_KEY].stats.rate_limited == 1
    finally:
        await server.stop()


async def test_faults_outages_and_call_counts(http, sim):
    await http.post(f"{sim.base_url}/_sim/faults", json={"route": "AddOrder", "status": 500, "after_create": True})
    order = {"OrderNumber": "CP-F1", "OrderItems": [{"SKU": "EVT-TASTING", "Quantity": 1}]}
    assert (await call(http, sim, "AddOrder", Order=order)).status_code == 500
    assert len(sim.app[STATE_KEY].orders) == 1  # stored, though the caller saw an error
    await http.post(f"{sim.base_url}/_sim/faults", json={"route": "GetMemberTypes", "status": 429})
    throttled = await call(http, sim, "GetMemberTypes")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    await http.post(f"{sim.base_url}/_sim/faults", json={"route": "TestConnection", "delay_s": 0.5})
    async with httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(5.0, read=0.1)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await call(impatient, sim, "TestConnection")
    await http.put(f"{sim.base_url}/_sim/down", json={"mode": "503"})
    assert (await call(http, sim, "TestConnection")).status_code == 503
    await http.put(f"{sim.base_url}/_sim/down", json={"mode": "refuse"})
    with pytest.raises(httpx.TransportError):
        await call(http, sim, "TestConnection")
    await http.put(f"{sim.base_url}/_sim/down", json={"mode": "up"})
    stats = (await http.get(f"{sim.base_url}/_sim/stats")).json()
    assert stats["requests"] == {"AddOrder": 1, "GetMemberTypes": 1, "TestConnection": 2}
    assert stats["winery_requests"]["4471"]["AddOrder"] == 1 and stats["faults_served"] == 2
    await http.post(f"{sim.base_url}/_sim/reset")
    assert (await http.get(f"{sim.base_url}/_sim/orders")).json()["orders"] == []
    assert (await http.get(f"{sim.base_url}/_sim/stats")).json()["requests"] == {}


async def test_the_connector_never_creates_an_order_twice_when_a_send_is_retried(http, sim):
    settings = account(sim)
    await http.post(f"{sim.base_url}/_sim/faults", json={"route": "AddOrder", "status": 502, "after_create": True})
    async with vs_client(settings) as vs:
        [first] = await CONNECTOR.submit(vs, settings, [submission()])
        assert isinstance(first, Unavailable) and first.retryable
        [again] = await CONNECTOR.submit(vs, settings, [submission(may_exist=True)])
        assert isinstance(again, Submitted) and "already in VinSuite" in again.activity
        notice = await CONNECTOR.read_back(vs, settings, "CP-B1001")
    orders = (await http.get(f"{sim.base_url}/_sim/orders")).json()["orders"]
    assert len(orders) == 1 and again.provider_reference == str(orders[0]["OrderID"])
    assert notice is not None and notice.provider_reference == again.provider_reference


async def test_the_connector_submits_a_pickup_order_with_its_note_and_upserts_members_once(http, sim):
    settings = account(sim)
    async with vs_client(settings) as vs:
        [sent] = await CONNECTOR.submit(vs, settings, [submission(valid_order())])
        assert isinstance(sent, Submitted) and "guest notes attached" in sent.activity
        guest = order_pb2.Customer(first_name="Ana", last_name="Reyes", email="ana@example.com")
        first = await CONNECTOR.upsert_member(vs, settings, guest)
        assert await CONNECTOR.upsert_member(vs, settings, guest) == UpsertedMember(first.member_id, created=False)
        assert first.created
        [found] = await CONNECTOR.find_members(vs, settings, email="ANA@example.com")
        assert found.member_id == first.member_id and not found.is_club_member
        assert [t.name for t in await CONNECTOR.member_types(vs, settings)] == ["Club Member", "Trade"]
    [order] = (await http.get(f"{sim.base_url}/_sim/orders")).json()["orders"]
    assert order["Notes"] == ["Celebrating an anniversary"] and order["IsWillCallOrder"] is True
    assert str(order["OrderID"]) == sent.provider_reference


async def test_test_login_says_which_problem_and_unreachable_when_down(http, sim):
    settings = account(sim)
    async with vs_client(account(sim, password="wrong")) as vs:
        check = await CONNECTOR.check_connection(vs, settings)
    assert check.problem is ConnectionProblem.BAD_CREDENTIALS and check.detail == "Invalid username or password."
    await http.patch(f"{sim.base_url}/_sim/wineries/4471", json={"active": False})
    async with vs_client(settings) as vs:
        check = await CONNECTOR.check_connection(vs, settings)
    assert check.problem is ConnectionProblem.ACCOUNT_INACTIVE and check.detail == "Web service account is inactive."
    await http.patch(f"{sim.base_url}/_sim/wineries/4471", json={"active": True})
    await http.put(f"{sim.base_url}/_sim/down", json={"mode": "503"})
    async with vs_client(settings, retry=RetryPolicy(max_attempts=1)) as vs:
        check = await CONNECTOR.check_connection(vs, settings)
    assert check.problem is ConnectionProblem.UNREACHABLE
    await http.put(f"{sim.base_url}/_sim/down", json={"mode": "up"})
    async with vs_client(settings) as vs:
        assert (await CONNECTOR.check_connection(vs, settings)).ok
