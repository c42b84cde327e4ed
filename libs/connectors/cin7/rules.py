"""The import rules: which Cin7 sales orders ShipStation may take, as pure functions.

Cin7's own ShipStation connector exports an order only when every rule holds; ordersync keeps
the same rules so an order behaves the same through the hub. Each rule has its own reason code
and an operator's sentence, and `check_import` runs them all, so an order failing several
names every one (a fix for one rule should not reveal the next on the following poll).
Rules read the vendor order and the clock passed in, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..base import convert
from ..base.issues import Issue
from . import codes
from .schemas import LineItem, SalesOrder

# The reason codes, one per rule: stable, for operators' filters and the failed-import mail.
NOT_APPROVED = "NOT_APPROVED"
NOT_FULLY_PICKED = "NOT_FULLY_PICKED"
NO_DELIVERY_COUNTRY = "NO_DELIVERY_COUNTRY"
TOO_OLD = "TOO_OLD"
NOTHING_TO_DISPATCH = "NOTHING_TO_DISPATCH"


@dataclass(frozen=True)
class RuleContext:
    """What the rules compare against: the tenant's "Fully Picked" stage, now, the age limit."""

    fully_picked_stage: str
    now: datetime
    max_age_days: int = 60


@dataclass(frozen=True)
class RuleFailure:
    """One failed rule: a stable reason code, the Cin7 field it is about, and an operator's
    sentence saying what is wrong and what to fix (it names no value of the order)."""

    code: str
    field: str
    sentence: str

    def issue(self) -> Issue:
        """As the contract's ParsedOrder.rule_failures carries it: field, sentence, code."""
        return Issue(self.field, self.sentence, code=self.code)


Rule = Callable[[SalesOrder, RuleContext], RuleFailure | None]


def approved(order: SalesOrder, context: RuleContext) -> RuleFailure | None:
    """The order is approved: neither a draft nor void."""
    status = codes.ORDER_STATUSES.get((order.status or "").strip().lower())
    if status is None and order.status is None:
        status = codes.STATUS_APPROVED if order.isApproved else None
    if status == codes.STATUS_APPROVED and order.isApproved is not False:
        return None
    return RuleFailure(NOT_APPROVED, "status", "the order is not approved in Cin7 (it is a draft or void): approve it")


def fully_picked(order: SalesOrder, context: RuleContext) -> RuleFailure | None:
    """The order is in the tenant's "Fully Picked" stage."""
    if (order.stage or "").strip().casefold() == context.fully_picked_stage.strip().casefold():
        return None
    return RuleFailure(
        NOT_FULLY_PICKED,
        "stage",
        f"the order's stage is not {context.fully_picked_stage!r}: move it there once it is picked",
    )


def delivery_country(order: SalesOrder, context: RuleContext) -> RuleFailure | None:
    """The delivery address names a country."""
    if (order.deliveryCountry or "").strip():
        return None
    return RuleFailure(
        NO_DELIVERY_COUNTRY, "deliveryCountry", "the delivery address has no country: fill in the delivery country"
    )


def recent(order: SalesOrder, context: RuleContext) -> RuleFailure | None:
    """The created date or the ETD is within the last `max_age_days` days."""
    oldest = context.now - timedelta(days=context.max_age_days)
    for value in (order.createdDate, order.estimatedDeliveryDate):
        moment = _moment(value)
        if moment is not None and moment >= oldest:
            return None
    return RuleFailure(
        TOO_OLD,
        "createdDate",
        f"neither the created date nor the ETD is within the last {context.max_age_days} days:"
        " set an ETD within that time to ship it",
    )


def something_to_dispatch(order: SalesOrder, context: RuleContext) -> RuleFailure | None:
    """At least one line has a quantity left to dispatch."""
    if dispatch_lines(order):
        return None
    return RuleFailure(
        NOTHING_TO_DISPATCH,
        "lineItems",
        "no line has a quantity left to dispatch: add a line with a quantity, or leave the order be if it has shipped",
    )


RULES: tuple[Rule, ...] = (approved, fully_picked, delivery_country, recent, something_to_dispatch)
"""Every import rule, in the order operators read their failures."""


def check_import(order: SalesOrder, context: RuleContext) -> list[RuleFailure]:
    """Run every rule; the failures, in RULES order (empty: the order is imported)."""
    return [failure for rule in RULES if (failure := rule(order, context)) is not None]


def dispatch_quantity(line: LineItem) -> float:
    """What is left to dispatch of a line: ordered less already shipped (never below 0)."""
    return max(0.0, (line.qty or 0) - (line.qtyShipped or 0))


def dispatch_lines(order: SalesOrder) -> list[tuple[int, LineItem]]:
    """The lines sent on, with their index: those with a quantity left to dispatch.

    Lines with nothing to dispatch are the ones Cin7 hides from ShipStation (zero-quantity
    lines, comment lines, lines already shipped); the API has no separate "hidden" flag.
    """
    return [(index, line) for index, line in enumerate(order.lineItems) if dispatch_quantity(line) > 0]


def contact_phone(order: SalesOrder) -> str:
    """The customer's phone, falling back to the mobile when the phone is empty."""
    return (order.phone or "").strip() or (order.mobile or "").strip()


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return convert.parse_datetime(value)
    except (ValueError, OverflowError):
        return None
