"""Routing rules of the Commerce7 → Vinoshipper integration, one broken thing per test."""

from dataclasses import replace

from compliance_routing.domain.routing import Kind, Outcome, RoutingInput, decide

CHOSEN = frozenset({"CA", "OR", "NY"})


def shipping_order(**changes) -> RoutingInput:
    """A shipping order to a chosen state, for a tenant with Vinoshipper: the one that is sent."""
    return replace(RoutingInput(Kind.SHIPPING, "CA", CHOSEN, "vinoshipper"), **changes)


def test_shipping_order_to_a_chosen_state_is_routed_to_vinoshipper():
    decision = decide(shipping_order())
    assert (decision.outcome, decision.provider, decision.reason_code) == (
        Outcome.ROUTE,
        "vinoshipper",
        "SHIPPING_TO_CHOSEN_STATE",
    )


def test_state_code_case_does_not_matter():
    assert decide(shipping_order(ship_to_state="ca")).outcome is Outcome.ROUTE


def test_shipping_order_to_a_state_not_chosen_is_not_required_and_names_the_states():
    decision = decide(shipping_order(ship_to_state="NV"))
    assert decision.outcome is Outcome.NOT_REQUIRED
    assert decision.reason_code == "STATE_NOT_CHOSEN"
    assert "NV" in decision.reason and "CA, NY, OR" in decision.reason


def test_pickup_order_is_not_required_to_send():
    decision = decide(shipping_order(kind=Kind.PICKUP, ship_to_state=""))
    assert (decision.outcome, decision.reason_code) == (Outcome.NOT_REQUIRED, "PICKUP_ORDER")


def test_carry_out_order_is_not_required_to_send():
    decision = decide(shipping_order(kind=Kind.CARRY_OUT))
    assert (decision.outcome, decision.reason_code) == (Outcome.NOT_REQUIRED, "CARRY_OUT_ORDER")


def test_refund_is_never_sent_even_to_a_chosen_state():
    decision = decide(shipping_order(kind=Kind.REFUND))
    assert (decision.outcome, decision.reason_code) == (Outcome.NOT_SENT, "REFUND_NOT_SENT")


def test_exchange_is_never_sent_and_says_to_place_a_new_order():
    decision = decide(shipping_order(kind=Kind.EXCHANGE))
    assert decision.outcome is Outcome.NOT_SENT
    assert "new order" in decision.reason


def test_tenant_without_provider_keeps_its_orders():
    decision = decide(shipping_order(provider=None))
    assert (decision.outcome, decision.reason_code) == (Outcome.NOT_REQUIRED, "NO_PROVIDER")


def test_missing_ship_to_state_is_not_routed():
    decision = decide(shipping_order(ship_to_state=""))
    assert decision.outcome is Outcome.NOT_REQUIRED
    assert "(missing)" in decision.reason
