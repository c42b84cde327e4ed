"""Routing rules: where an order goes by the tenant's routes, or why it goes nowhere. Pure, no
I/O, no protos.

A tenant lists routes from each channel account to a provider account, in the order they are
tried (docs/tenants.md). The first route whose rules all hold decides; every decision names the
route (when one decided) and the rule that decided it, so an operator can see why.

What stays as it was before routes existed: refunds and exchanges are never sent (the original
is voided instead) unless a route lists their kind; pickups, carry-outs and reservations stay in
the channel unless a route takes their kind; a shipping order to a state no route takes stays in
the channel, and the reason names the routes and their states.

Channel-specific eligibility (a connector's own import rules) would arrive as one more fact on
RoutingInput and be checked before the routes; no connector declares one yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    ROUTE = "route"
    NOT_REQUIRED = "not_required"
    NOT_SENT = "not_sent"


class Kind(Enum):
    """What the order is, as far as routing cares; the values are the routes' `order_kinds`."""

    SHIPPING = "shipping"
    PICKUP = "pickup"
    CARRY_OUT = "carry_out"
    REFUND = "refund"
    EXCHANGE = "exchange"
    RESERVATION = "reservation"


@dataclass(frozen=True)
class RouteRules:
    """One of the tenant's routes as routing needs it.

    Attributes:
        name: the route's name in the tenants file.
        provider: the provider account's connector id, e.g. the value orders carry as `provider`.
        provider_account: the tenant's name for that provider account.
        order_kinds: the kinds of order the route takes (Kind values).
        ship_to_states: upper-case state codes the route takes; None: any state.
        ship_to_countries: upper-case ISO country codes the route takes; None: any country.
    """

    name: str
    provider: str
    provider_account: str
    order_kinds: frozenset[str]
    ship_to_states: frozenset[str] | None = None
    ship_to_countries: frozenset[str] | None = None


@dataclass(frozen=True)
class RoutingInput:
    """The facts a decision rests on.

    `routes` are the tenant's routes from the order's channel account, in evaluation order
    (empty when the tenant has none, or is not configured).
    """

    kind: Kind
    ship_to_state: str
    ship_to_country: str
    channel_account: str
    routes: Sequence[RouteRules]


@dataclass(frozen=True)
class Decision:
    """The outcome with a stable code and a sentence; `route` is empty unless a route decided.

    `rule` names what decided: "never_sent", "order_kinds", "ship_to_states",
    "ship_to_countries" or "no_route".
    """

    outcome: Outcome
    provider: str
    reason_code: str
    reason: str
    route: str = ""
    rule: str = ""
    provider_account: str = ""


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
_KIND_WORDS = {
    Kind.SHIPPING: "shipping",
    Kind.PICKUP: "pickup",
    Kind.CARRY_OUT: "carry-out",
    Kind.REFUND: "refund",
    Kind.EXCHANGE: "exchange",
    Kind.RESERVATION: "reservation",
}


def decide(facts: RoutingInput) -> Decision:
    """Return the decision for one order; every outcome carries a stable code, a sentence and
    the rule that decided it."""
    state, country = facts.ship_to_state.upper(), facts.ship_to_country.upper()
    for_kind = [r for r in facts.routes if facts.kind.value in r.order_kinds]
    if not for_kind:
        return _no_route_for_kind(facts)
    for route in for_kind:
        if _country_holds(route, country) and _state_holds(route, state):
            return _routed(facts.kind, route, state, country)
    if facts.kind in _NEVER_SENT:  # a route takes refunds, but not this one's destination
        return _never_sent(facts.kind)
    return _no_route_takes_destination(for_kind, state, country)


def _country_holds(route: RouteRules, country: str) -> bool:
    return route.ship_to_countries is None or country in route.ship_to_countries


def _state_holds(route: RouteRules, state: str) -> bool:
    return route.ship_to_states is None or state in route.ship_to_states


def _routed(kind: Kind, route: RouteRules, state: str, country: str) -> Decision:
    by = f"by route {route.name!r}"
    if route.ship_to_states is not None:
        code, rule, reason = "SHIPPING_TO_CHOSEN_STATE", "ship_to_states", f"{_KIND_WORDS[kind]} order to {state} {by}"
    elif route.ship_to_countries is not None:
        code, rule, reason = "ROUTE_MATCHED", "ship_to_countries", f"{_KIND_WORDS[kind]} order to {country} {by}"
    else:
        code, rule, reason = "ROUTE_MATCHED", "order_kinds", f"{_KIND_WORDS[kind]} order {by}"
    return Decision(Outcome.ROUTE, route.provider, code, reason, route.name, rule, route.provider_account)


def _no_route_for_kind(facts: RoutingInput) -> Decision:
    # Kinds with a reason of their own keep it whether or not the channel account has routes:
    # a tenant without any provider still sees "pickup orders stay in the channel".
    if facts.kind in _NEVER_SENT:
        return _never_sent(facts.kind)
    if facts.kind in _STAYS_IN_CHANNEL:
        return Decision(Outcome.NOT_REQUIRED, "", *_STAYS_IN_CHANNEL[facts.kind], rule="order_kinds")
    if not facts.routes:
        reason = f"the tenant has no route from channel account {facts.channel_account or '(unnamed)'!r}"
        return Decision(Outcome.NOT_REQUIRED, "", "NO_PROVIDER", reason, rule="no_route")
    taken = ", ".join(sorted({k for r in facts.routes for k in r.order_kinds}))
    reason = (
        f"no route from channel account {facts.channel_account!r} takes {_KIND_WORDS[facts.kind]} orders"
        f" ({_names(facts.routes)}: {taken})"
    )
    return Decision(Outcome.NOT_REQUIRED, "", "ORDER_KIND_NOT_ROUTED", reason, rule="order_kinds")


def _never_sent(kind: Kind) -> Decision:
    return Decision(Outcome.NOT_SENT, "", *_NEVER_SENT[kind], rule="never_sent")


def _no_route_takes_destination(routes: Sequence[RouteRules], state: str, country: str) -> Decision:
    """No route taking the kind takes the order's destination: name the nearest miss.

    A route whose country holds but whose states do not came closest, so the state is named
    when any route failed on it; otherwise every route failed on the country.
    """
    on_state = [r for r in routes if _country_holds(r, country)]
    if on_state:
        chosen = ", ".join(sorted({s for r in on_state for s in r.ship_to_states or ()})) or "none"
        reason = f"ship-to state {state or '(missing)'} is not among the chosen states of {_names(on_state)} ({chosen})"
        return Decision(Outcome.NOT_REQUIRED, "", "STATE_NOT_CHOSEN", reason, rule="ship_to_states")
    chosen = ", ".join(sorted({c for r in routes for c in r.ship_to_countries or ()}))
    reason = f"ship-to country {country or '(missing)'} is not among the countries of {_names(routes)} ({chosen})"
    return Decision(Outcome.NOT_REQUIRED, "", "COUNTRY_NOT_CHOSEN", reason, rule="ship_to_countries")


def _names(routes: Sequence[RouteRules]) -> str:
    quoted = [repr(r.name) for r in routes]
    if len(quoted) == 1:
        return f"route {quoted[0]}"
    return f"routes {', '.join(quoted[:-1])} and {quoted[-1]}"
