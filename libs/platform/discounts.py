"""A tenant's automated discount rules, as the tenants file declares them, checked at load.

    [[tenants.acme.discount_rules]]
    name = "club-members-tasting"
    when_club = "Reserve Club"          # an active club of that name, or "*" for any club
    experiences = ["TASTING-FLIGHT"]    # experience SKUs or ids; omitted: every experience
    percent_off = "20"

Conditions are `when_club`, `when_customer_type` (a directory member type, or a customer type
the caller passes), `when_promo_code` and `experiences`; all of a rule's conditions must hold,
and the first rule in file order whose conditions hold wins (fulfillment dispatch's directory
resolves them). Names are compared without regard to case or surrounding spaces. Each rule
gives exactly one of `percent_off` (above 0, at most 100) and `amount_off` (above 0), as
decimal strings (whole numbers are taken too; floats are refused, being inexact).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from libs.platform.config import ConfigError

ANY_CLUB = "*"
_KEYS = {"name", "when_club", "when_customer_type", "when_promo_code", "experiences", "percent_off", "amount_off"}


def fold(text: str) -> str:
    """A name as rules compare it: case-folded, without surrounding spaces."""
    return text.strip().casefold()


@dataclass(frozen=True)
class DiscountRule:
    """One rule: its conditions (None: not a condition) and its discount (one of the two)."""

    name: str
    when_club: str | None = None
    when_customer_type: str | None = None
    when_promo_code: str | None = None
    experiences: frozenset[str] | None = None  # folded SKUs or ids
    percent_off: Decimal | None = None
    amount_off: Decimal | None = None

    @property
    def needs_directory(self) -> bool:
        """True when deciding the rule may need the guest's clubs or member types."""
        return self.when_club is not None or self.when_customer_type is not None


def parse_discount_rules(tenant_id: str, value: object) -> tuple[DiscountRule, ...]:
    """The tenant's `discount_rules` array; raise ConfigError naming tenant, rule and field."""
    where = f"tenant {tenant_id!r} [[discount_rules]]"
    if not isinstance(value, list) or not all(isinstance(rule, dict) for rule in value):
        raise ConfigError(f"{where}: must be an array of tables")
    rules = tuple(_parse_rule(index, section, where) for index, section in enumerate(value))
    names = [rule.name for rule in rules]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise ConfigError(f"{where}: two rules are named {duplicate!r}")
    return rules


def _parse_rule(index: int, section: dict, where: str) -> DiscountRule:
    where = f"{where} #{index + 1}"
    name = section.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where} name: must be a non-empty string")
    where = f"{where} {name!r}"
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    percent, amount = _amount(section, "percent_off", where), _amount(section, "amount_off", where)
    if (percent is None) == (amount is None):
        raise ConfigError(f"{where}: give exactly one of percent_off and amount_off")
    if percent is not None and percent > 100:
        raise ConfigError(f"{where} percent_off: must be at most 100, not {percent}")
    return DiscountRule(
        name=name,
        when_club=_text(section, "when_club", where),
        when_customer_type=_text(section, "when_customer_type", where),
        when_promo_code=_text(section, "when_promo_code", where),
        experiences=_experiences(section, where),
        percent_off=percent,
        amount_off=amount,
    )


def _text(section: dict, key: str, where: str) -> str | None:
    if key not in section:
        return None
    value = section[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} {key}: must be a non-empty string")
    return value.strip()


def _experiences(section: dict, where: str) -> frozenset[str] | None:
    if "experiences" not in section:
        return None
    value = section["experiences"]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where} experiences: must be a non-empty list of experience SKUs or ids")
    return frozenset(fold(v) for v in value)


def _amount(section: dict, key: str, where: str) -> Decimal | None:
    if key not in section:
        return None
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f'{where} {key}: must be a decimal string such as "10.00", not {value!r}')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{where} {key}: {value!r} is not a decimal number") from None
    if not amount.is_finite() or amount <= 0:
        raise ConfigError(f"{where} {key}: must be above 0, not {value!r}")
    return amount
