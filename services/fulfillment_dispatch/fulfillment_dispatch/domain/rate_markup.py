"""Rate markup arithmetic (pure): a provider's exact price, the tenant's markup on it, the total.

The rule, stated once: the markup is `price * percent / 100` on the exact price (sub-cent parts
kept), and only the total `price + markup` is rounded, to the currency's minor unit, half up
(a half cent and more goes up: 8.0795 -> 8.08, 8.0749 -> 8.07). Rounding the price first and
then the marked-up price could differ by a cent, and a float could not even hold 7.345.
All arithmetic runs in its own decimal context, so no global setting changes a result.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies whose minor unit is not the cent (two decimals), by their number of
# decimals. The standard library has no currency table and none of our kept packages does, so
# the few exceptions are listed here; every other code has two decimals.
MINOR_UNIT_DECIMALS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"), 0),
    **dict.fromkeys(("RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
# 28 significant digits hold any price times any allowed markup exactly.
_EXACT = decimal.Context(prec=28, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation, decimal.Inexact])
_ROUNDING = decimal.Context(prec=28, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation])


@dataclass(frozen=True)
class MarkedUp:
    """One quote priced: the exact base and markup, and the rounded total in minor units."""

    base: Decimal
    markup: Decimal
    total: Decimal  # rounded to the minor unit, in major units (e.g. Decimal("8.08"))
    total_minor_units: int  # the same total in minor units (808)


def minor_unit_decimals(currency_code: str) -> int:
    """Decimals of the currency's minor unit (2 for USD, 0 for JPY, 3 for KWD)."""
    return MINOR_UNIT_DECIMALS.get(currency_code.upper(), 2)


def apply_markup(base: Decimal, percent: Decimal, currency_code: str) -> MarkedUp:
    """Price `base` with a `percent` markup, rounded as the module says.

    Raises:
        ValueError: a negative or non-finite base or percent.
    """
    if not (base.is_finite() and percent.is_finite()) or base < 0 or percent < 0:
        raise ValueError("a price and its markup must be finite and not negative")
    decimals = minor_unit_decimals(currency_code)
    # Inexact is trapped: were 28 digits ever too few, this raises instead of rounding quietly.
    markup = _EXACT.divide(_EXACT.multiply(base, percent), Decimal(100))
    total = _ROUNDING.quantize(_EXACT.add(base, markup), Decimal(1).scaleb(-decimals))
    return MarkedUp(base, markup, total, int(_EXACT.scaleb(total, decimals)))


def plain(amount: Decimal) -> str:
    """`amount` as a plain decimal string, no exponent and no trailing zeros: "7.345", "13", "0"."""
    return f"{amount.normalize():f}"
