"""ShipStation rate quotes on a RequestRecorder: the getrates body per carrier, exact amounts from
the answer, the carriers asked for, and the account's markup setting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from libs.connectors.base.errors import InvalidRequest, InvalidResponse, RateLimited
from libs.connectors.base.settings import SettingsError
from libs.connectors.base.testing import RequestRecorder, json_response, request_json
from libs.connectors.shipstation.connector import CONNECTOR
from libs.connectors.shipstation.rates import parse_rates
from libs.connectors.shipstation.tests.builders import account, client, valid_order

pytestmark = pytest.mark.timeout(10)

SECTION = {
    "connector": "shipstation",
    "api_key": "ss-key",
    "api_secret": "env:SS_RATES_SECRET",
    "webhook_token": "env:SS_RATES_TOKEN",
}
WHERE = "tenant 't' [accounts.ship]"


def parsed(monkeypatch, **keys: object):
    monkeypatch.setenv("SS_RATES_SECRET", "secret")
    monkeypatch.setenv("SS_RATES_TOKEN", "token")
    return CONNECTOR.parse_settings({**SECTION, **keys}, lambda ref, where: "resolved", WHERE)


def test_the_markup_is_zero_unless_the_account_sets_one(monkeypatch):
    assert CONNECTOR.rate_markup_percent(parsed(monkeypatch)) == Decimal(0)
    assert CONNECTOR.rate_markup_percent(parsed(monkeypatch, rate_markup_percent="12.5")) == Decimal("12.5")


@pytest.mark.parametrize(
    "value",
    ["ten", "-1", "1000.01", "1.23456", "NaN", "Infinity", ""],
)
def test_a_markup_that_is_not_a_plain_percentage_is_refused_naming_the_key(monkeypatch, value):
    with pytest.raises(SettingsError, match=r"tenant 't' \[accounts.ship\] rate_markup_percent"):
        parsed(monkeypatch, rate_markup_percent=value)


def test_a_markup_given_as_a_toml_number_is_refused_since_a_float_is_not_exact(monkeypatch):
    with pytest.raises(SettingsError, match="rate_markup_percent: must be a non-empty string"):
        parsed(monkeypatch, rate_markup_percent=12.1)


@pytest.mark.asyncio
async def test_only_the_carriers_asked_for_are_quoted_one_call_each():
    recorder = RequestRecorder(json_response(200, []), json_response(200, []))
    async with client(recorder) as ss:
        await CONNECTOR.quote_rates(
            ss, account(rate_carriers=("stamps_com", "ups", "fedex")), valid_order(), ["fedex", "ups", "fedex"]
        )
    assert [request_json(r)["carrierCode"] for r in recorder.requests] == ["fedex", "ups"]


@pytest.mark.asyncio
async def test_every_carrier_of_the_account_is_quoted_when_none_is_asked_for():
    recorder = RequestRecorder(json_response(200, []), json_response(200, []))
    async with client(recorder) as ss:
        await CONNECTOR.quote_rates(ss, account(rate_carriers=("stamps_com", "ups")), valid_order())
    assert [request_json(r)["carrierCode"] for r in recorder.requests] == ["stamps_com", "ups"]


@pytest.mark.asyncio
async def test_a_carrier_the_account_does_not_quote_with_is_refused_before_any_request():
    recorder = RequestRecorder(json_response(200, []))
    async with client(recorder) as ss:
        with pytest.raises(InvalidRequest, match="dhl_express are not among the account's rate_carriers") as refused:
            await CONNECTOR.quote_rates(ss, account(rate_carriers=("ups",)), valid_order(), ["dhl_express"])
    assert recorder.requests == [] and refused.value.status_code is None


@pytest.mark.asyncio
async def test_an_order_without_weight_cannot_be_quoted():
    order = valid_order()
    for line in order.lines:
        line.weight_grams = 0
    recorder = RequestRecorder(json_response(200, []))
    async with client(recorder) as ss:
        with pytest.raises(InvalidRequest, match="no weight"):
            await CONNECTOR.quote_rates(ss, account(rate_carriers=("ups",)), order)
    assert recorder.requests == []


@pytest.mark.asyncio
async def test_a_429_from_getrates_is_rate_limited_with_shipstations_wait():
    headers = {"Retry-After": "600", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "600"}
    recorder = RequestRecorder(json_response(429, {"Message": "Too many requests"}, headers=headers))
    async with client(recorder) as ss:
        with pytest.raises(RateLimited) as limited:
            await CONNECTOR.quote_rates(ss, account(rate_carriers=("ups",)), valid_order())
    assert limited.value.retry_after == 600


def test_the_amount_is_shipment_cost_plus_other_cost_exactly_with_the_service_name():
    # As ShipStation writes them: 0.1 + 0.2 is 0.30000000000000004 in floats, 0.3 here.
    (quote,) = parse_rates(
        "ups",
        [
            {
                "serviceName": "UPS® Ground",
                "serviceCode": "ups_ground",
                "shipmentCost": Decimal("0.1"),
                "otherCost": Decimal("0.2"),
            }
        ],
    )
    assert (quote.carrier, quote.carrier_code, quote.service, quote.service_name) == (
        "UPS",
        "ups",
        "ups_ground",
        "UPS® Ground",
    )
    assert quote.amount == Decimal("0.3") and quote.currency_code == "USD"


@pytest.mark.parametrize(
    "rate",
    [
        {"serviceName": "x", "shipmentCost": 1},
        {"serviceCode": "ups_ground", "shipmentCost": "1,50"},
        {"serviceCode": "ups_ground", "shipmentCost": -1},
        {"serviceCode": "ups_ground", "shipmentCost": True},
    ],
)
def test_a_rate_without_a_service_code_or_a_readable_cost_is_an_invalid_response(rate):
    with pytest.raises(InvalidResponse):
        parse_rates("ups", [rate])
