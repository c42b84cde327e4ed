"""The invite-list mirror's rules, pure: what a pass creates, renames, removes and leaves, and
which channel account mirrors which directory account."""

from __future__ import annotations

from fulfillment_dispatch.domain.invite_lists import plan_mirror
from fulfillment_dispatch.invite_lists import MirrorPair, mirror_pairs
from libs.connectors.base.contract import InviteList, MemberType
from libs.connectors.registry import Registry
from libs.platform.tenants import Account, Route, Tenant
from services.fulfillment_dispatch.tests.directory_vendors import (
    ClubDirectory,
    DirectoryAccount,
    ListsAccount,
    ListShop,
)
from services.fulfillment_dispatch.tests.fake_warehouse import FakeWarehouse, Warehouse, WarehouseAccount

CLUB, GOLD = MemberType("T1", "Club Member"), MemberType("T2", "Wine Club Gold")


def test_types_without_lists_are_created_and_lists_without_types_removed():
    plan = plan_mirror([CLUB, GOLD], [InviteList("L1", "Club Member", "T1"), InviteList("L9", "Trade", "T9")])

    assert plan.create == (GOLD,)
    assert plan.remove == (InviteList("L9", "Trade", "T9"),)
    assert plan.unchanged == (InviteList("L1", "Club Member", "T1"),)
    assert (plan.rename, plan.changes) == ((), 2)


def test_a_list_whose_type_was_renamed_is_renamed_not_replaced():
    plan = plan_mirror([CLUB], [InviteList("L1", "Club Members", "T1")])

    assert plan.rename == ((InviteList("L1", "Club Members", "T1"), CLUB),)
    assert (plan.create, plan.remove) == ((), ())


def test_the_staffs_lists_are_never_in_the_plan_even_named_like_a_type():
    staff = [InviteList("S1", "Club Member"), InviteList("S2", "Old type we deleted")]

    plan = plan_mirror([CLUB], staff)

    assert plan.create == (CLUB,)
    assert (plan.rename, plan.remove, plan.unchanged) == ((), (), ())


def test_nothing_to_do_when_every_type_has_its_list():
    plan = plan_mirror([CLUB, GOLD], [InviteList("L2", "Wine Club Gold", "T2"), InviteList("L1", "Club Member", "T1")])

    assert plan.changes == 0
    assert len(plan.unchanged) == 2


def test_a_type_mirrored_twice_keeps_the_list_with_its_name_and_removes_the_other():
    plan = plan_mirror([CLUB], [InviteList("L1", "Club Members", "T1"), InviteList("L2", "Club Member", "T1")])

    assert plan.unchanged == (InviteList("L2", "Club Member", "T1"),)
    assert plan.remove == (InviteList("L1", "Club Members", "T1"),)
    assert plan.rename == ()


def test_a_type_listed_twice_counts_once_and_a_type_without_id_not_at_all():
    plan = plan_mirror([CLUB, MemberType("T1", "Club Member again"), MemberType("", "Nameless")], [])

    assert plan.create == (CLUB,)


def test_no_types_left_removes_every_mirrored_list_and_only_those():
    plan = plan_mirror([], [InviteList("L1", "Club Member", "T1"), InviteList("S1", "Staff picks")])

    assert plan.remove == (InviteList("L1", "Club Member", "T1"),)


# ---- pairs


REGISTRY = Registry([ListShop(), ClubDirectory(), FakeWarehouse("warehouse", Warehouse())])


def shop(name: str) -> Account:
    return Account(name, "listshop", ListsAccount("http://shop.invalid", "k"))


def club(name: str) -> Account:
    return Account(name, "clubdirectory", DirectoryAccount("http://club.invalid", "u", "p"))


def route(channel: str, provider: str) -> Route:
    return Route(f"{channel}-{provider}", channel, provider, order_kinds=frozenset({"reservation"}))


def tenant(accounts: list[Account], routes: list[Route]) -> Tenant:
    return Tenant("acme", {a.name: a for a in accounts}, tuple(routes))


def test_a_channel_mirrors_the_directory_of_its_first_route_reaching_one():
    warehouse = Account("warehouse", "warehouse", WarehouseAccount("W"))
    accounts = [shop("store"), warehouse, club("club-a"), club("club-b")]
    routes = [route("store", "warehouse"), route("store", "club-b"), route("store", "club-a")]

    assert mirror_pairs(tenant(accounts, routes), REGISTRY) == [MirrorPair("store", "club-b")]


def test_a_channel_without_a_route_mirrors_the_tenants_only_directory():
    accounts = [shop("store"), shop("events"), club("club")]

    pairs = mirror_pairs(tenant(accounts, [route("store", "club")]), REGISTRY)

    assert pairs == [MirrorPair("store", "club"), MirrorPair("events", "club")]


def test_a_channel_without_a_route_and_two_directories_mirrors_none():
    accounts = [shop("store"), club("club-a"), club("club-b")]

    assert mirror_pairs(tenant(accounts, []), REGISTRY) == []


def test_accounts_of_connectors_without_the_capabilities_or_unknown_ones_pair_with_nothing():
    accounts = [Account("store", "retired", None), Account("warehouse", "warehouse", WarehouseAccount("W")), club("c")]

    assert mirror_pairs(tenant(accounts, [route("store", "c")]), REGISTRY) == []
