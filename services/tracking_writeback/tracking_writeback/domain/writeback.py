"""Writeback plan: which channel updates bring it from what was written to what is wanted. Pure.

The steps are the connector contract's WritebackStep: the channel connector turns each into its
vendor's requests.
"""

from __future__ import annotations

from libs.connectors.base.contract import WritebackStep

_RANK = {"": 0, "shipped": 1, "delivered": 2, "cancelled": 3}


def wanted(reported: str) -> bool:
    """True for provider states the channel must learn of (a label alone is not news to the customer)."""
    return reported in ("shipped", "delivered", "cancelled")


def supersedes(reported: str, target: str) -> bool:
    """True when a reported state moves the wanted state forward (updates repeat and reorder)."""
    return _RANK.get(reported, 0) > _RANK.get(target, 0)


def plan(written: str, target: str) -> list[WritebackStep]:
    """Return the steps from `written` to `target`, in order.

    A delivery reported before its shipment was written (a lost update) still writes the
    shipment first, so the customer gets their tracking e-mail.
    """
    if target == "cancelled":
        return [] if written == "cancelled" else [WritebackStep.VOID]
    steps = []
    if _RANK.get(written, 0) < _RANK["shipped"] <= _RANK.get(target, 0):
        steps.append(WritebackStep.SHIP)
    if _RANK.get(written, 0) < _RANK["delivered"] <= _RANK.get(target, 0):
        steps.append(WritebackStep.DELIVER)
    return steps
