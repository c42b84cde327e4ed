"""Writeback plan: which channel updates bring it from what was written to what is wanted. Pure."""

from __future__ import annotations

from enum import Enum

_RANK = {"": 0, "shipped": 1, "delivered": 2, "cancelled": 3}


class Step(Enum):
    """One update to the channel."""

    SHIP = "ship"  # a shipped fulfilment with tracking; the channel e-mails the customer
    DELIVER = "deliver"  # mark the order delivered
    VOID = "void"  # show that the provider voided the order


def wanted(reported: str) -> bool:
    """True for provider states the channel must learn of (a label alone is not news to the customer)."""
    return reported in ("shipped", "delivered", "cancelled")


def supersedes(reported: str, target: str) -> bool:
    """True when a reported state moves the wanted state forward (updates repeat and reorder)."""
    return _RANK.get(reported, 0) > _RANK.get(target, 0)


def plan(written: str, target: str) -> list[Step]:
    """Return the steps from `written` to `target`, in order.

    A delivery reported before its shipment was written (a lost update) still writes the
    shipment first, so the customer gets their tracking e-mail.
    """
    if target == "cancelled":
        return [] if written == "cancelled" else [Step.VOID]
    steps = []
    if _RANK.get(written, 0) < _RANK["shipped"] <= _RANK.get(target, 0):
        steps.append(Step.SHIP)
    if _RANK.get(written, 0) < _RANK["delivered"] <= _RANK.get(target, 0):
        steps.append(Step.DELIVER)
    return steps
