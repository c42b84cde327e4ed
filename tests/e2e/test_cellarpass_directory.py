"""The directory side of CellarPass → VinSuite on the whole stack: customer look-ups, club
membership and discounts from VinSuite's members, the look-up cache and what clears it, VinSuite
down, Test Login failing then passing, and VinSuite's member types mirrored into CellarPass's
invite lists.

One stack (five service processes, real Kafka and Postgres, the CellarPass and VinSuite
simulators) serves two wineries, each with its own VinSuite winery (so its own call counts and
rate budget): "cork-cellars" has seeded members and discount rules and is looked up;
"ridge-estate" is where credentials break and member types are renamed and removed. Every call
goes through dispatch's real gRPC API with a caller of the stack's callers file.
"""

from __future__ import annotations

import asyncio
import os
import sys

import grpc
import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2
from ordersync.directory.v1 import directory_admin_service_pb2 as admin_pb
from ordersync.directory.v1 import directory_admin_service_pb2_grpc as admin_grpc
from ordersync.directory.v1 import directory_service_pb2 as pb
from ordersync.directory.v1 import directory_service_pb2_grpc as pb_grpc

from libs.platform.testing import authorized
from tests.system.stack import CLUB, REPO, RESERVATIONS, Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

CORK, RIDGE = "cork-cellars", "ridge-estate"
RULES = [
    {"name": "club-members-tasting", "when_club": "Reserve Club", "experiences": ["TASTING-FLIGHT"],
     "percent_off": "20"},
    {"name": "trade-guests", "when_customer_type": "Trade", "amount_off": "10.00"},
    {"name": "industry-guests", "when_customer_type": "Industry", "amount_off": "5.00"},
    {"name": "spring-promo", "when_promo_code": "SPRING25", "percent_off": "25"},
]  # fmt: skip
ANA = {
    "FirstName": "Ana",
    "LastName": "Reyes",
    "Email": "ana.reyes@example.com",
    "MemberTypes": ["Club Member"],
    "ClubMemberships": [
        {"ClubID": "7", "ClubName": "Reserve Club", "Status": "Active"},
        {"ClubID": "9", "ClubName": "Library Club", "Status": "Cancelled"},
    ],
}
TOM = {"FirstName": "Tom", "LastName": "Reyes", "Email": "tom.reyes@example.com", "MemberTypes": ["Trade"]}
KIT = {"FirstName": "Kit", "LastName": "Moss", "Email": "kit.moss@example.com"}


class Cellars:
    """The two wineries as a test reaches them: dispatch's directory APIs over gRPC, and both
    simulators' control APIs."""

    def __init__(self, stack: Stack, channel: grpc.aio.Channel):
        self.stack = stack
        self.http = stack.http
        self.channel = channel

    def directory(self, tenant_id: str = CORK, caller: str | None = None):
        """The look-up API as `caller` (the tenant's operator by default) calls it."""
        stub = pb_grpc.CustomerDirectoryServiceStub(self.channel)
        return authorized(stub, self.stack.token(caller or self.stack.operator(tenant_id)))

    def admin(self, tenant_id: str):
        stub = admin_grpc.DirectoryAdminServiceStub(self.channel)
        return authorized(stub, self.stack.token(self.stack.operator(tenant_id)))

    async def find(self, tenant_id: str = CORK, **fields) -> pb.FindCustomersResponse:
        return await self.directory(tenant_id).FindCustomers(pb.FindCustomersRequest(tenant_id=tenant_id, **fields))

    async def discount(self, **fields) -> pb.ResolveDiscountResponse:
        return await self.directory().ResolveDiscount(pb.ResolveDiscountRequest(tenant_id=CORK, **fields))

    async def upsert(self, email: str, first: str = "Lee", last: str = "Park") -> pb.UpsertCustomerResponse:
        customer = order_pb2.Customer(first_name=first, last_name=last, email=email, phone="707-555-0100")
        return await self.directory().UpsertCustomer(pb.UpsertCustomerRequest(tenant_id=CORK, customer=customer))

    async def login(self, tenant_id: str = RIDGE) -> dict[str, tuple[bool, str, str]]:
        answer = await self.admin(tenant_id).TestLogin(admin_pb.TestLoginRequest(tenant_id=tenant_id))
        return {c.account: (c.ok, admin_pb.ConnectionProblem.Name(c.problem), c.detail) for c in answer.checks}

    async def sync_invite_lists(self, tenant_id: str) -> admin_pb.InviteListMirror:
        answer = await self.admin(tenant_id).SyncInviteLists(admin_pb.SyncInviteListsRequest(tenant_id=tenant_id))
        [mirror] = answer.mirrors
        return mirror

    # ---- VinSuite, simulated ------------------------------------------------------------

    @property
    def vs(self) -> str:
        return self.stack.sim_urls["vinsuite"]

    def winery(self, tenant_id: str) -> str:
        return f"{self.vs}/_sim/wineries/{self.stack.tenants[tenant_id].account(CLUB)['winery_id']}"

    async def control(self, method: str, url: str, **body) -> dict:
        response = await self.http.request(method, url, json=body or None)
        response.raise_for_status()
        return response.json() if response.content else {}

    async def seed(self, tenant_id: str, *members: dict) -> None:
        await self.control("POST", f"{self.winery(tenant_id)}/members", members=list(members))

    async def members_with(self, tenant_id: str, email: str) -> list[dict]:
        members = (await self.control("GET", f"{self.winery(tenant_id)}/members"))["members"]
        return [m for m in members if m["Email"].lower() == email.lower()]

    async def vinsuite_calls(self, tenant_id: str, method: str) -> int:
        """How many `method` calls of this tenant's winery reached VinSuite."""
        winery_id = str(self.stack.tenants[tenant_id].account(CLUB)["winery_id"])
        stats = await self.control("GET", f"{self.vs}/_sim/stats")
        return stats["winery_requests"].get(winery_id, {}).get(method, 0)

    async def vinsuite_down(self, mode: str) -> None:
        await self.control("PUT", f"{self.vs}/_sim/down", mode=mode)

    # ---- CellarPass, simulated ----------------------------------------------------------

    @property
    def cp(self) -> str:
        return self.stack.sim_urls["cellarpass"]

    def cellarpass_account(self, tenant_id: str) -> str:
        return str(self.stack.tenants[tenant_id].account(RESERVATIONS)["account_id"])

    async def invite_lists(self, tenant_id: str) -> dict[str, str]:
        """The account's customer types: name -> the VinSuite member type it mirrors ("" for staff's)."""
        url = f"{self.cp}/_sim/customer-types?account_id={self.cellarpass_account(tenant_id)}"
        return {t["name"]: str(t.get("sourceId") or "") for t in (await self.control("GET", url))["types"]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cellars(infra, tmp_path_factory):
    specs = [
        TenantSpec.cellarpass_vinsuite(CORK, vinsuite={"members": [ANA, TOM, KIT]}, discount_rules=RULES),
        TenantSpec.cellarpass_vinsuite(RIDGE, vinsuite={"member_types": ["Club Member", "Trade"]}),
    ]
    run_dir = tmp_path_factory.mktemp("cellarpass-directory")
    # Invite lists mirrored on demand only, so each test sees what its own SyncInviteLists did.
    on_demand = {"ORDERSYNC_DISPATCH_INVITE_LIST_SYNC_S": "0"}
    stack = Stack(specs, run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap,
                  service_env=on_demand)  # fmt: skip
    async with stack, grpc.aio.insecure_channel(stack.grpc_address("fulfillment_dispatch")) as channel:
        yield Cellars(stack, channel)


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


# ---- look-ups ---------------------------------------------------------------------------------


async def test_a_member_is_found_by_email_whatever_its_case_and_by_last_name(cellars):
    by_email = await cellars.find(email="ANA.Reyes@Example.COM")
    by_name = await cellars.find(last_name="REYES")

    assert by_email.account == CLUB
    [ana] = by_email.customers
    assert (ana.first_name, ana.last_name, ana.email, ana.is_club_member) == ("Ana", "Reyes", ANA["Email"], True)
    assert list(ana.member_types) == ["Club Member"] and ana.member_id
    assert [(c.club_name, c.status) for c in ana.clubs] == [("Reserve Club", "Active"), ("Library Club", "Cancelled")]
    assert {c.email: c.is_club_member for c in by_name.customers} == {ANA["Email"]: True, TOM["Email"]: False}


async def test_club_membership_lists_only_active_clubs(cellars):
    def membership(email: str):
        request = pb.GetClubMembershipRequest(tenant_id=CORK, email=email)
        return cellars.directory().GetClubMembership(request)

    ana, tom, stranger = (
        await membership(ANA["Email"]),
        await membership(TOM["Email"]),
        await membership("x@example.com"),
    )

    assert (ana.known, ana.is_club_member, [c.club_name for c in ana.active_clubs]) == (True, True, ["Reserve Club"])
    assert (tom.known, tom.is_club_member, list(tom.active_clubs)) == (True, False, [])
    assert (stranger.known, stranger.is_club_member) == (False, False)


# ---- discounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guest", "rule", "off"),
    [
        # an active Reserve Club member booking the tasting: the rule on club membership
        ({"email": ANA["Email"], "experience_sku": "TASTING-FLIGHT"}, "club-members-tasting", ("percent_off", "20")),
        # a VinSuite member type
        ({"email": TOM["Email"], "experience_sku": "CELLAR-TOUR"}, "trade-guests", ("amount_off", "10.00")),
        # a CellarPass customer type the caller passes, for a guest VinSuite does not know
        ({"email": "new.face@example.com", "customer_types": ["industry"]}, "industry-guests", ("amount_off", "5.00")),
        # a promo code, without an e-mail
        ({"experience_sku": "CELLAR-TOUR", "promo_code": " spring25 "}, "spring-promo", ("percent_off", "25")),
    ],
)
async def test_the_first_matching_rule_gives_its_name_and_amount(cellars, guest, rule, off):
    answer = await cellars.discount(**guest)

    assert (answer.applies, answer.rule_name) == (True, rule)
    assert (answer.WhichOneof("discount"), getattr(answer, off[0])) == off
    assert answer.why


async def test_no_rule_matching_is_no_discount_and_says_why(cellars):
    # Ana's club rule is for the tasting only; Kit is in no club and of no type.
    ana = await cellars.discount(email=ANA["Email"], experience_sku="CELLAR-TOUR")
    kit = await cellars.discount(email=KIT["Email"], experience_sku="TASTING-FLIGHT", promo_code="WINTER10")

    for answer in (ana, kit):
        assert (answer.applies, answer.rule_name, answer.WhichOneof("discount")) == (False, "", None)
        assert answer.why


# ---- the cache --------------------------------------------------------------------------------


async def test_a_repeated_look_up_does_not_reach_vinsuite_again(cellars):
    june = {"FirstName": "June", "LastName": "Park", "Email": "june.park@example.com"}
    await cellars.seed(CORK, june)
    before = await cellars.vinsuite_calls(CORK, "GetMembers")

    first = await cellars.find(email=june["Email"])
    after_first = await cellars.vinsuite_calls(CORK, "GetMembers")
    again = await cellars.find(email=june["Email"])
    membership = await cellars.directory().GetClubMembership(
        pb.GetClubMembershipRequest(tenant_id=CORK, email=june["Email"])
    )

    assert [c.first_name for c in first.customers] == [c.first_name for c in again.customers] == ["June"]
    assert membership.known
    assert after_first == before + 1
    assert await cellars.vinsuite_calls(CORK, "GetMembers") == after_first


async def test_an_upsert_of_a_new_guest_replaces_a_cached_nobody(cellars):
    email = "lee.park@example.com"
    assert list((await cellars.find(email=email)).customers) == []  # "nobody", now cached

    upserted = await cellars.upsert(email)
    found = await cellars.find(email=email)

    assert upserted.created and upserted.account == CLUB
    assert [(c.member_id, c.first_name, c.last_name) for c in found.customers] == [(upserted.member_id, "Lee", "Park")]


async def test_a_retried_upsert_never_creates_a_second_member(cellars):
    faults = f"{cellars.vs}/_sim/faults"
    # VinSuite stores the member, then its answer is lost once: the connector repeats the call.
    await cellars.control("POST", faults, route="AddUpdateMember", status=503, after_create=True)
    once = await cellars.upsert("rio.vale@example.com", "Rio", "Vale")
    # Lost every time, until the caller gives up (UNAVAILABLE) and repeats the RPC later.
    await cellars.control("POST", faults, route="AddUpdateMember", status=503, after_create=True, count=20)
    try:
        lost = await refusal(cellars.upsert("sky.vale@example.com", "Sky", "Vale"))
    finally:
        await cellars.control("DELETE", faults)
    retried = await cellars.upsert("sky.vale@example.com", "Sky", "Vale")
    again = await cellars.upsert("SKY.Vale@example.com", "Sky", "Vale")

    assert lost.code() == grpc.StatusCode.UNAVAILABLE
    assert not retried.created and not again.created and retried.member_id == again.member_id
    [rio] = await cellars.members_with(CORK, "rio.vale@example.com")
    [sky] = await cellars.members_with(CORK, "sky.vale@example.com")
    assert (str(rio["MemberID"]), str(sky["MemberID"])) == (once.member_id, retried.member_id)


async def test_a_member_type_change_shows_once_the_member_types_are_synced(cellars):
    await cellars.sync_invite_lists(CORK)  # CellarPass has VinSuite's types so far
    [before] = (await cellars.find(email=TOM["Email"])).customers
    await cellars.seed(CORK, {**TOM, "MemberTypes": ["Trade", "Wholesale"]})  # a new type, at VinSuite
    [cached] = (await cellars.find(email=TOM["Email"])).customers

    mirror = await cellars.sync_invite_lists(CORK)
    [after] = (await cellars.find(email=TOM["Email"])).customers

    assert list(before.member_types) == list(cached.member_types) == ["Trade"]  # the cache held it
    assert list(mirror.created) == ["Wholesale"]
    assert list(after.member_types) == ["Trade", "Wholesale"]


# ---- VinSuite down ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["503", "refuse"])
async def test_with_vinsuite_down_a_guest_never_seen_is_unavailable_never_nobody(cellars, mode):
    email = f"down.{mode}@example.com"
    await cellars.seed(CORK, {"FirstName": "Max", "LastName": "Down", "Email": email,
                              "ClubMemberships": [{"ClubID": "7", "ClubName": "Reserve Club", "Status": "Active"}]})  # fmt: skip
    await cellars.vinsuite_down(mode)
    try:
        found = await refusal(cellars.find(email=email))
        discount = await refusal(cellars.discount(email=email, experience_sku="TASTING-FLIGHT"))
    finally:
        await cellars.vinsuite_down("up")

    assert found.code() == discount.code() == grpc.StatusCode.UNAVAILABLE
    assert "not found" not in found.details().lower() and "no discount" not in discount.details().lower()
    [max_down] = (await cellars.find(email=email)).customers
    answer = await cellars.discount(email=email, experience_sku="TASTING-FLIGHT")
    assert max_down.is_club_member and answer.rule_name == "club-members-tasting"


# ---- Test Login -------------------------------------------------------------------------------


async def cli_test_login(cellars, *arguments: str) -> tuple[int, str]:
    """The dispatch CLI's `test-login` for ridge-estate, as its operator runs it."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "fulfillment_dispatch.cli", "--addr"),
        *(cellars.stack.grpc_address("fulfillment_dispatch"), "--tenant", RIDGE, "test-login", *arguments),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "ORDERSYNC_ADMIN_TOKEN": cellars.stack.token(cellars.stack.operator(RIDGE))},
    )
    out, err = await process.communicate()
    return process.returncode, out.decode() + err.decode()


async def test_test_login_names_a_wrong_vinsuite_password_then_an_inactive_account_then_passes(cellars):
    club = cellars.stack.tenants[RIDGE].account(CLUB)
    await cellars.control("PATCH", cellars.winery(RIDGE), password="changed-at-vinsuite")
    try:
        wrong = (await cellars.login())[CLUB]
        wrong_cli = await cli_test_login(cellars)
        await cellars.control("PATCH", cellars.winery(RIDGE), password=club["password"], active=False)
        inactive = (await cellars.login())[CLUB]
    finally:
        await cellars.control("PATCH", cellars.winery(RIDGE), password=club["password"], active=True)

    assert wrong[:2] == (False, "CONNECTION_PROBLEM_BAD_CREDENTIALS")
    assert wrong[2].startswith("VinSuite refused the credentials of account 'club'")
    assert club["password"] not in wrong[2] and club["username"] not in wrong[2]
    assert inactive[:2] == (False, "CONNECTION_PROBLEM_ACCOUNT_INACTIVE")
    assert inactive[2].startswith("the web-service account of 'club' is not active with VinSuite")
    code, text = wrong_cli
    assert code == 1 and "FAILED (bad credentials): VinSuite refused the credentials" in text
    assert club["password"] not in text

    fixed = await cellars.login()
    code, text = await cli_test_login(cellars)
    assert fixed == {RESERVATIONS: (True, "CONNECTION_PROBLEM_UNSPECIFIED", ""),
                     CLUB: (True, "CONNECTION_PROBLEM_UNSPECIFIED", "")}  # fmt: skip
    assert code == 0 and "(2 account(s) checked, 0 failed)" in text


async def test_test_login_names_cellarpass_for_a_cellarpass_credential_problem(cellars):
    reservations = cellars.stack.tenants[RIDGE].account(RESERVATIONS)
    account_url = f"{cellars.cp}/_sim/accounts/{cellars.cellarpass_account(RIDGE)}"
    await cellars.control("PUT", account_url, account_id=cellars.cellarpass_account(RIDGE), api_key="cp-not-it")
    try:
        wrong_key = await cellars.login()
        await cellars.stack.update_account(RIDGE, RESERVATIONS, integration_enabled=False)
        disabled = await cellars.login()
    finally:
        await cellars.stack.update_account(RIDGE, RESERVATIONS, integration_enabled=True)

    for checks, problem in ((wrong_key, "BAD_CREDENTIALS"), (disabled, "ACCOUNT_INACTIVE")):
        ok, named, detail = checks[RESERVATIONS]
        assert (ok, named) == (False, f"CONNECTION_PROBLEM_{problem}")
        assert "CellarPass" in detail and "'reservations'" in detail and "VinSuite refused" not in detail
        assert reservations["api_key"] not in detail
        assert checks[CLUB][0], "VinSuite's login is fine"
    assert all(ok for ok, _, _ in (await cellars.login()).values())


# ---- invite lists -----------------------------------------------------------------------------


async def test_member_types_become_invite_lists_following_a_rename_and_a_removal(cellars):
    await cellars.control("POST", f"{cellars.cp}/_sim/customer-types", account_id=cellars.cellarpass_account(RIDGE),
                          types=[{"name": "Staff picks"}])  # fmt: skip

    first = await cellars.sync_invite_lists(RIDGE)

    assert (first.channel_account, first.provider_account) == (RESERVATIONS, CLUB)
    assert sorted(first.created) == ["Club Member", "Trade"]
    lists = await cellars.invite_lists(RIDGE)
    assert set(lists) == {"Staff picks", "Club Member", "Trade"} and lists["Staff picks"] == ""

    types = (await cellars.control("POST", f"{cellars.winery(RIDGE)}/member-types", names=[]))["member_types"]
    ids = {t["Name"]: t["MemberTypeID"] for t in types}
    await cellars.control("PATCH", f"{cellars.winery(RIDGE)}/member-types/{ids['Trade']}", name="Trade Partner")
    await cellars.control("DELETE", f"{cellars.winery(RIDGE)}/member-types/{ids['Club Member']}")

    second = await cellars.sync_invite_lists(RIDGE)

    assert [(r.old_name, r.new_name) for r in second.renamed] == [("Trade", "Trade Partner")]
    assert (list(second.removed), list(second.created)) == (["Club Member"], [])
    lists = await cellars.invite_lists(RIDGE)
    assert lists == {"Staff picks": "", "Trade Partner": str(ids["Trade"])}
    third = await cellars.sync_invite_lists(RIDGE)
    assert (list(third.created), list(third.renamed), list(third.removed)) == ([], [], [])
    assert list(third.unchanged) == ["Trade Partner"]


# ---- answer codes -----------------------------------------------------------------------------


async def test_refusals_carry_their_codes_over_the_stacks_grpc(cellars):
    malformed = await refusal(cellars.find(email="not-an-address"))
    other_tenant = await refusal(
        cellars.directory(caller=cellars.stack.operator(RIDGE)).FindCustomers(
            pb.FindCustomersRequest(tenant_id=CORK, email=ANA["Email"])
        )
    )
    no_token = await refusal(
        pb_grpc.CustomerDirectoryServiceStub(cellars.channel).FindCustomers(
            pb.FindCustomersRequest(tenant_id=CORK, email=ANA["Email"]), timeout=30
        )
    )
    no_token_admin = await refusal(
        admin_grpc.DirectoryAdminServiceStub(cellars.channel).TestLogin(
            admin_pb.TestLoginRequest(tenant_id=CORK), timeout=30
        )
    )

    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT and "email" in malformed.details()
    assert other_tenant.code() == grpc.StatusCode.PERMISSION_DENIED and CORK in other_tenant.details()
    assert no_token.code() == no_token_admin.code() == grpc.StatusCode.UNAUTHENTICATED
    assert [c.email for c in (await cellars.find(email=ANA["Email"])).customers] == [ANA["Email"]]  # OK
