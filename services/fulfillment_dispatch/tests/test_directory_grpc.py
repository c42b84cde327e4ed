"""The customer look-up API over real gRPC, with real Postgres (the shared rate budget, the NOTIFY
that invalidates every replica's cache) and a stand-in directory over real HTTP
(directory_server.py): every RPC and refusal, the cache and its invalidation, single flight,
a directory that cannot answer, and the tenant's discount rules."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from contextlib import asynccontextmanager

import grpc
import pytest
import pytest_asyncio
from aiohttp import web
from ordersync.common.v1 import order_pb2
from ordersync.directory.v1 import directory_service_pb2 as pb
from ordersync.directory.v1 import directory_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.directory.cache import DirectoryCache
from fulfillment_dispatch.directory.invalidation import DirectoryChangeListener, announce_directory_change
from fulfillment_dispatch.directory.lookups import CustomerLookups
from fulfillment_dispatch.directory.servicer import directory_binding
from libs.connectors.base.contract import ClientResources
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.auth import bearer
from libs.platform.db import create_pool
from libs.platform.discounts import parse_discount_rules
from libs.platform.grpc_server import GrpcServer
from libs.platform.rate_budgets import SharedRateLimiter
from libs.platform.tenants import Account, Tenant, TenantDirectory
from libs.platform.testing import ACME_READER, ALL_READER, GLOBEX_OPERATOR, access_for_tests, serving
from services.fulfillment_dispatch.tests.directory_server import (
    DirectorySettings,
    DirectoryState,
    TestDirectoryConnector,
    create_app,
)
from services.fulfillment_dispatch.tests.fake_provider import FakeAccount, FakeProvider, FakeVendor

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
SCHEMA = "fulfillment_dispatch"
RULES = [
    {"name": "club-members-tasting", "when_club": "Reserve Club", "experiences": ["TASTING-FLIGHT"],
     "percent_off": "20"},
    {"name": "trade-guests", "when_customer_type": "Trade", "amount_off": "10.00"},
    {"name": "spring-promo", "when_promo_code": "SPRING25", "percent_off": "25"},
]  # fmt: skip


@asynccontextmanager
async def directory_http(state: DirectoryState):
    runner = web.AppRunner(create_app(state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def tenants(url: str) -> TenantDirectory:
    """acme: one directory account and the rules above. globex: a provider without a directory.
    initech: two directory accounts. umbrella: a directory account with a wrong password."""
    account = Account("vinsuite", "testdirectory", DirectorySettings(url, requests_per_minute=6000))
    wrong = DirectorySettings(url, password="not-it", requests_per_minute=6000)
    return TenantDirectory(
        {
            "acme": Tenant("acme", {"vinsuite": account}, discount_rules=parse_discount_rules("acme", RULES)),
            "globex": Tenant("globex", {"ship": Account("ship", "fake", FakeAccount("G"))}),
            "initech": Tenant("initech", {name: Account(name, "testdirectory", account.settings) for name in "ab"}),
            "umbrella": Tenant("umbrella", {"vinsuite": Account("vinsuite", "testdirectory", wrong)}),
        }
    )


def shared_budget(pool) -> ClientResources:
    """Account clients paced by the budget every replica shares, as dispatch's are."""

    def limiter(scope: str, per_minute: int, burst: int) -> SharedRateLimiter:
        return SharedRateLimiter(lambda: pool, scope=scope, rate_per_minute=per_minute, burst=burst)

    return ClientResources(max_concurrency=8, rate_limiter=limiter)


class Replica:
    """One dispatch process's look-up API: its own pool, cache, listener and gRPC server."""

    def __init__(self, pool, accounts: AccountClients):
        self.cache = DirectoryCache(ttl_s=300, negative_ttl_s=30)
        self.listener = DirectoryChangeListener(pool, SCHEMA, self.cache)
        announce = lambda tenant_id: announce_directory_change(pool, SCHEMA, tenant_id)  # noqa: E731
        self.lookups = CustomerLookups(accounts, self.cache, announce=announce, timeout_s=3.0)
        self.stub: pb_grpc.CustomerDirectoryServiceStub


class World:
    def __init__(self, state: DirectoryState, replicas: list[Replica]):
        self.state = state
        self.replicas = replicas
        self.stub = replicas[0].stub


@pytest_asyncio.fixture
async def world(pool, database):
    state = DirectoryState()
    state.add("Ana", "Reyes", "ana@example.com", types=["Club Member"],
              clubs=[("7", "Reserve Club", "Active"), ("9", "Library Club", "Cancelled")])  # fmt: skip
    state.add("Tom", "Reyes", "tom@example.com", types=["Trade"])
    registry = Registry([TestDirectoryConnector(), FakeProvider("fake", FakeVendor())])
    second_pool = await create_pool(database, SCHEMA, 2)
    async with directory_http(state) as url:
        directory = tenants(url)
        replicas, clients = [], []
        for replica_pool in (pool, second_pool):
            accounts = AccountClients(directory, registry, shared_budget(replica_pool))
            clients.append(accounts)
            replicas.append(Replica(replica_pool, accounts))
        access = access_for_tests()
        async with (
            serving(directory_binding(replicas[0].lookups, access)) as first,
            serving(directory_binding(replicas[1].lookups, access)) as second,
        ):
            for replica, channel in zip(replicas, (first, second), strict=True):
                replica.stub = pb_grpc.CustomerDirectoryServiceStub(channel)
                await replica.listener.start()
                await asyncio.wait_for(replica.listener.listening.wait(), 10)
            try:
                yield World(state, replicas)
            finally:
                for replica in replicas:
                    await replica.listener.stop()
                for accounts in clients:
                    await accounts.stop()
    await second_pool.close()


def find(stub, token=ACME_READER, **fields):
    return stub.FindCustomers(pb.FindCustomersRequest(tenant_id="acme", **fields), metadata=bearer(token), timeout=10)


def discount(stub, **fields):
    request = pb.ResolveDiscountRequest(tenant_id="acme", **fields)
    return stub.ResolveDiscount(request, metadata=bearer(ACME_READER), timeout=10)


def upsert(stub, email: str, first: str = "Lee", last: str = "Park"):
    customer = order_pb2.Customer(first_name=first, last_name=last, email=email, phone="707-555-0100")
    request = pb.UpsertCustomerRequest(tenant_id="acme", customer=customer)
    return stub.UpsertCustomer(request, metadata=bearer(ACME_READER), timeout=10)


async def until(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait for `check` to hold (a bound against hanging, not a speed assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.01)


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


# ---- look-ups ---------------------------------------------------------------------------------


async def test_a_member_is_found_by_email_whatever_its_case_with_types_and_clubs(world):
    found = await find(world.stub, email="ANA@Example.com")

    assert found.account == "vinsuite"
    [ana] = found.customers
    assert (ana.first_name, ana.last_name, ana.email, ana.is_club_member) == ("Ana", "Reyes", "ana@example.com", True)
    assert list(ana.member_types) == ["Club Member"]
    assert [(c.club_name, c.status) for c in ana.clubs] == [("Reserve Club", "Active"), ("Library Club", "Cancelled")]


async def test_the_back_offices_match_finds_every_member_of_a_last_name(world):
    found = await find(world.stub, last_name="reyes")

    assert sorted(c.first_name for c in found.customers) == ["Ana", "Tom"]
    assert {c.email: c.is_club_member for c in found.customers} == {"ana@example.com": True, "tom@example.com": False}


async def test_a_guest_the_directory_does_not_know_is_an_empty_answer(world):
    found = await find(world.stub, email="nobody@example.com")

    assert list(found.customers) == []


async def test_club_membership_lists_only_active_clubs(world):
    request = pb.GetClubMembershipRequest(tenant_id="acme", email="ana@example.com")
    ana = await world.stub.GetClubMembership(request, metadata=bearer(ACME_READER), timeout=10)
    unknown = await world.stub.GetClubMembership(
        pb.GetClubMembershipRequest(tenant_id="acme", email="new@example.com"), metadata=bearer(ACME_READER)
    )
    tom = await world.stub.GetClubMembership(
        pb.GetClubMembershipRequest(tenant_id="acme", email="tom@example.com"), metadata=bearer(ACME_READER)
    )

    assert (ana.known, ana.is_club_member, [c.club_name for c in ana.active_clubs]) == (True, True, ["Reserve Club"])
    assert (unknown.known, unknown.is_club_member, list(unknown.active_clubs)) == (False, False, [])
    assert (tom.known, tom.is_club_member) == (True, False)


# ---- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "give an email or a last_name"),
        ({"email": "not-an-address"}, "email must be an e-mail address"),
        ({"email": "ana@"}, "email must be an e-mail address"),
    ],
)
async def test_a_look_up_without_a_usable_email_or_last_name_is_invalid(world, fields, says):
    error = await refusal(find(world.stub, **fields))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in error.details()


async def test_club_membership_and_upsert_need_an_email(world):
    membership = await refusal(
        world.stub.GetClubMembership(pb.GetClubMembershipRequest(tenant_id="acme"), metadata=bearer(ACME_READER))
    )
    upserted = await refusal(upsert(world.stub, ""))

    assert membership.code() == upserted.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_tenants_and_accounts_are_not_found(world):
    tenant = await refusal(
        world.stub.FindCustomers(
            pb.FindCustomersRequest(tenant_id="hooli", email="ana@example.com"), metadata=bearer(ALL_READER)
        )
    )
    account = await refusal(find(world.stub, account="elsewhere", email="ana@example.com"))

    assert tenant.code() == account.code() == grpc.StatusCode.NOT_FOUND
    assert tenant.details() == "tenant 'hooli' is not configured"
    assert account.details() == "tenant 'acme' has no account 'elsewhere'"


@pytest.mark.parametrize(
    ("tenant_id", "account", "says"),
    [
        ("globex", "ship", "account 'ship' (fake) has no customer directory"),
        ("globex", "", "tenant 'globex' has 0 accounts with a customer directory (none): name one"),
        ("initech", "", "tenant 'initech' has 2 accounts with a customer directory ('a', 'b'): name one"),
    ],
)
async def test_an_account_without_a_directory_or_no_single_one_is_a_failed_precondition(
    world, tenant_id, account, says
):
    request = pb.FindCustomersRequest(tenant_id=tenant_id, account=account, email="ana@example.com")
    error = await refusal(world.stub.FindCustomers(request, metadata=bearer(ALL_READER)))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == says


async def test_a_named_one_of_several_directory_accounts_answers(world):
    request = pb.FindCustomersRequest(tenant_id="initech", account="b", email="ana@example.com")
    found = await world.stub.FindCustomers(request, metadata=bearer(ALL_READER))

    assert (found.account, len(found.customers)) == ("b", 1)


async def test_credentials_the_directory_refuses_are_a_failed_precondition_with_its_reason(world):
    request = pb.FindCustomersRequest(tenant_id="umbrella", email="ana@example.com")
    error = await refusal(world.stub.FindCustomers(request, metadata=bearer(ALL_READER)))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Invalid username or password" in error.details()


def every_call(stub, token):
    meta = bearer(token)
    customer = order_pb2.Customer(email="ana@example.com")
    return [
        stub.FindCustomers(pb.FindCustomersRequest(tenant_id="acme", email="ana@example.com"), metadata=meta),
        stub.GetClubMembership(pb.GetClubMembershipRequest(tenant_id="acme", email="ana@example.com"), metadata=meta),
        stub.ResolveDiscount(pb.ResolveDiscountRequest(tenant_id="acme", email="ana@example.com"), metadata=meta),
        stub.UpsertCustomer(pb.UpsertCustomerRequest(tenant_id="acme", customer=customer), metadata=meta),
    ]


async def test_every_rpc_refuses_unknown_callers_and_callers_of_other_tenants(world):
    for token, code in ((None, grpc.StatusCode.UNAUTHENTICATED), ("guessed", grpc.StatusCode.UNAUTHENTICATED),
                        (GLOBEX_OPERATOR, grpc.StatusCode.PERMISSION_DENIED)):  # fmt: skip
        for call in every_call(world.stub, token):
            error = await refusal(call)
            assert error.code() == code
            assert "guessed" not in error.details()
    assert sum(world.state.calls.values()) == 0


# ---- the directory cannot answer --------------------------------------------------------------


async def test_a_directory_that_is_down_is_unavailable_never_not_a_member(world):
    world.state.down = True

    for call in every_call(world.stub, ACME_READER)[:3]:
        error = await refusal(call)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    never_seen = await refusal(find(world.stub, email="first-time@example.com"))
    upserted = await refusal(upsert(world.stub, "lee@example.com"))

    assert never_seen.code() == upserted.code() == grpc.StatusCode.UNAVAILABLE
    world.state.down = False
    assert len((await find(world.stub, email="ana@example.com")).customers) == 1  # errors were not cached


async def test_a_directory_that_does_not_answer_in_time_is_unavailable(world):
    world.state.gate = asyncio.Event()  # never set: every answer waits

    error = await refusal(find(world.stub, email="ana@example.com"))

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "did not answer within 3 s" in error.details()
    world.state.gate.set()


# ---- the cache --------------------------------------------------------------------------------


async def test_a_repeated_look_up_is_answered_from_the_cache(world):
    first = await find(world.stub, email="ana@example.com")
    again = await find(world.stub, email="Ana@Example.COM")
    membership = await world.stub.GetClubMembership(
        pb.GetClubMembershipRequest(tenant_id="acme", email="ana@example.com"), metadata=bearer(ACME_READER)
    )

    assert first == again
    assert membership.is_club_member
    assert world.state.calls["GetMembers"] == 1
    stats = world.replicas[0].cache.stats
    assert (stats.misses, stats.hits) == (1, 2)


async def test_concurrent_misses_of_one_key_make_one_directory_call(world):
    world.state.gate = asyncio.Event()
    calls = [asyncio.ensure_future(find(world.stub, email="ana@example.com")) for _ in range(10)]
    await until(lambda: world.replicas[0].cache.stats.coalesced == 9, "nine look-ups wait on the first")

    world.state.gate.set()
    answers = await asyncio.gather(*calls)

    assert {len(a.customers) for a in answers} == {1}
    assert world.state.calls["GetMembers"] == 1


async def test_an_upsert_shows_the_new_member_to_the_next_look_up(world):
    before = await find(world.stub, email="lee@example.com")

    created = await upsert(world.stub, "lee@example.com")
    after = await find(world.stub, email="lee@example.com")
    again = await upsert(world.stub, "LEE@example.com", first="Leah")

    assert list(before.customers) == []
    assert created.created and created.account == "vinsuite"
    assert [c.member_id for c in after.customers] == [created.member_id]
    assert (again.member_id, again.created) == (created.member_id, False)  # matched on e-mail
    assert len([m for m in world.state.members if m == "lee@example.com"]) == 1


async def test_an_upsert_in_one_replica_clears_the_others_cache(world):
    first, second = world.replicas
    assert list((await find(second.stub, email="lee@example.com")).customers) == []
    invalidations = second.cache.stats.invalidations

    created = await upsert(first.stub, "lee@example.com")
    await until(lambda: second.cache.stats.invalidations > invalidations, "the NOTIFY reaches the other replica")
    after = await find(second.stub, email="lee@example.com")

    assert [c.member_id for c in after.customers] == [created.member_id]


async def test_an_announced_member_type_sync_clears_every_replicas_entries_of_that_tenant(world, pool):
    for replica in world.replicas:
        await find(replica.stub, email="tom@example.com")
    world.state.members["tom@example.com"]["MemberTypes"] = ["Trade", "Wholesale"]

    async with pool.acquire() as conn:
        await announce_directory_change(conn, SCHEMA, "acme")
    for replica in world.replicas:
        cache = replica.cache
        await until(lambda: len(cache) == 0, "the NOTIFY empties the replica's cache")  # noqa: B023
        [tom] = (await find(replica.stub, email="tom@example.com")).customers
        assert list(tom.member_types) == ["Trade", "Wholesale"]


# ---- discounts --------------------------------------------------------------------------------


async def test_a_club_member_booking_the_rules_experience_gets_the_club_discount(world):
    answer = await discount(world.stub, email="ana@example.com", experience_sku="TASTING-FLIGHT")

    assert (answer.applies, answer.rule_name, answer.WhichOneof("discount"), answer.percent_off) == (
        True, "club-members-tasting", "percent_off", "20"
    )  # fmt: skip
    assert answer.why == (
        "rule 'club-members-tasting' applies: experience TASTING-FLIGHT is one of the rule's; "
        "the guest is an active member of Reserve Club"
    )


async def test_a_directory_member_type_gets_the_customer_type_discount(world):
    answer = await discount(world.stub, email="tom@example.com", experience_sku="TASTING-FLIGHT")

    assert (answer.rule_name, answer.amount_off) == ("trade-guests", "10.00")
    assert answer.why == "rule 'trade-guests' applies: the directory lists the guest as Trade"


async def test_a_customer_type_the_caller_gives_counts_without_the_directory(world):
    world.state.down = True

    answer = await discount(world.stub, customer_types=["trade"], experience_sku="CAVE-TOUR")

    assert (answer.rule_name, answer.amount_off) == ("trade-guests", "10.00")
    assert answer.why == "rule 'trade-guests' applies: the caller gave customer type Trade"


async def test_a_promo_code_applies_when_no_earlier_rule_does(world):
    answer = await discount(world.stub, email="new@example.com", experience_sku="CAVE-TOUR", promo_code="spring25")

    assert (answer.rule_name, answer.percent_off) == ("spring-promo", "25")
    assert answer.why == "rule 'spring-promo' applies: promo code SPRING25 was given"


async def test_no_rule_matching_says_what_the_directory_knows(world):
    answer = await discount(world.stub, email="ana@example.com", experience_sku="CAVE-TOUR")

    assert (answer.applies, answer.rule_name, answer.WhichOneof("discount")) == (False, "", None)
    assert answer.why == (
        "none of the tenant's 3 discount rule(s) applies to this guest and experience; the directory knows "
        "the guest (active clubs: Reserve Club; member types: Club Member)"
    )


async def test_a_club_rule_the_directory_cannot_decide_is_unavailable(world):
    world.state.down = True

    error = await refusal(discount(world.stub, email="ana@example.com", experience_sku="TASTING-FLIGHT"))

    assert error.code() == grpc.StatusCode.UNAVAILABLE


# ---- the CLI ----------------------------------------------------------------------------------


async def test_the_cli_finds_a_customer_by_email_and_by_last_name(world):
    server = GrpcServer([directory_binding(world.replicas[0].lookups, access_for_tests())], host="127.0.0.1")
    await server.start()
    try:
        by_email = await cli(f"127.0.0.1:{server.port}", "find-customer", "acme", "ana@example.com")
        by_name = await cli(f"127.0.0.1:{server.port}", "find-customer", "acme", "Reyes")
        refused = await cli(f"127.0.0.1:{server.port}", "find-customer", "acme", "ana@", "--account", "x")
    finally:
        await server.stop(0)

    out, _, code = by_email
    assert code == 0
    assert "Ana Reyes" in out and "Club Member; Reserve Club (Active), Library Club (Cancelled)" in out
    assert out.splitlines()[-1] == "(1 customer(s) in vinsuite)"
    assert by_name[0].splitlines()[-1] == "(2 customer(s) in vinsuite)"
    assert refused[2] == 1 and "INVALID_ARGUMENT" in refused[1]


async def cli(address: str, *args: str) -> tuple[str, str, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fulfillment_dispatch.cli", "--addr", address, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ORDERSYNC_ADMIN_TOKEN": ACME_READER},
    )  # fmt: skip
    out, err = await process.communicate()
    return out.decode(), err.decode(), process.returncode or 0


async def test_a_discount_for_a_malformed_email_or_an_unknown_tenant_is_refused(world):
    malformed = await refusal(discount(world.stub, email="ana@", experience_sku="TASTING-FLIGHT"))
    unknown = await refusal(
        world.stub.ResolveDiscount(pb.ResolveDiscountRequest(tenant_id="hooli"), metadata=bearer(ALL_READER))
    )

    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert world.state.calls["GetMembers"] == 0
