"""fetch_page: every page of one pass read back to back, orders built whole, a shifting listing
read again, `success: false` raised with its reason (requests checked on the RequestRecorder)."""

from __future__ import annotations

import httpx
import pytest

from libs.connectors.base.contract import ParsedOrder
from libs.connectors.base.errors import InvalidRequest, InvalidResponse, RateLimited, Unauthorized, Unavailable
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json
from libs.connectors.groupon.connector import GrouponConnector
from libs.connectors.groupon.errors import ListingChanged
from libs.connectors.groupon.tests.builders import client, entry_with, page_answer, settings


async def fetch(*replies):
    recorder = RequestRecorder(*replies)
    async with client(recorder.transport) as groupon:
        page = await GrouponConnector().fetch_page(groupon, settings(), "", "harbour")
    return page, recorder.requests


def pages_asked(requests: list[httpx.Request]) -> list[str]:
    return [r.url.params["page"] for r in requests]


def line_ids(parsed: ParsedOrder) -> list[str]:
    return [line.channel_line_id for line in parsed.order.lines]


@pytest.mark.asyncio
async def test_one_page_is_asked_with_the_supplier_id_and_token_and_has_no_cursor():
    page, requests = await fetch(json_response(200, load_vendor_json("groupon", "get_orders_page.json")))
    (request,) = requests
    assert request.method == "GET" and request.url.path == "/api/v4/get_orders"
    assert dict(request.url.params) == {"page": "1", "supplier_id": "48213", "token": "tok-secret"}
    assert page.next_cursor == "" and page.more is False
    assert [p.order.external_id for p in page.orders] == ["FFB7A681BE"]


@pytest.mark.asyncio
async def test_an_order_split_across_three_pages_is_built_once_from_all_its_lines():
    replies = (
        page_answer(1, 3, 5, entry_with("A", 1), entry_with("B", 2, 3)),
        page_answer(2, 3, 5, entry_with("B", 4)),
        page_answer(3, 3, 5, entry_with("B", 5), entry_with("C", 6)),
    )
    page, requests = await fetch(*replies)
    assert pages_asked(requests) == ["1", "2", "3"]
    orders = {p.order.external_id: p for p in page.orders}
    assert list(orders) == ["A", "B", "C"]
    assert line_ids(orders["B"]) == ["2", "3", "4", "5"]
    assert orders["B"].ack_token == '["2", "3", "4", "5"]'


@pytest.mark.asyncio
async def test_an_empty_listing_is_one_request_and_no_orders():
    page, requests = await fetch(page_answer(1, 0, 0))
    assert page.orders == [] and len(requests) == 1


@pytest.mark.asyncio
async def test_a_listing_that_shifts_between_pages_is_read_again_from_page_one():
    replies = (
        page_answer(1, 2, 3, entry_with("A", 1, 2)),
        # Line 1 was marked exported meanwhile: one item fewer, line 3 moved up.
        page_answer(2, 1, 2, entry_with("B", 4)),
        page_answer(1, 2, 3, entry_with("B", 2, 3)),
        page_answer(2, 2, 3, entry_with("B", 4)),
    )
    page, requests = await fetch(*replies)
    assert pages_asked(requests) == ["1", "2", "1", "2"]
    (only,) = page.orders
    assert only.order.external_id == "B" and line_ids(only) == ["2", "3", "4"]


@pytest.mark.asyncio
async def test_a_line_seen_on_two_pages_of_one_pass_means_the_listing_moved_and_is_read_again():
    replies = (
        page_answer(1, 2, 4, entry_with("A", 1, 2)),
        page_answer(2, 2, 4, entry_with("A", 2), entry_with("B", 3)),  # same counts, line 2 again
        page_answer(1, 2, 4, entry_with("A", 1, 2)),
        page_answer(2, 2, 4, entry_with("B", 3, 4)),
    )
    page, requests = await fetch(*replies)
    assert pages_asked(requests) == ["1", "2", "1", "2"]
    assert [line_ids(p) for p in page.orders] == [["1", "2"], ["3", "4"]]


@pytest.mark.asyncio
async def test_a_listing_that_never_holds_still_is_a_retryable_error_saying_so():
    replies = []
    for items in (10, 9, 8):
        replies += [page_answer(1, 2, items, entry_with("A", 1)), page_answer(2, 2, items - 1, entry_with("B", 2))]
    with pytest.raises(ListingChanged) as raised:
        await fetch(*replies)
    assert raised.value.retryable and isinstance(raised.value, Unavailable)
    assert "listing changed" in raised.value.message


@pytest.mark.asyncio
async def test_a_refused_token_in_a_200_is_unauthorized_with_the_reason():
    with pytest.raises(Unauthorized) as raised:
        await fetch(json_response(200, load_vendor_json("groupon", "error_unauthorized.json")))
    assert "Invalid supplier_id or token" in raised.value.message
    assert "tok-secret" not in raised.value.message


@pytest.mark.asyncio
async def test_another_refusal_in_a_200_is_an_invalid_request_with_the_reason():
    with pytest.raises(InvalidRequest) as raised:
        await fetch(json_response(200, {"success": False, "reason": "Page out of range"}))
    assert "Page out of range" in raised.value.message and not raised.value.retryable


@pytest.mark.asyncio
async def test_a_server_error_is_retried_and_a_429_waited_out():
    replies = (
        json_response(502, {}),
        httpx.ReadTimeout,
        json_response(429, {}, headers={"Retry-After": "2"}),
        json_response(200, load_vendor_json("groupon", "get_orders_page.json")),
    )
    page, requests = await fetch(*replies)
    assert len(requests) == 4 and len(page.orders) == 1


@pytest.mark.asyncio
async def test_429s_past_the_last_attempt_are_rate_limited():
    with pytest.raises(RateLimited):
        await fetch(*[json_response(429, {}, headers={"Retry-After": "1"})] * 4)


@pytest.mark.asyncio
async def test_an_answer_without_a_success_flag_is_refused():
    with pytest.raises(InvalidResponse):
        await fetch(json_response(200, {"meta": {}}))


@pytest.mark.asyncio
async def test_the_same_listing_fetched_twice_gives_equal_orders():
    body = load_vendor_json("groupon", "get_orders_page.json")
    first, _ = await fetch(json_response(200, body))
    again, _ = await fetch(json_response(200, body))
    assert [(p.order, p.ack_token) for p in first.orders] == [(p.order, p.ack_token) for p in again.orders]
