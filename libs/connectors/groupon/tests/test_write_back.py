"""write_back: tracking per line with an approved courier code, validated before sending; a
repeat recognised as done; DELIVER needs nothing; VOID and RETRACT refused with what to do."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from ordersync.common.v1 import order_pb2, shipment_pb2

from libs.connectors.base.contract import ChannelUpdate, WritebackStep
from libs.connectors.base.errors import InvalidRequest, Unauthorized
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json
from libs.connectors.groupon import codes
from libs.connectors.groupon.connector import GrouponConnector
from libs.connectors.groupon.errors import TrackingRefused
from libs.connectors.groupon.tests.builders import client, settings

OK = load_vendor_json("groupon", "tracking_notification_ok.json")


def shipment(**changes: Any) -> shipment_pb2.Shipment:
    values: dict[str, Any] = {
        "status": shipment_pb2.SHIPMENT_STATUS_SHIPPED,
        "tracking_numbers": ["RM123456785GB"],
        "carrier": "ROYAL_MAIL",
        "items": [
            shipment_pb2.ShipmentItem(channel_line_id="54553920", sku="TEE-BLK-M", quantity=2),
            shipment_pb2.ShipmentItem(channel_line_id="54553921", sku="GRP-MUG-01", quantity=1),
        ],
    }
    return shipment_pb2.Shipment(**(values | changes))


def update(*steps: WritebackStep, carrier: str | None = "RYM", **changes: Any) -> ChannelUpdate:
    return ChannelUpdate("FFB7A681BE", "FFB7A681BE", steps or (WritebackStep.SHIP,), shipment(**changes), carrier)


async def write(change: ChannelUpdate, *replies):
    recorder = RequestRecorder(*replies)
    async with client(recorder.transport) as groupon:
        told = await GrouponConnector().write_back(groupon, settings(), change)
    return told, recorder.requests


def tracking_info(request: httpx.Request) -> list[dict]:
    sent = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert (sent["supplier_id"], sent["token"]) == ("48213", "tok-secret")
    return json.loads(sent["tracking_info"])


@pytest.mark.asyncio
async def test_a_shipment_uploads_one_entry_per_line_with_its_quantity_and_the_customer_is_told():
    told, (request,) = await write(update(), json_response(200, OK))
    assert told is True
    assert request.method == "POST" and request.url.path == "/api/v4/tracking_notification"
    assert tracking_info(request) == [
        {"carrier": "RYM", "ci_lineitem_id": 54553920, "tracking": "RM123456785GB", "quantity": 2},
        {"carrier": "RYM", "ci_lineitem_id": 54553921, "tracking": "RM123456785GB", "quantity": 1},
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(("spelling", "code"), [("rym", "RYM"), ("Envialia", "ENVIALIA"), ("Whistl", "WHISTL")])
async def test_either_accepted_spelling_is_sent_as_the_code(spelling, code):
    _, (request,) = await write(update(carrier=spelling), json_response(200, OK))
    assert {entry["carrier"] for entry in tracking_info(request)} == {code}


@pytest.mark.asyncio
async def test_a_voided_label_is_not_uploaded_and_the_next_number_is():
    change = update(tracking_numbers=["VOIDED1", "RM2"], voided_tracking_numbers=["VOIDED1"])
    _, (request,) = await write(change, json_response(200, OK))
    assert {entry["tracking"] for entry in tracking_info(request)} == {"RM2"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "words"),
    [
        (update(carrier="Royal Mail"), "approved courier list"),
        (update(carrier="Ups"), "approved courier list"),
        (update(carrier=None), "no courier"),
        (update(tracking_numbers=[]), "no tracking number"),
        (update(tracking_numbers=["  "]), "no tracking number"),
        (update(tracking_numbers=["V"], voided_tracking_numbers=["V"]), "no tracking number"),
        (update(items=[]), "names no lines"),
        (update(items=[shipment_pb2.ShipmentItem(channel_line_id="", quantity=1)]), "no ci_lineitem_id"),
        (update(items=[shipment_pb2.ShipmentItem(channel_line_id="5", quantity=0)]), "no positive quantity"),
    ],
)
async def test_tracking_that_cannot_be_corrected_later_is_refused_before_any_call(change, words):
    with pytest.raises(TrackingRefused) as raised:
        await write(change)
    assert words in raised.value.message and not raised.value.retryable


@pytest.mark.asyncio
async def test_a_repeat_of_an_identical_upload_counts_as_done():
    told, _ = await write(update(), json_response(200, load_vendor_json("groupon", "tracking_already_uploaded.json")))
    assert told is True


@pytest.mark.asyncio
async def test_a_lost_answer_is_retried_and_the_repeat_answered_as_already_uploaded_is_done():
    replies = (httpx.ReadTimeout, json_response(200, load_vendor_json("groupon", "tracking_already_uploaded.json")))
    told, requests = await write(update(), *replies)
    assert told is True and len(requests) == 2


@pytest.mark.asyncio
async def test_other_tracking_already_uploaded_is_refused_with_groupons_reason():
    with pytest.raises(TrackingRefused) as raised:
        await write(update(), json_response(200, load_vendor_json("groupon", "tracking_conflict.json")))
    assert "contact Groupon support" in raised.value.message and not raised.value.retryable


@pytest.mark.asyncio
async def test_a_refused_token_is_unauthorized():
    with pytest.raises(Unauthorized):
        await write(update(), json_response(200, load_vendor_json("groupon", "error_unauthorized.json")))


@pytest.mark.asyncio
async def test_delivery_has_nothing_to_write():
    told, requests = await write(update(WritebackStep.DELIVER))
    assert told is False and requests == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("step", "words"), [(WritebackStep.VOID, "CommerceInterface portal"), (WritebackStep.RETRACT, "Groupon support")]
)
async def test_void_and_retract_have_no_api_and_say_what_to_do(step, words):
    with pytest.raises(InvalidRequest) as raised:
        await write(update(WritebackStep.SHIP, step))
    assert words in raised.value.message and not raised.value.retryable


def test_the_approved_list_is_the_seed_pages_58_couriers_each_with_two_spellings():
    assert len(codes.APPROVED_CARRIERS) == 58
    assert len({code for code, _, _ in codes.APPROVED_CARRIERS}) == 58
    assert len(codes.CARRIER_CODES) == 116
    assert codes.approved_code("yDL") is None and codes.approved_code("ydl") == "YDL"


def test_the_approved_list_matches_the_seed_pages_table_as_carrier_mapping_keeps_it():
    # carrier mapping keeps the seed page's table as test data: one source for both lists.
    source = Path(__file__).resolve().parents[4] / "services/carrier_mapping/tests/data/groupon_approved_couriers.csv"
    with source.open(encoding="utf-8") as handle:
        rows = {(row["code"], row["alias"], row["name"]) for row in csv.DictReader(handle)}
    assert rows == set(codes.APPROVED_CARRIERS)


# --- with the order's lines known: lines of this order only, partial lines at line level -------


def order_line(line_id: str, quantity: int, fulfillment_line: str = "") -> order_pb2.OrderLine:
    options = (
        [order_pb2.LineOption(name=codes.OPTION_FULFILLMENT_LINE, value=fulfillment_line)] if fulfillment_line else []
    )
    return order_pb2.OrderLine(channel_line_id=line_id, sku="SKU", quantity=quantity, options=options)


def update_with_lines(*lines: order_pb2.OrderLine, **changes: Any) -> ChannelUpdate:
    return replace(update(**changes), order_lines=lines)


@pytest.mark.asyncio
async def test_lines_shipped_whole_go_by_tracking_notification_alone():
    change = update_with_lines(order_line("54553920", 2, "fl-1"), order_line("54553921", 1, "fl-2"))
    told, (request,) = await write(change, json_response(200, OK))
    assert told is True and request.url.path.endswith("/tracking_notification")
    assert [e["ci_lineitem_id"] for e in tracking_info(request)] == [54553920, 54553921]


@pytest.mark.asyncio
async def test_a_line_shipped_in_part_goes_by_lineitem_tracking_notification_with_its_fulfillment_line():
    change = update_with_lines(order_line("54553920", 5, "fl-1"), order_line("54553921", 1, "fl-2"))
    told, (whole, partial) = await write(change, json_response(200, OK), json_response(200, OK))
    assert told is True
    assert whole.url.path.endswith("/tracking_notification")
    assert [e["ci_lineitem_id"] for e in tracking_info(whole)] == [54553921]
    assert partial.url.path.endswith("/lineitem_tracking_notification")
    assert tracking_info(partial) == [
        {"carrier": "RYM", "fulfillment_lineitem_id": "fl-1", "tracking": "RM123456785GB", "quantity": 2}
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("lines", "words"),
    [
        ((order_line("54553920", 2, "fl-1"),), "line 54553921 is not a line of this order"),
        ((order_line("54553920", 1, "fl-1"), order_line("54553921", 1, "fl-2")), "ships 2 of 1 ordered"),
        ((order_line("54553920", 3), order_line("54553921", 1, "fl-2")), "lacks"),
    ],
)
async def test_a_shipment_not_matching_the_order_lines_is_refused_before_any_call(lines, words):
    recorder = RequestRecorder()
    async with client(recorder.transport) as groupon:
        with pytest.raises(TrackingRefused, match=words) as refused:
            await GrouponConnector().write_back(groupon, settings(), update_with_lines(*lines))
    assert not refused.value.retryable and recorder.requests == []
