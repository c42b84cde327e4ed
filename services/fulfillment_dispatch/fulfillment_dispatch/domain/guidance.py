"""What an order's sync status means and what to do next, in its provider's words. Pure, no I/O.

The admin API shows it beside the status (GetOrderResponse.guidance). The meaning names the
provider and, where the order has one, why it has its status; the next step names only actions
the operator-action rules allow for the order (domain/actions.py), so the guidance never
suggests an action that would be refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fulfillment_dispatch.domain.actions import Action, OrderState, refusals
from fulfillment_dispatch.domain.dispatch import Status


@dataclass(frozen=True)
class Guidance:
    """The status explained: what it means for this order, and the next step."""

    meaning: str
    what_to_do: str


def guidance(state: OrderState) -> Guidance:
    """The guidance for an order in `state` (its status, shipment, reason and provider words)."""
    return _BY_STATUS[state.status](state)


def _sending(state: OrderState) -> Guidance:
    return Guidance(
        f"ordersync is sending the order to {state.provider_label} now.",
        f"Wait: it shows {state.title(Status.SENT)} once {state.provider_label} takes it.",
    )


def _retry_wait(state: OrderState) -> Guidance:
    return Guidance(
        f"{state.provider_label} could not take the order just now{_because(state)}; ordersync tries again.",
        "Wait: ordersync retries on its own. Should it keep failing, the order becomes"
        f" {state.title(Status.FAILED)} and waits for you.",
    )


def _sent(state: OrderState) -> Guidance:
    provider = state.provider_label
    number = f" as {state.provider_order_number}" if state.provider_order_number else ""
    meanings = {
        "fulfilled": f"{provider} has fulfilled the order{number}; tracking reaches the channel once the carrier"
        " scans the package.",
        "shipped": f"The order has shipped from {provider}; its tracking is in the channel.",
        "delivered": "The order has been delivered; its tracking is in the channel.",
    }
    meaning = meanings.get(
        state.shipment, f"{provider} has the order{number} and fulfils it; tracking reaches the channel once it ships."
    )
    check = f"Check Fulfillment shows {provider}'s latest now"
    if not refusals(state)[Action.VOID]:
        what_to_do = (
            f"Wait for it to ship; {check}. Void Sync cancels it at {provider} while it has not shipped"
            " (before refunding or exchanging it in the channel)."
        )
    elif state.shipment in ("shipped", "delivered"):
        what_to_do = f"Nothing: it has left {provider}; a return is handled in the channel. {check}."
    else:
        what_to_do = f"Wait for it to ship; {check}. To cancel it, cancel it at {provider}, then Check Fulfillment."
    return Guidance(meaning, what_to_do)


# The next step of a Failed to Send order, by its reason code; {provider} is the provider's name.
_FIXES = {
    "UNKNOWN_SKU": "Add the product to {provider} under the channel's SKU, then Retry",
    "UNMAPPED_CARRIER": "Map the order's shipping code to a {provider} service in carrier mapping, then Retry",
    "COMPLIANCE_REJECTED": "A compliance rule cannot be overridden: correct what the reason names (a new address"
    " takes a refund and a new order in the channel), then Retry",
    "UNAUTHORIZED": "{provider} refused ordersync's credentials: renew the provider account's API key, then Retry",
    "PROVIDER_NOT_CONFIGURED": "Configure the tenant's {provider} account in ordersync, then Retry",
}
_FIXES["COMPLIANCE_PRECHECK_FAILED"] = _FIXES["COMPLIANCE_REJECTED"]
_DEFAULT_FIX = "Correct what the reason says, then Retry"


# A provider whose SKUs come through the tenant's product map (a warehouse) is fixed there too.
_MAPPED_SKU_FIX = (
    "Map the SKU to {provider}'s product in the product map (or add the product to {provider} under the"
    " channel's SKU), then Retry"
)


def _failed(state: OrderState) -> Guidance:
    fix = _MAPPED_SKU_FIX if state.reason_code == "UNKNOWN_SKU" and state.maps_products else None
    fix = (fix or _FIXES.get(state.reason_code, _DEFAULT_FIX)).format(provider=state.provider_label)
    return Guidance(
        f"The order was not sent to {state.provider_label}{_because(state)}.",
        f"{fix}; or Don't Send to keep the order in the channel.",
    )


def _not_required(state: OrderState) -> Guidance:
    provider = state.provider_label
    if state.reason:
        meaning = f"The order stays in the channel and is not sent to {provider}: {state.reason}."
    else:
        meaning = (
            f"The order does not need {provider}, as pickups, carry-outs and orders to destinations not chosen"
            " for it do not; it stays in the channel."
        )
    what_to_do = "Nothing: it stays in the channel."
    if state.reason_code in ("STATE_NOT_CHOSEN", "COUNTRY_NOT_CHOSEN"):
        what_to_do += " To send later orders to that destination, add it to the tenant's routes."
    return Guidance(meaning, what_to_do)


def _voided(state: OrderState) -> Guidance:
    return Guidance(
        f"The order is cancelled at {state.provider_label} and will not be fulfilled there"
        + (f" ({state.reason})." if state.reason else "."),
        "To send it again, place a new order in the channel (after refunding this one, if it is replaced);"
        f" Check Fulfillment shows {state.provider_label}'s latest.",
    )


def _awaiting_pull(state: OrderState) -> Guidance:
    return Guidance(
        f"The order waits for {state.provider_label} to fetch it from the store; its first fetch makes it"
        f" {state.title(Status.SENT)}.",
        f"Wait: {state.provider_label} fetches it on its next pull of the store.",
    )


def _because(state: OrderState) -> str:
    return f": {state.reason}" if state.reason else ""


_BY_STATUS: dict[Status, Callable[[OrderState], Guidance]] = {
    Status.SENDING: _sending,
    Status.RETRY_WAIT: _retry_wait,
    Status.SENT: _sent,
    Status.FAILED: _failed,
    Status.NOT_REQUIRED: _not_required,
    Status.VOIDED: _voided,
    Status.AWAITING_PULL: _awaiting_pull,
}
