"""Operator actions on an order held for a provider that fetches it (pull mode). Pure."""

from __future__ import annotations

import pytest

from fulfillment_dispatch.domain.actions import Action, ActionRefused, OrderState, check_allowed
from fulfillment_dispatch.domain.dispatch import Status
from libs.connectors.shipstation.connector import CONNECTOR

HELD = OrderState(Status.AWAITING_PULL, "", "1001", "ShipStation", CONNECTOR.info.status_titles)


@pytest.mark.parametrize("action", [Action.RETRY, Action.DONT_SEND])
def test_a_held_order_is_not_retried_nor_dropped_and_the_refusal_says_it_will_be_fetched(action):
    with pytest.raises(ActionRefused) as refused:
        check_allowed(action, HELD)
    message = str(refused.value)
    assert "this one is Waiting for ShipStation to fetch" in message
    assert message.endswith("; ShipStation fetches it on its next pull of the store")


def test_a_held_order_has_nothing_to_void_or_check_at_the_provider_yet():
    with pytest.raises(ActionRefused, match="only an order Sent to ShipStation can be voided"):
        check_allowed(Action.VOID, HELD)
    with pytest.raises(ActionRefused, match="never reached ShipStation"):
        check_allowed(Action.CHECK_FULFILLMENT, HELD)


def test_a_provider_without_its_own_words_says_waiting_for_the_provider():
    assert Status.AWAITING_PULL.title() == "Waiting for the provider to fetch"
    assert Status.AWAITING_PULL.title(CONNECTOR.info.status_titles) == "Waiting for ShipStation to fetch"
