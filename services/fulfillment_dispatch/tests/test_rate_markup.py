"""The markup arithmetic: exact on the quoted price, only the total rounded, half up, to the
currency's minor unit; and the status code each vendor error becomes."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fulfillment_dispatch.api.rates import status_of
from fulfillment_dispatch.domain.rate_markup import apply_markup, minor_unit_decimals, plain
from libs.connectors.base.errors import (
    Conflict,
    ConnectorError,
    InvalidRequest,
    InvalidResponse,
    NotFound,
    RateLimited,
    Rejected,
    Timeout,
    Unauthorized,
    Unavailable,
)


@pytest.mark.parametrize(
    ("base", "percent", "markup", "total", "minor"),
    [
        ("7.345", "0", "0", "7.35", 735),  # ShipStation's 7.33 + 0.015: a half cent goes up
        ("13.00", "12.5", "1.625", "14.63", 1463),  # 14.625: floats round half to even, 14.62
        ("24.431625", "12.5", "3.053953125", "27.49", 2749),  # sub-cent surcharge, sub-cent markup
        ("8.0749", "0", "0", "8.07", 807),  # under half a cent goes down
        ("0", "50", "0", "0", 0),
        ("19.99", "1000", "199.9", "219.89", 21989),
        ("0.1", "200", "0.2", "0.3", 30),  # 0.1 * 3 is 0.30000000000000004 in floats
    ],
)
def test_the_markup_is_exact_and_only_the_total_is_rounded_half_up(base, percent, markup, total, minor):
    priced = apply_markup(Decimal(base), Decimal(percent), "USD")
    assert (plain(priced.markup), priced.total, priced.total_minor_units) == (markup, Decimal(total), minor)
    assert priced.base == Decimal(base)


def test_rounding_the_price_first_would_lose_a_cent():
    # Exactly, 2.0049 * 1.25 = 2.506125 -> 2.51; rounded first, 2.00 * 1.25 = 2.50.
    assert apply_markup(Decimal("2.0049"), Decimal(25), "USD").total_minor_units == 251


def test_a_float_would_get_a_half_cent_wrong_where_decimal_does_not():
    # 1.005 is 1.00499999999999989... as a float, so float arithmetic rounds it down.
    assert round(1.005 * 1, 2) == 1.0
    assert apply_markup(Decimal("1.005"), Decimal(0), "USD").total_minor_units == 101


@pytest.mark.parametrize(
    ("base", "currency", "decimals", "minor"),
    [("1012.5", "JPY", 0, 1013), ("1.0125", "KWD", 3, 1013), ("1.0125", "usd", 2, 101)],
)
def test_the_total_is_rounded_to_the_currencys_own_minor_unit(base, currency, decimals, minor):
    assert minor_unit_decimals(currency) == decimals
    assert apply_markup(Decimal(base), Decimal(0), currency).total_minor_units == minor


def test_amounts_are_written_plainly_without_exponent_or_trailing_zeros():
    assert [plain(Decimal(v)) for v in ("7.3450", "1E+2", "0.000", "13.0", "0.0000001")] == [
        "7.345",
        "100",
        "0",
        "13",
        "0.0000001",
    ]


def test_the_result_does_not_depend_on_the_global_decimal_context():
    with decimal.localcontext() as context:
        context.prec = 3
        context.rounding = decimal.ROUND_DOWN
        priced = apply_markup(Decimal("24.431625"), Decimal("12.5"), "USD")
    assert plain(priced.markup) == "3.053953125" and priced.total_minor_units == 2749


@pytest.mark.parametrize(("base", "percent"), [("-0.01", "0"), ("1", "-1"), ("NaN", "0"), ("1", "Infinity")])
def test_a_negative_or_non_finite_price_or_markup_is_refused(base, percent):
    with pytest.raises(ValueError):
        apply_markup(Decimal(base), Decimal(percent), "USD")


prices = st.decimals(min_value=0, max_value=100_000, places=6, allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)


@given(prices, percents)
def test_the_total_is_the_exact_marked_up_price_rounded_half_up(base, percent):
    exact = Fraction(base) * (1 + Fraction(percent) / 100)
    cents, remainder = divmod(exact * 100, 1)
    expected = int(cents) + (1 if remainder >= Fraction(1, 2) else 0)
    priced = apply_markup(base, percent, "USD")
    assert priced.total_minor_units == expected
    assert Fraction(priced.base) + Fraction(priced.markup) == exact


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RateLimited("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable("x", status_code=503), grpc.StatusCode.UNAVAILABLE),
        (Timeout("x"), grpc.StatusCode.UNAVAILABLE),
        (InvalidResponse("x"), grpc.StatusCode.INTERNAL),
        (NotFound("x", status_code=404), grpc.StatusCode.NOT_FOUND),
        (InvalidRequest("x"), grpc.StatusCode.INVALID_ARGUMENT),  # our own check, before any call
        (InvalidRequest("x", status_code=400), grpc.StatusCode.FAILED_PRECONDITION),  # the vendor refused
        (InvalidRequest("x", status_code=200), grpc.StatusCode.FAILED_PRECONDITION),  # a refused row in a 200
        (Unauthorized("x", status_code=401), grpc.StatusCode.FAILED_PRECONDITION),
        (Conflict("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (Rejected("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (ConnectorError("x"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_each_vendor_error_has_the_status_code_saying_what_the_caller_can_do(error, code):
    assert status_of(error) is code
