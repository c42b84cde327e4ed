"""The status guidance and the action options GetOrder shows: what each status means for the
order and what to do next, in the provider's words, and each action's refusal as the action
itself would give it. Pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fulfillment_dispatch.domain.actions import Action, ActionRefused, OrderState, check_allowed, refusals
from fulfillment_dispatch.domain.dispatch import Status
from fulfillment_dispatch.domain.guidance import guidance
from libs.connectors.shipstation.connector import CONNECTOR as SHIPSTATION
from libs.connectors.vinoshipper.connector import CONNECTOR as VINOSHIPPER

ACTION_WORDS = {
    Action.RETRY: "Retry",
    Action.DONT_SEND: "Don't Send",
    Action.VOID: "Void Sync",
    Action.CHECK_FULFILLMENT: "Check Fulfillment",
}


def state(status: Status, **fields) -> OrderState:
    """An order of Vinoshipper (which can cancel) in `status`, changed by `fields`."""
    info = VINOSHIPPER.info
    base = OrderState(status, "", "VS-1001", info.label, info.status_titles, can_cancel=True)
    return replace(base, **fields)


FAILED_SKU = state(Status.FAILED, reason_code="UNKNOWN_SKU", reason="unknown product SKU RED-2019")
SENT = state(Status.SENT)


def test_a_failed_order_with_an_unknown_sku_says_why_and_to_add_it_then_retry():
    shown = guidance(FAILED_SKU)

    assert shown.meaning == "The order was not sent to Vinoshipper: unknown product SKU RED-2019."
    assert shown.what_to_do == (
        "Add the product to Vinoshipper under the channel's SKU, then Retry; or Don't Send to keep the order"
        " in the channel."
    )


def test_an_unknown_sku_at_a_warehouse_is_fixed_in_the_product_map_first():
    shown = guidance(replace(FAILED_SKU, provider_label="Mintsoft", maps_products=True))

    assert shown.what_to_do.startswith(
        "Map the SKU to Mintsoft's product in the product map (or add the product to Mintsoft under the"
        " channel's SKU), then Retry"
    )


def test_a_failed_order_with_another_reason_is_told_to_correct_it_then_retry_or_dont_send():
    shown = guidance(state(Status.FAILED, reason_code="PROVIDER_REJECTED", reason="zip code invalid"))

    assert shown.meaning == "The order was not sent to Vinoshipper: zip code invalid."
    assert (
        shown.what_to_do == "Correct what the reason says, then Retry; or Don't Send to keep the order in the channel."
    )


def test_a_compliance_refusal_cannot_be_overridden():
    shown = guidance(state(Status.FAILED, reason_code="COMPLIANCE_REJECTED", reason="no shipping to UT"))

    assert shown.what_to_do.startswith("A compliance rule cannot be overridden")


def test_a_sent_order_waits_for_shipment_and_may_be_checked_or_voided_before_it_ships():
    shown = guidance(SENT)

    assert shown.meaning == (
        "Vinoshipper has the order as VS-1001 and fulfils it; tracking reaches the channel once it ships."
    )
    assert shown.what_to_do == (
        "Wait for it to ship; Check Fulfillment shows Vinoshipper's latest now. Void Sync cancels it at Vinoshipper"
        " while it has not shipped (before refunding or exchanging it in the channel)."
    )


def test_a_shipped_order_is_not_offered_void_sync():
    shown = guidance(state(Status.SENT, shipment="shipped"))

    assert shown.meaning == "The order has shipped from Vinoshipper; its tracking is in the channel."
    assert "Void Sync" not in shown.what_to_do
    assert shown.what_to_do.startswith("Nothing: it has left Vinoshipper; a return is handled in the channel.")


def test_a_sent_order_of_a_provider_that_cannot_cancel_is_cancelled_at_the_provider():
    shown = guidance(state(Status.SENT, can_cancel=False))

    assert "Void Sync" not in shown.what_to_do
    assert shown.what_to_do.endswith("To cancel it, cancel it at Vinoshipper, then Check Fulfillment.")


def test_a_voided_order_is_sent_again_only_as_a_new_channel_order():
    shown = guidance(state(Status.VOIDED, reason="cancelled at Vinoshipper: refund"))

    assert shown.meaning == (
        "The order is cancelled at Vinoshipper and will not be fulfilled there (cancelled at Vinoshipper: refund)."
    )
    assert shown.what_to_do.startswith("To send it again, place a new order in the channel")


def test_a_not_required_order_stays_in_the_channel_saying_why():
    pickup = guidance(
        state(Status.NOT_REQUIRED, reason_code="PICKUP_ORDER", reason="pickup orders are collected at the winery")
    )
    unchosen = guidance(state(Status.NOT_REQUIRED, reason_code="STATE_NOT_CHOSEN", reason="UT is not chosen"))

    assert pickup.meaning == (
        "The order stays in the channel and is not sent to Vinoshipper: pickup orders are collected at the winery."
    )
    assert pickup.what_to_do == "Nothing: it stays in the channel."
    assert unchosen.what_to_do.endswith("add it to the tenant's routes.")


def test_a_not_required_order_without_a_reason_says_which_orders_stay_in_the_channel():
    shown = guidance(state(Status.NOT_REQUIRED))

    assert shown.meaning.startswith("The order does not need Vinoshipper, as pickups, carry-outs")


@pytest.mark.parametrize("status", [Status.SENDING, Status.RETRY_WAIT])
def test_an_order_being_sent_or_retried_is_waited_for(status):
    shown = guidance(state(status, reason="Vinoshipper answered 503"))

    assert shown.what_to_do.startswith("Wait")
    if status is Status.RETRY_WAIT:
        assert shown.meaning == (
            "Vinoshipper could not take the order just now: Vinoshipper answered 503; ordersync tries again."
        )
        assert "ordersync retries on its own" in shown.what_to_do


def test_an_order_waiting_for_shipstation_to_fetch_says_so_in_shipstations_words():
    info = SHIPSTATION.info
    shown = guidance(OrderState(Status.AWAITING_PULL, "", "", info.label, info.status_titles))

    assert shown.meaning == (
        "The order waits for ShipStation to fetch it from the store; its first fetch makes it Sent to ShipStation."
    )
    assert shown.what_to_do == "Wait: ShipStation fetches it on its next pull of the store."


EVERY_STATE = [
    state(status, shipment=shipment, can_cancel=can_cancel)
    for status in Status
    for shipment in ("", "fulfilled", "shipped", "delivered", "cancelled")
    for can_cancel in (True, False)
]


@pytest.mark.parametrize("order", EVERY_STATE)
def test_guidance_names_only_actions_the_rules_allow(order):
    allowed = {action for action, refusal in refusals(order).items() if not refusal}
    named = {action for action, words in ACTION_WORDS.items() if words in guidance(order).what_to_do}

    assert named <= allowed


@pytest.mark.parametrize("order", EVERY_STATE)
def test_each_options_refusal_is_the_one_the_action_raises(order):
    for action, refusal in refusals(order).items():
        if refusal:
            with pytest.raises(ActionRefused) as refused:
                check_allowed(action, order)
            assert str(refused.value) == refusal
        else:
            check_allowed(action, order)


def test_a_failed_order_may_be_retried_or_not_sent_only():
    assert refusals(FAILED_SKU) == {
        Action.RETRY: "",
        Action.DONT_SEND: "",
        Action.VOID: "only an order Sent to Vinoshipper can be voided; this one is Failed to Send; use Retry or"
        " Don't Send",
        Action.CHECK_FULFILLMENT: "the order never reached Vinoshipper (it is Failed to Send); there is nothing"
        " to check",
    }


def test_a_sent_order_of_a_provider_that_cannot_cancel_refuses_void_sync():
    assert refusals(state(Status.SENT, can_cancel=False))[Action.VOID] == (
        "Vinoshipper orders cannot be cancelled from here; cancel it at Vinoshipper and Check Fulfillment"
    )
