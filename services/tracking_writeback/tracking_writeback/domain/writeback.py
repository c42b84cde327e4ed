"""Writeback plan: which channel updates bring it from what was written to what is wanted. Pure.

The steps are the connector contract's WritebackStep: the channel connector turns each into its
vendor's requests. Besides the state, writeback keeps the tracking numbers it wrote to the
channel, so that when the provider voids a label whose number the channel shows, the plan takes
it back (RETRACT) before anything else. A voided number is never written: the numbers a plan
writes are the shipment's live ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from libs.connectors.base.contract import WritebackStep

_RANK = {"": 0, "shipped": 1, "delivered": 2, "cancelled": 3}
NOTHING = ""  # no shipment: nothing wanted in the channel, or nothing written there


def wanted(reported: str) -> bool:
    """True for provider states the channel must learn of (a label alone is not news to the customer)."""
    return reported in ("shipped", "delivered", "cancelled")


def supersedes(reported: str, target: str) -> bool:
    """True when a reported state moves the wanted state forward (updates repeat and reorder)."""
    return _RANK.get(reported, 0) > _RANK.get(target, 0)


def advance(target: str, known_voided: Iterable[str], reported: str, voided: Iterable[str]) -> str | None:
    """The state wanted once a provider's report is taken in, or None when it changes nothing.

    A report moving the state forward sets it. A report naming voided labels not known before
    is news even when its state is no further on: the channel may show their numbers. When it
    reports no shipment any more (every label voided), nothing is wanted in the channel until
    the next label; a cancellation stays wanted whatever labels are voided after it.
    """
    if wanted(reported) and supersedes(reported, target):
        return reported
    if not set(voided) - set(known_voided):
        return None
    if wanted(reported) or target == "cancelled":
        return target
    return NOTHING


def live_tracking(tracking: Iterable[str], voided: Iterable[str]) -> list[str]:
    """The tracking numbers whose labels are not voided, in order, blanks and repeats left out."""
    taken_back = {t.strip() for t in voided}
    return [t for t in dict.fromkeys(t.strip() for t in tracking) if t and t not in taken_back]


@dataclass(frozen=True)
class Plan:
    """What to write and what the channel shows afterwards.

    Attributes:
        steps: the contract's steps, in order.
        tracking: the live tracking numbers a SHIP writes (voided ones left out).
        retracted: the numbers written earlier that RETRACT takes back.
        reached: the state the channel is in once the steps are written.
        written_tracking: the numbers the channel shows then.
    """

    steps: list[WritebackStep]
    tracking: list[str]
    retracted: list[str]
    reached: str
    written_tracking: list[str]


def plan(
    written: str,
    written_tracking: Sequence[str],
    target: str,
    tracking: Sequence[str] = (),
    voided: Sequence[str] = (),
) -> Plan:
    """Return the plan from `written` (with the numbers written) to `target` (with the shipment's
    tracking numbers and voided labels).

    A delivery reported before its shipment was written (a lost update) still writes the
    shipment first, so the customer gets their tracking e-mail. A written number whose label is
    now voided is taken back first; the live numbers are then written again, since a channel may
    only take a shipment back whole. A shipment whose every number is voided is not written.
    """
    live = live_tracking(tracking, voided)
    taken_back = set(voided)
    retracted = [t for t in written_tracking if t in taken_back]
    steps = [WritebackStep.RETRACT] if retracted else []
    base = NOTHING if retracted and written != "cancelled" else written
    shown = [t for t in written_tracking if t not in taken_back]
    if target == "cancelled":
        if written != "cancelled":
            steps.append(WritebackStep.VOID)
        return Plan(steps, [], retracted, "cancelled", shown)
    # A shipment reported with tracking, all of it voided, is no shipment to write.
    writable = bool(live) or not any(t.strip() for t in tracking)
    ships = writable and _RANK.get(base, 0) < _RANK["shipped"] <= _RANK.get(target, 0)
    delivers = writable and _RANK.get(base, 0) < _RANK["delivered"] <= _RANK.get(target, 0)
    if ships:
        steps.append(WritebackStep.SHIP)
        shown = list(dict.fromkeys([*shown, *live]))
    if delivers:
        steps.append(WritebackStep.DELIVER)
    reached = target if ships or delivers or _RANK.get(base, 0) >= _RANK.get(target, 0) else base
    return Plan(steps, live, retracted, reached, shown)
