"""DirectoryAdminService with the real CellarPass and VinSuite connectors, on their simulators over
real HTTP, real gRPC and real Postgres, the accounts read from a tenants file: Test Login failing
(wrong VinSuite password, an inactive web-service account, CellarPass without the integration)
then passing, and VinSuite's member types mirrored into CellarPass's invite lists, the staff's
own left alone, a renamed and a removed type followed on the next pass."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio
from ordersync.directory.v1 import directory_admin_service_pb2 as pb
from ordersync.directory.v1 import directory_admin_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.directory_admin import directory_admin_binding
from libs.connectors.base.contract import ClientResources
from libs.connectors.registry import load
from libs.platform.accounts import AccountClients
from libs.platform.grpc_server import GrpcServer, insecure_channel
from libs.platform.tenants import TenantDirectory
from libs.platform.testing import ACME_OPERATOR, access_for_tests, authorized
from tests.simulators.cellarpass import app as cellarpass_app
from tests.simulators.cellarpass import entry as cellarpass_entry
from tests.simulators.common import SimulatorServer
from tests.simulators.vinsuite import app as vinsuite_app
from tests.simulators.vinsuite import entry as vinsuite_entry

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(90)]
CP_KEY, VS_USER, VS_PASSWORD = "cp-key-0d9e1f7a", "cp-partner", "vs-password-8c41b2aa"
WINERY = "1042"
TENANTS = """
[tenants.acme.accounts.reservations]
connector = "cellarpass"
base_url = "{cellarpass}"
api_key = "env:TEST_CP_KEY"

[tenants.acme.accounts.club]
connector = "vinsuite"
base_url = "{vinsuite}/2.00/"
winery_id = "{winery}"
username = "env:TEST_VS_USER"
password = "env:TEST_VS_PASSWORD"
order_number_prefix = "CP-"

[[tenants.acme.routes]]
name = "reservations-pickup"
channel = "reservations"
provider = "club"
order_kinds = ["reservation"]
"""


class World:
    def __init__(self, api, cellarpass_url: str, vinsuite_url: str, http):
        self.api = api
        self.cellarpass = cellarpass_url
        self.vinsuite = vinsuite_url
        self.http = http

    async def control(self, method: str, url: str, **body) -> dict:
        response = await self.http.request(method, url, json=body or None)
        response.raise_for_status()
        return response.json() if response.content else {}

    async def invite_lists(self) -> dict[str, str]:
        types = (await self.control("GET", f"{self.cellarpass}/_sim/customer-types?account_id=acme"))["types"]
        return {t["name"]: t.get("sourceId") or "" for t in types}

    async def login(self) -> list[tuple]:
        answer = await self.api.TestLogin(pb.TestLoginRequest(tenant_id="acme"))
        return [(c.account, c.ok, pb.ConnectionProblem.Name(c.problem), c.detail) for c in answer.checks]


@pytest_asyncio.fixture
async def world(pool, tmp_path, monkeypatch):
    async with (
        SimulatorServer(cellarpass_app.create_app(cellarpass_entry.load_config(None))) as cp,
        SimulatorServer(vinsuite_app.create_app(vinsuite_entry.load_config(None))) as vs,
        httpx.AsyncClient(trust_env=False, timeout=20) as http,
    ):
        account = {"account_id": "acme", "api_key": CP_KEY, "integration_enabled": True}
        (await http.put(f"{cp.base_url}/_sim/accounts/acme", json=account)).raise_for_status()
        winery = {"winery_id": WINERY, "username": VS_USER, "password": VS_PASSWORD, "member_types": []}
        (await http.put(f"{vs.base_url}/_sim/wineries/{WINERY}", json=winery)).raise_for_status()
        for name, value in {"TEST_CP_KEY": CP_KEY, "TEST_VS_USER": VS_USER, "TEST_VS_PASSWORD": VS_PASSWORD}.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "tenants.toml"
        path.write_text(TENANTS.format(cellarpass=cp.base_url, vinsuite=vs.base_url, winery=WINERY))
        registry = load()
        accounts = AccountClients(TenantDirectory.load(path, registry), registry, ClientResources(max_concurrency=4))
        binding = directory_admin_binding(pool, "fulfillment_dispatch", accounts, access_for_tests())
        server = GrpcServer([binding], host="127.0.0.1", port=0)
        await server.start()
        try:
            async with insecure_channel(f"127.0.0.1:{server.port}") as channel:
                api = authorized(pb_grpc.DirectoryAdminServiceStub(channel), ACME_OPERATOR)
                yield World(api, cp.base_url, vs.base_url, http)
        finally:
            await server.stop(0)
            await accounts.stop()


async def test_test_login_says_which_account_fails_and_why_then_passes(world):
    account = f"{world.vinsuite}/_sim/wineries/{WINERY}"
    await world.control("PATCH", account, password="changed-at-vinsuite")
    await world.control("PUT", f"{world.cellarpass}/_sim/accounts/acme",
                        account_id="acme", api_key=CP_KEY, integration_enabled=False)  # fmt: skip

    (cp_name, cp_ok, cp_problem, cp_detail), (vs_name, vs_ok, vs_problem, vs_detail) = await world.login()

    assert (cp_name, cp_ok, vs_name, vs_ok) == ("reservations", False, "club", False)
    assert vs_problem == "CONNECTION_PROBLEM_BAD_CREDENTIALS"
    assert vs_detail.startswith("VinSuite refused the credentials of account 'club': check the web-service username")
    assert cp_problem == "CONNECTION_PROBLEM_ACCOUNT_INACTIVE"
    assert cp_detail == (
        "the web-service account of 'reservations' is not active with CellarPass: ask CellarPass to activate it"
        " (CellarPass said: the VinSuite integration is not enabled for this CellarPass account: ask CellarPass"
        " support)"
    )
    assert VS_PASSWORD not in vs_detail + cp_detail and CP_KEY not in vs_detail + cp_detail

    await world.control("PATCH", account, password=VS_PASSWORD, active=False)
    [_, (_, ok, problem, detail)] = await world.login()
    assert (ok, problem) == (False, "CONNECTION_PROBLEM_ACCOUNT_INACTIVE")
    assert detail.startswith(
        "the web-service account of 'club' is not active with VinSuite: ask VinSuite to activate it"
    )

    await world.control("PATCH", account, active=True)
    await world.control("PUT", f"{world.cellarpass}/_sim/accounts/acme",
                        account_id="acme", api_key=CP_KEY, integration_enabled=True)  # fmt: skip
    assert await world.login() == [
        ("reservations", True, "CONNECTION_PROBLEM_UNSPECIFIED", ""),
        ("club", True, "CONNECTION_PROBLEM_UNSPECIFIED", ""),
    ]


async def test_member_types_become_invite_lists_and_the_next_pass_follows_a_removed_type(world):
    created = await world.control(
        "POST", f"{world.vinsuite}/_sim/wineries/{WINERY}/member-types", names=["Club Member", "Trade"]
    )
    await world.control("POST", f"{world.cellarpass}/_sim/customer-types", account_id="acme",
                        types=[{"name": "Staff picks"}])  # fmt: skip

    [mirror] = (await world.api.SyncInviteLists(pb.SyncInviteListsRequest(tenant_id="acme"))).mirrors

    assert (mirror.channel_account, mirror.provider_account) == ("reservations", "club")
    assert sorted(mirror.created) == ["Club Member", "Trade"]
    lists = await world.invite_lists()
    assert lists["Staff picks"] == "" and set(lists) == {"Staff picks", "Club Member", "Trade"}

    trade = next(t for t in created["member_types"] if t["Name"] == "Trade")
    await world.control("DELETE", f"{world.vinsuite}/_sim/wineries/{WINERY}/member-types/{trade['MemberTypeID']}")
    [mirror] = (await world.api.SyncInviteLists(pb.SyncInviteListsRequest(tenant_id="acme"))).mirrors

    assert (list(mirror.removed), list(mirror.unchanged), list(mirror.created)) == (["Trade"], ["Club Member"], [])
    assert set(await world.invite_lists()) == {"Staff picks", "Club Member"}
