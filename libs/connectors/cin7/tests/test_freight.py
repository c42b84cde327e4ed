"""Writing a chosen freight: read first, then one PUT row of freightTotal and freightDescription."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from libs.connectors.base.contract import Freight
from libs.connectors.base.errors import Conflict, InvalidRequest, NotFound
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json
from libs.connectors.cin7.freight import build_freight_update
from libs.connectors.cin7.schemas import SalesOrder
from libs.connectors.cin7.tests.builders import client, connector, sales_order, settings

OK = load_vendor_json("cin7", "update_response_ok.json")
REFUSED = load_vendor_json("cin7", "update_response_row_error.json")


def freight(amount: str = "8.08", description: str = "USPS Priority Mail - Package", currency: str = "USD") -> Freight:
    return Freight(Decimal(amount), currency, description)


def current(**changes) -> SalesOrder:
    return SalesOrder.model_validate(sales_order(**changes))


async def write(order: dict, *replies, the_freight: Freight | None = None):
    recorder = RequestRecorder(json_response(200, order), *replies)
    async with client(recorder.transport) as cin7:
        written = await connector().write_freight(cin7, settings(), "41872", the_freight or freight())
    return written, recorder.requests


# ---- build


def test_the_row_carries_the_total_and_the_service_name():
    assert build_freight_update(current(), freight()) == {
        "id": 41872,
        "freightTotal": 8.08,
        "freightDescription": "USPS Priority Mail - Package",
    }


@pytest.mark.parametrize("amount", ["999999.89", "0.29", "10.10", "0"])
def test_the_total_goes_out_as_exactly_its_cents_in_the_json_cin7_reads(amount):
    row = build_freight_update(current(), freight(amount))
    assert row is not None and Decimal(json.dumps(row["freightTotal"])) == Decimal(amount)


def test_an_order_already_carrying_the_freight_needs_no_row():
    assert (
        build_freight_update(current(freightTotal=8.08, freightDescription="USPS Priority Mail - Package"), freight())
        is None
    )
    assert build_freight_update(current(freightTotal=8.08, freightDescription="UPS Ground"), freight()) is not None


@pytest.mark.parametrize("amount", ["-0.01", "8.085", "1000000"])
def test_a_negative_sub_cent_or_huge_freight_is_refused(amount):
    with pytest.raises(InvalidRequest, match="whole cents"):
        build_freight_update(current(), freight(amount))


def test_a_freight_without_a_description_is_refused():
    with pytest.raises(InvalidRequest, match="description"):
        build_freight_update(current(), freight(description="   "))


def test_an_order_in_another_currency_is_refused_rather_than_mispriced():
    with pytest.raises(Conflict, match="order 41872 is in EUR, the freight in USD"):
        build_freight_update(current(currencyCode="EUR"), freight())


# ---- send and parse


@pytest.mark.asyncio
async def test_the_order_is_read_then_one_row_is_put():
    written, requests = await write(sales_order(), json_response(200, OK))
    assert written is True
    assert [(r.method, r.url.path) for r in requests] == [
        ("GET", "/api/v1/SalesOrders/41872"),
        ("PUT", "/api/v1/SalesOrders"),
    ]
    assert json.loads(requests[1].content) == [
        {"id": 41872, "freightTotal": 8.08, "freightDescription": "USPS Priority Mail - Package"}
    ]


@pytest.mark.asyncio
async def test_writing_the_same_freight_again_puts_nothing():
    written, requests = await write(sales_order(freightTotal=8.08, freightDescription="USPS Priority Mail - Package"))
    assert written is False and [r.method for r in requests] == ["GET"]


@pytest.mark.asyncio
async def test_a_refused_row_in_a_200_is_an_error_with_cin7s_words():
    with pytest.raises(InvalidRequest) as refused:
        await write(sales_order(), json_response(200, REFUSED))
    assert refused.value.status_code == 200 and "write_freight" in refused.value.message
    assert refused.value.details == ["Stage 'Dispatchd' is not a stage of this account"]


@pytest.mark.asyncio
async def test_an_order_cin7_does_not_have_is_not_found():
    recorder = RequestRecorder(json_response(404, {"message": "Sales order not found"}))
    async with client(recorder.transport) as cin7:
        with pytest.raises(NotFound):
            await connector().write_freight(cin7, settings(), "41872", freight())
