"""Operator actions on an order's sync: which make sense in which state. Pure, no I/O.

Each rule answers with the refusal an operator reads when an action makes no sense (retrying a
sent order, voiding a delivered one), naming the state and what to do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from fulfillment_dispatch.domain.dispatch import Status


class Action(Enum):
    RETRY = "retry"
    DONT_SEND = "dont_send"
    VOID = "void"
    CHECK_FULFILLMENT = "check_fulfillment"


@dataclass(frozen=True)
class OrderState:
    """What the rules look at: the sync status and the provider's shipment state, with the
    provider's name and status words (its connector's label and status_titles) for messages,
    whether the provider can cancel an order (Capability.CANCEL), and why the order has its
    status (for the status guidance)."""

    status: Status
    shipment: str  # '' | fulfilled | shipped | delivered | cancelled
    provider_order_number: str = ""
    provider_label: str = "the provider"
    titles: Mapping[str, str] = field(default_factory=dict)
    can_cancel: bool = True
    maps_products: bool = False  # the provider's SKUs come through the tenant's product map (a warehouse)
    reason_code: str = ""
    reason: str = ""

    def title(self, status: Status | None = None) -> str:
        return (status or self.status).title(self.titles)


class ActionRefused(Exception):
    """The action does not apply to the order as it stands; the message says why and what to do."""


def check_allowed(action: Action, state: OrderState) -> None:
    """Raise ActionRefused unless `action` applies to an order in `state`."""
    refusal = _RULES[action](state)
    if refusal:
        raise ActionRefused(refusal)


def refusals(state: OrderState) -> dict[Action, str]:
    """Each action, in Action order, with the refusal `check_allowed` would raise for an order
    in `state` ("" where the action applies): what the admin API shows before anyone acts."""
    return {action: _RULES[action](state) for action in Action}


def _retry(state: OrderState) -> str:
    if state.status is Status.FAILED:
        return ""
    return f"only a {state.title(Status.FAILED)} order can be retried; this one is {state.title()}" + _hint(state)


def _dont_send(state: OrderState) -> str:
    if state.status is Status.FAILED:
        return ""
    return f"Don't Send applies to a {state.title(Status.FAILED)} order; this one is {state.title()}" + _hint(state)


def _void(state: OrderState) -> str:
    if state.status is Status.VOIDED or state.shipment == "cancelled":
        return f"the order is already {state.title(Status.VOIDED)}"
    if state.status is not Status.SENT:
        return f"only an order {state.title(Status.SENT)} can be voided; this one is {state.title()}" + _hint(state)
    if state.shipment in ("shipped", "delivered"):
        return (
            f"the order has already {state.shipment} from {state.provider_label} and can no longer be voided;"
            " handle the return in the channel"
        )
    if not state.can_cancel:
        return (
            f"{state.provider_label} orders cannot be cancelled from here; cancel it at {state.provider_label}"
            " and Check Fulfillment"
        )
    return ""


def _check_fulfillment(state: OrderState) -> str:
    if state.status in (Status.SENT, Status.VOIDED):
        return ""
    return f"the order never reached {state.provider_label} (it is {state.title()}); there is nothing to check"


def _hint(state: OrderState) -> str:
    hints = {
        Status.SENT: f"; use Check Fulfillment to refresh it, or Void Sync to cancel it at {state.provider_label}",
        Status.SENDING: "; it is being sent now",
        Status.RETRY_WAIT: "; it is retrying on its own",
        Status.NOT_REQUIRED: "; it stays in the channel",
        Status.VOIDED: "; place a new order in the channel to send it again",
        Status.FAILED: "; use Retry or Don't Send",
        Status.AWAITING_PULL: f"; {state.provider_label} fetches it on its next pull of the store",
    }
    return hints.get(state.status, "")


_RULES = {
    Action.RETRY: _retry,
    Action.DONT_SEND: _dont_send,
    Action.VOID: _void,
    Action.CHECK_FULFILLMENT: _check_fulfillment,
}
