"""Routing by the tenant's routes, one broken thing per test.

The first tests pin the Commerce7 → Vinoshipper outcomes as they were before routes existed
(the demo tenant's single route); the later ones cover what routes add.
"""

from dataclasses import replace

from compliance_routing.domain.routing import Kind, Outcome, RouteRules, RoutingInput, decide

WEB = RouteRules(
    name="wine-clubs-and-web",
    provider="vinoshipper",
    provider_account="wine-shipping",
    order_kinds=frozenset({"shipping"}),
    ship_to_states=frozenset({"CA", "OR", "NY"}),
)


def shipping_order(**changes) -> RoutingInput:
    """A shipping order to a chosen state, from a store with one route to Vinoshipper: it is sent."""
    return replace(RoutingInput(Kind.SHIPPING, "CA", "US", "store", (WEB,)), **changes)


def test_shipping_order_to_a_chosen_state_is_routed_to_vinoshipper_by_its_route():
    decision = decide(shipping_order())
    assert (decision.outcome, decision.provider, decision.provider_account, decision.reason_code) == (
        Outcome.ROUTE,
        "vinoshipper",
        "wine-shipping",
        "SHIPPING_TO_CHOSEN_STATE",
    )
    assert (decision.route, decision.rule) == ("wine-clubs-and-web", "ship_to_states")
    assert decision.reason == "shipping order to CA by route 'wine-clubs-and-web'"


def test_state_code_case_does_not_matter():
    assert decide(shipping_order(ship_to_state="ca")).outcome is Outcome.ROUTE


def test_shipping_order_to_a_state_not_chosen_is_not_required_and_names_the_route_and_its_states():
    decision = decide(shipping_order(ship_to_state="NV"))
    assert (decision.outcome, decision.reason_code, decision.rule, decision.route) == (
        Outcome.NOT_REQUIRED,
        "STATE_NOT_CHOSEN",
        "ship_to_states",
        "",
    )
    assert "NV" in decision.reason and "'wine-clubs-and-web'" in decision.reason and "(CA, NY, OR)" in decision.reason


def test_pickup_order_is_not_required_to_send():
    decision = decide(shipping_order(kind=Kind.PICKUP, ship_to_state=""))
    assert (decision.outcome, decision.reason_code, decision.rule) == (
        Outcome.NOT_REQUIRED,
        "PICKUP_ORDER",
        "order_kinds",
    )


def test_carry_out_order_is_not_required_to_send():
    decision = decide(shipping_order(kind=Kind.CARRY_OUT))
    assert (decision.outcome, decision.reason_code) == (Outcome.NOT_REQUIRED, "CARRY_OUT_ORDER")


def test_reservation_is_not_required_to_send():
    decision = decide(shipping_order(kind=Kind.RESERVATION))
    assert (decision.outcome, decision.reason_code) == (Outcome.NOT_REQUIRED, "RESERVATION_ORDER")


def test_refund_is_never_sent_even_to_a_chosen_state():
    decision = decide(shipping_order(kind=Kind.REFUND))
    assert (decision.outcome, decision.reason_code, decision.rule) == (
        Outcome.NOT_SENT,
        "REFUND_NOT_SENT",
        "never_sent",
    )


def test_exchange_is_never_sent_and_says_to_place_a_new_order():
    decision = decide(shipping_order(kind=Kind.EXCHANGE))
    assert (decision.outcome, decision.reason_code, decision.rule) == (
        Outcome.NOT_SENT,
        "EXCHANGE_NOT_SENT",
        "never_sent",
    )
    assert "new order" in decision.reason


def test_channel_account_without_routes_keeps_its_orders_and_names_the_account():
    decision = decide(shipping_order(routes=()))
    assert (decision.outcome, decision.reason_code, decision.rule) == (Outcome.NOT_REQUIRED, "NO_PROVIDER", "no_route")
    assert decision.reason == "the tenant has no route from channel account 'store'"


def test_pickup_of_a_channel_account_without_routes_is_still_a_pickup():
    decision = decide(shipping_order(kind=Kind.PICKUP, routes=()))
    assert decision.reason_code == "PICKUP_ORDER"


def test_missing_ship_to_state_is_not_routed():
    decision = decide(shipping_order(ship_to_state=""))
    assert decision.outcome is Outcome.NOT_REQUIRED
    assert "(missing)" in decision.reason


# ---- what routes add ----------------------------------------------------------------------

WEST = RouteRules(
    name="west-coast",
    provider="vinoshipper",
    provider_account="west-warehouse",
    order_kinds=frozenset({"shipping"}),
    ship_to_states=frozenset({"CA", "OR", "WA"}),
)
EAST = RouteRules(
    name="east-coast",
    provider="mintsoft",
    provider_account="east-warehouse",
    order_kinds=frozenset({"shipping"}),
    ship_to_states=frozenset({"NY", "NJ"}),
)


def test_a_tenant_with_two_routes_sends_each_order_by_the_route_taking_its_state_and_names_it():
    west = decide(shipping_order(ship_to_state="OR", routes=(WEST, EAST)))
    east = decide(shipping_order(ship_to_state="NJ", routes=(WEST, EAST)))
    assert (west.outcome, west.route, west.provider, west.provider_account) == (
        Outcome.ROUTE,
        "west-coast",
        "vinoshipper",
        "west-warehouse",
    )
    assert (east.outcome, east.route, east.provider, east.provider_account) == (
        Outcome.ROUTE,
        "east-coast",
        "mintsoft",
        "east-warehouse",
    )
    assert east.reason == "shipping order to NJ by route 'east-coast'"


def test_a_state_no_route_takes_names_every_route_and_all_their_states():
    decision = decide(shipping_order(ship_to_state="TX", routes=(WEST, EAST)))
    assert (decision.outcome, decision.reason_code) == (Outcome.NOT_REQUIRED, "STATE_NOT_CHOSEN")
    assert "routes 'west-coast' and 'east-coast'" in decision.reason
    assert "(CA, NJ, NY, OR, WA)" in decision.reason


def test_the_first_matching_route_wins():
    everywhere = replace(EAST, name="everything-else", ship_to_states=None)
    first = decide(shipping_order(ship_to_state="CA", routes=(WEST, everywhere)))
    reversed_order = decide(shipping_order(ship_to_state="CA", routes=(everywhere, WEST)))
    assert first.route == "west-coast"
    assert reversed_order.route == "everything-else"


def test_a_route_without_destination_rules_takes_every_order_of_its_kinds():
    anywhere = replace(WEB, ship_to_states=None)
    decision = decide(shipping_order(ship_to_state="TX", routes=(anywhere,)))
    assert (decision.outcome, decision.reason_code, decision.rule, decision.route) == (
        Outcome.ROUTE,
        "ROUTE_MATCHED",
        "order_kinds",
        "wine-clubs-and-web",
    )


def test_a_route_listing_pickups_sends_them():
    pickups = replace(WEB, name="pickups", order_kinds=frozenset({"pickup"}), ship_to_states=None)
    decision = decide(shipping_order(kind=Kind.PICKUP, routes=(WEB, pickups)))
    assert (decision.outcome, decision.route, decision.rule) == (Outcome.ROUTE, "pickups", "order_kinds")


def test_a_route_listing_refunds_sends_them_and_other_refunds_are_still_never_sent():
    refunds = replace(WEB, name="returns", order_kinds=frozenset({"refund"}))
    sent = decide(shipping_order(kind=Kind.REFUND, routes=(refunds,)))
    elsewhere = decide(shipping_order(kind=Kind.REFUND, ship_to_state="TX", routes=(refunds,)))
    assert (sent.outcome, sent.route) == (Outcome.ROUTE, "returns")
    assert (elsewhere.outcome, elsewhere.reason_code) == (Outcome.NOT_SENT, "REFUND_NOT_SENT")


def test_shipping_order_when_the_accounts_routes_take_other_kinds_only_is_not_required():
    pickups = replace(WEB, name="pickups", order_kinds=frozenset({"pickup"}), ship_to_states=None)
    decision = decide(shipping_order(routes=(pickups,)))
    assert (decision.outcome, decision.reason_code, decision.rule) == (
        Outcome.NOT_REQUIRED,
        "ORDER_KIND_NOT_ROUTED",
        "order_kinds",
    )
    assert "'pickups'" in decision.reason


def test_route_by_country_routes_and_names_the_rule():
    us = replace(WEB, name="us", ship_to_states=None, ship_to_countries=frozenset({"US"}))
    decision = decide(shipping_order(ship_to_state="TX", ship_to_country="us", routes=(us,)))
    assert (decision.outcome, decision.reason_code, decision.rule) == (
        Outcome.ROUTE,
        "ROUTE_MATCHED",
        "ship_to_countries",
    )
    assert decision.reason == "shipping order to US by route 'us'"


def test_a_country_no_route_takes_is_not_chosen_and_named():
    us = replace(WEB, name="us", ship_to_countries=frozenset({"US"}))
    decision = decide(shipping_order(ship_to_state="BC", ship_to_country="CA", routes=(us,)))
    assert (decision.outcome, decision.reason_code, decision.rule) == (
        Outcome.NOT_REQUIRED,
        "COUNTRY_NOT_CHOSEN",
        "ship_to_countries",
    )
    assert "CA" in decision.reason and "'us'" in decision.reason and "(US)" in decision.reason


def test_a_state_miss_is_named_before_a_country_miss():
    us = replace(WEB, name="us", ship_to_countries=frozenset({"US"}))
    canada = replace(WEB, name="canada", ship_to_states=None, ship_to_countries=frozenset({"CA"}))
    decision = decide(shipping_order(ship_to_state="TX", routes=(us, canada)))
    assert decision.reason_code == "STATE_NOT_CHOSEN"
    assert "route 'us'" in decision.reason and "canada" not in decision.reason
