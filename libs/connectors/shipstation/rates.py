"""Rate quotes: canonical Order -> `POST /shipments/getrates` bodies, the rates, and the
account's markup setting (pure).

Amounts stay exact: ShipStation's JSON numbers are read as Decimals and each quote is
`shipmentCost + otherCost`, unrounded (`otherCost` may have sub-cent parts). Applying the
markup and rounding to cents is the caller's business, so the markup acts on the exact price.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ordersync.common.v1 import order_pb2

from ..base.contract import RateQuote
from ..base.errors import InvalidRequest, InvalidResponse
from . import codes

# The markup is a percentage of the quoted price; more than ten times the price is a typo.
MAX_MARKUP_PERCENT = Decimal(1000)
MARKUP_DECIMALS = 4


def build_rates_request(order: order_pb2.Order, *, carrier_code: str, from_postal_code: str) -> dict[str, Any]:
    """The getrates body for the order's ship-to and total weight with one carrier.

    Raises:
        InvalidRequest: no ship-to postal code or country, or no weight on any shipped line.
    """
    ship_to = order.ship_to
    if not ship_to.postal_code:
        raise InvalidRequest("shipstation getrates: the order has no ship-to postal code")
    grams = sum(line.weight_grams * line.quantity for line in order.lines if line.requires_shipping)
    if grams <= 0:
        raise InvalidRequest("shipstation getrates: the order's lines carry no weight to quote by")
    body: dict[str, Any] = {
        "carrierCode": carrier_code,
        "fromPostalCode": from_postal_code,
        "toState": ship_to.administrative_area or None,
        "toCountry": ship_to.region_code or "US",
        "toPostalCode": ship_to.postal_code,
        "toCity": ship_to.locality or None,
        "weight": {"value": grams, "units": codes.WEIGHT_UNITS_GRAMS},
        "confirmation": "none",
        "residential": not ship_to.company,
    }
    return {k: v for k, v in body.items() if v is not None}


def parse_rates(carrier_code: str, rates: Sequence[Mapping[str, Any]]) -> list[RateQuote]:
    """The getrates answer `[{serviceName, serviceCode, shipmentCost, otherCost}]` as quotes.

    `carrier` is canonical (e.g. "USPS" for stamps_com), `service` is ShipStation's
    serviceCode (what carrier mapping knows it by), `amount` is `shipmentCost + otherCost`
    exactly, in US dollars (ShipStation v1 quotes in the account's currency, USD).

    Raises:
        InvalidResponse: a rate without serviceCode or with an unreadable cost.
    """
    quotes = []
    for rate in rates:
        if not isinstance(rate, Mapping) or not isinstance(rate.get("serviceCode"), str):
            raise InvalidResponse("shipstation getrates: a rate has no serviceCode")
        name = rate.get("serviceName")
        quotes.append(
            RateQuote(
                carrier=codes.canonical_carrier(carrier_code),
                carrier_code=carrier_code,
                service=rate["serviceCode"],
                service_name=name if isinstance(name, str) and name else rate["serviceCode"],
                amount=_cost(rate.get("shipmentCost")) + _cost(rate.get("otherCost")),
                currency_code=codes.CURRENCY,
            )
        )
    return quotes


def parse_markup_percent(text: str) -> Decimal:
    """The `rate_markup_percent` setting: a decimal string from 0 to 1000 with at most four
    decimals, e.g. "12.5". It is a string, not a TOML number, because 12.1 read as a float is
    not exactly 12.1 and the markup must be exact.

    Raises:
        ValueError: saying what is wrong with the value.
    """
    try:
        percent = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f'{text[:20]!r} is not a decimal number such as "12.5"') from None
    if not percent.is_finite() or not 0 <= percent <= MAX_MARKUP_PERCENT:
        raise ValueError(f"must be from 0 to {MAX_MARKUP_PERCENT}")
    exponent = percent.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MARKUP_DECIMALS:
        raise ValueError(f"has more than {MARKUP_DECIMALS} decimals")
    return percent


def _cost(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, bool):
        raise InvalidResponse("shipstation getrates: a cost is not a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidResponse("shipstation getrates: a cost is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidResponse("shipstation getrates: a cost is not a non-negative number")
    return amount
