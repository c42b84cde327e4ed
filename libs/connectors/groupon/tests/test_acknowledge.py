"""acknowledge: mark_exported with the orders' ci_lineitem_ids (a JSON array in a form), chunked,
only when the account marks exported; acknowledge_when follows the setting."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import AckMoment, ParsedOrder
from libs.connectors.base.errors import InvalidRequest
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json
from libs.connectors.groupon.connector import GrouponConnector
from libs.connectors.groupon.tests.builders import client, settings

OK = load_vendor_json("groupon", "mark_exported_ok.json")


def order(external_id: str, *line_ids: int) -> ParsedOrder:
    return ParsedOrder(order_pb2.Order(external_id=external_id), ack_token=json.dumps([str(i) for i in line_ids]))


def form(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


async def acknowledge(orders, *replies, mark_exported: bool = True):
    recorder = RequestRecorder(*replies)
    async with client(recorder.transport, mark_exported=mark_exported) as groupon:
        await GrouponConnector().acknowledge(groupon, settings(mark_exported=mark_exported), orders)
    return recorder.requests


def test_orders_are_acknowledged_on_handover_when_marking_exported_and_never_otherwise():
    connector = GrouponConnector()
    assert connector.acknowledge_when(settings(mark_exported=True)) is AckMoment.ON_HANDOVER
    assert connector.acknowledge_when(settings(mark_exported=False)) is AckMoment.NEVER


@pytest.mark.asyncio
async def test_the_lines_of_the_orders_are_marked_exported_in_one_form_post():
    requests = await acknowledge([order("A", 12, 3), order("B", 7)], json_response(200, OK))
    (request,) = requests
    assert request.method == "POST" and request.url.path == "/api/v4/mark_exported"
    sent = form(request)
    assert (sent["supplier_id"], sent["token"]) == ("48213", "tok-secret")
    assert json.loads(sent["ci_lineitem_ids"]) == [3, 7, 12]
    assert "token" not in request.url.params


@pytest.mark.asyncio
async def test_many_lines_go_in_chunks_of_a_hundred():
    orders = [order(f"O{i}", i) for i in range(1, 251)]
    requests = await acknowledge(orders, *[json_response(200, OK)] * 3)
    chunks = [json.loads(form(r)["ci_lineitem_ids"]) for r in requests]
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert [i for c in chunks for i in c] == list(range(1, 251))


@pytest.mark.asyncio
async def test_a_repeat_sends_the_same_and_a_lost_answer_is_retried():
    requests = await acknowledge([order("A", 1)], httpx.ReadTimeout, json_response(503, {}), json_response(200, OK))
    assert len(requests) == 3 and {r.content for r in requests} == {requests[0].content}


@pytest.mark.asyncio
async def test_an_account_not_marking_exported_sends_nothing():
    assert await acknowledge([order("A", 1)], mark_exported=False) == []


@pytest.mark.asyncio
async def test_a_refused_mark_is_an_error_with_the_reason():
    with pytest.raises(InvalidRequest) as raised:
        await acknowledge(
            [order("A", 99999999)], json_response(200, load_vendor_json("groupon", "mark_exported_unknown.json"))
        )
    assert "Unknown ci_lineitem_id" in raised.value.message


@pytest.mark.asyncio
async def test_an_ack_token_this_connector_did_not_write_is_refused_before_any_call():
    bad = ParsedOrder(order_pb2.Order(external_id="A"), ack_token="12,13")
    with pytest.raises(InvalidRequest):
        await acknowledge([bad])
