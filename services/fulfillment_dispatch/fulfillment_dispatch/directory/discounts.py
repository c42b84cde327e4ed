"""Which of a tenant's automated discount rules applies to a guest's booking, and why.

The rules (libs.platform.discounts) are tried in file order; the first whose conditions all
hold wins. Conditions on the booking itself (experience, promo code, customer types the caller
gives) are checked first, and the directory is asked for the guest's clubs and member types
only when a rule still depends on them, once per resolution: a promo-code rule needs no
directory, and a directory that cannot answer fails the resolution (the caller hears
UNAVAILABLE) instead of being read as "not a member".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from libs.connectors.base.contract import DirectoryMember
from libs.platform.discounts import ANY_CLUB, DiscountRule, fold


@dataclass(frozen=True)
class Booking:
    """What the guest books, and what the caller knows of the guest."""

    email: str = ""
    experience_id: str = ""
    experience_sku: str = ""
    promo_code: str = ""
    customer_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Guest:
    """What the directory knows of the guest: active clubs and member types (names as spelt)."""

    known: bool
    active_clubs: tuple[str, ...] = ()
    member_types: tuple[str, ...] = ()

    @classmethod
    def of(cls, members: Sequence[DirectoryMember]) -> Guest:
        clubs = dict.fromkeys(c.club_name for m in members for c in m.active_clubs)
        types = dict.fromkeys(t for m in members for t in m.member_types)
        return cls(bool(members), tuple(clubs), tuple(types))

    def summary(self) -> str:
        if not self.known:
            return "the directory does not know the guest's e-mail"
        clubs = ", ".join(self.active_clubs) or "none"
        types = ", ".join(self.member_types) or "none"
        return f"the directory knows the guest (active clubs: {clubs}; member types: {types})"


@dataclass(frozen=True)
class Resolution:
    """The rule that applies (None: no rule does) and the sentence saying why."""

    rule: DiscountRule | None
    why: str


GuestLoader = Callable[[], Awaitable[Guest]]


async def resolve(rules: Sequence[DiscountRule], booking: Booking, guest_of: GuestLoader) -> Resolution:
    """The first rule whose conditions hold for `booking`; `guest_of` reads the directory."""
    if not rules:
        return Resolution(None, "the tenant has no discount rules")
    guest: Guest | None = None
    for rule in rules:
        reasons = _booking_reasons(rule, booking)
        if reasons is None:
            continue
        if _needs_guest(rule, booking):
            if not booking.email:
                continue  # nobody to look up: the rule's club or member type cannot hold
            guest = guest or await guest_of()
            guest_reasons = _guest_reasons(rule, booking, guest)
            if guest_reasons is None:
                continue
            reasons += guest_reasons
        why = "; ".join(reasons) if reasons else "it has no conditions"
        return Resolution(rule, f"rule {rule.name!r} applies: {why}")
    count = f"none of the tenant's {len(rules)} discount rule(s) applies to this guest and experience"
    return Resolution(None, f"{count}; {guest.summary()}" if guest else count)


def _booking_reasons(rule: DiscountRule, booking: Booking) -> list[str] | None:
    """The conditions on the booking that hold, or None when one of them does not."""
    reasons = []
    if rule.experiences is not None:
        booked = {fold(booking.experience_id), fold(booking.experience_sku)} - {""}
        if not booked & rule.experiences:
            return None
        reasons.append(f"experience {booking.experience_sku or booking.experience_id} is one of the rule's")
    if rule.when_promo_code is not None:
        if fold(booking.promo_code) != fold(rule.when_promo_code):
            return None
        reasons.append(f"promo code {rule.when_promo_code} was given")
    if rule.when_customer_type is not None and _given_type(rule, booking):
        reasons.append(f"the caller gave customer type {rule.when_customer_type}")
    return reasons


def _given_type(rule: DiscountRule, booking: Booking) -> bool:
    wanted = fold(rule.when_customer_type or "")
    return any(fold(t) == wanted for t in booking.customer_types)


def _needs_guest(rule: DiscountRule, booking: Booking) -> bool:
    return rule.when_club is not None or (rule.when_customer_type is not None and not _given_type(rule, booking))


def _guest_reasons(rule: DiscountRule, booking: Booking, guest: Guest) -> list[str] | None:
    """The directory's conditions that hold for the guest, or None when one does not."""
    reasons = []
    if rule.when_club is not None:
        if rule.when_club == ANY_CLUB:
            if not guest.active_clubs:
                return None
            reasons.append(f"the guest is an active member of {', '.join(guest.active_clubs)}")
        else:
            if fold(rule.when_club) not in {fold(c) for c in guest.active_clubs}:
                return None
            reasons.append(f"the guest is an active member of {rule.when_club}")
    if rule.when_customer_type is not None and not _given_type(rule, booking):
        if fold(rule.when_customer_type) not in {fold(t) for t in guest.member_types}:
            return None
        reasons.append(f"the directory lists the guest as {rule.when_customer_type}")
    return reasons
