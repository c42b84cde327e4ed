"""Routing rules: where an order goes, or why it goes nowhere. Pure, no I/O, no protos.

The rules follow the Commerce7 → Vinoshipper integration: only shipping orders to the tenant's
chosen states go to the provider; pickups, carry-outs and other states stay in the channel
(not required to send); refunds and exchanges are never sent (the original is voided instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    ROUTE = "route"
    NOT_REQUIRED = "not_required"
    NOT_SENT = "not_sent"


class Kind(Enum):
    """What the order is, as far as routing cares."""

    SHIPPING = "shipping"
    PICKUP = "pickup"
    CARRY_OUT = "carry_out"
    REFUND = "refund"
    EXCHANGE = "exchange"
    RESERVATION = "reservation"


@dataclass(frozen=True)
class RoutingInput:
    """The facts a decision rests on."""

    kind: Kind
    ship_to_state: str
    chosen_states: frozenset[str]
    provider: str | None  # the tenant's fulfilment provider, None if it has none


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    provider: str
    reason_code: str
    reason: str


_NEVER_SENT = {
    Kind.REFUND: ("REFUND_NOT_SENT", "refund orders are never sent; void the original order's sync instead"),
    Kind.EXCHANGE: (
        "EXCHANGE_NOT_SENT",
        "exchange orders are never sent; void the original, refund it fully and place a new order",
    ),
}
_STAYS_IN_CHANNEL = {
    Kind.PICKUP: ("PICKUP_ORDER", "pickup orders are collected at the winery and stay in the channel"),
    Kind.CARRY_OUT: ("CARRY_OUT_ORDER", "point-of-sale carry-out orders stay in the channel"),
    Kind.RESERVATION: ("RESERVATION_ORDER", "reservation orders are not shipped"),
}


def decide(facts: RoutingInput) -> Decision:
    """Return the decision for one order; every outcome carries a stable code and a sentence."""
    if facts.kind in _NEVER_SENT:
        return Decision(Outcome.NOT_SENT, "", *_NEVER_SENT[facts.kind])
    if facts.kind in _STAYS_IN_CHANNEL:
        return Decision(Outcome.NOT_REQUIRED, "", *_STAYS_IN_CHANNEL[facts.kind])
    if facts.provider is None:
        return Decision(Outcome.NOT_REQUIRED, "", "NO_PROVIDER", "the tenant has no fulfilment provider configured")
    state = facts.ship_to_state.upper()
    if state not in facts.chosen_states:
        chosen = ", ".join(sorted(facts.chosen_states)) or "none"
        return Decision(
            Outcome.NOT_REQUIRED,
            "",
            "STATE_NOT_CHOSEN",
            f"ship-to state {state or '(missing)'} is not among the tenant's chosen states ({chosen})",
        )
    return Decision(Outcome.ROUTE, facts.provider, "SHIPPING_TO_CHOSEN_STATE", f"shipping order to {state}")
