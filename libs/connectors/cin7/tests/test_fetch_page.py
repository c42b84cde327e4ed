"""fetch_page: the ModifiedDate cursor never skips an order and never loops, ties included."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.connectors.base.contract import Ignored, ParsedOrder
from libs.connectors.base.errors import InvalidRequest, InvalidResponse
from libs.connectors.base.testing import RequestRecorder, json_response
from libs.connectors.cin7.cursor import decode
from libs.connectors.cin7.tests.builders import NOW, client, connector, sales_order
from libs.connectors.cin7.tests.builders import settings as cin7_settings

T1, T2, T3 = "2024-05-02T10:00:00Z", "2024-05-02T11:00:00Z", "2024-05-02T12:00:00Z"


def row(order_id: int, modified: str) -> dict:
    return sales_order(id=order_id, reference=f"SO-{order_id}", modifiedDate=modified)


async def fetch(replies, cursor: str, page_size: int = 3):
    recorder = RequestRecorder(*replies)
    account = cin7_settings(page_size=page_size)
    async with client(recorder.transport) as cin7:
        page = await connector().fetch_page(cin7, account, cursor, "harbour")
    return page, recorder.requests


def ids(page) -> list[str]:
    return [parsed.order.external_id for parsed in page.orders if isinstance(parsed, ParsedOrder)]


def where(request: httpx.Request) -> str:
    return request.url.params.get("where", "")


@pytest.mark.asyncio
async def test_first_poll_starts_at_the_lookback_and_keeps_the_ids_at_the_watermark():
    page, requests = await fetch([json_response(200, [row(1, T1), row(2, T2), row(3, T2)])], "")
    start = (NOW - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert where(requests[0]) == f"ModifiedDate>='{start}'" and requests[0].url.params["page"] == "1"
    assert ids(page) == ["1", "2", "3"] and page.more  # a full page: poll again at once
    cursor = decode(page.next_cursor)
    assert (cursor.watermark, cursor.seen, cursor.after_id, cursor.past) == (T2, (2, 3), None, False)


@pytest.mark.asyncio
async def test_equal_timestamps_across_page_boundaries_are_each_returned_once():
    # Orders 2..6 share T2; pages of 3 cut through them twice. Cin7 orders ties as it likes.
    page1, _ = await fetch([json_response(200, [row(1, T1), row(3, T2), row(2, T2)])], "")
    page2, requests2 = await fetch([json_response(200, [row(3, T2), row(4, T2), row(2, T2)])], page1.next_cursor)
    assert where(requests2[0]) == f"ModifiedDate>='{T2}'"
    assert ids(page2) == ["4"] and page2.more
    # A full page all at the watermark: asking `>=` again would loop, so the instant is walked by id.
    walk = decode(page2.next_cursor)
    assert walk.after_id == 0 and walk.seen == (2, 3, 4)
    page3, requests3 = await fetch([json_response(200, [row(2, T2), row(3, T2), row(4, T2)])], page2.next_cursor)
    assert where(requests3[0]) == f"ModifiedDate='{T2}' AND Id>0" and requests3[0].url.params["order"] == "Id ASC"
    assert ids(page3) == [] and page3.more
    page4, requests4 = await fetch([json_response(200, [row(5, T2), row(6, T2)])], page3.next_cursor)
    assert where(requests4[0]) == f"ModifiedDate='{T2}' AND Id>4"
    assert ids(page4) == ["5", "6"] and page4.more  # the instant is done; later ones follow at once
    page5, requests5 = await fetch([json_response(200, [row(7, T3)])], page4.next_cursor)
    assert where(requests5[0]) == f"ModifiedDate>'{T2}'"
    assert ids(page5) == ["7"]


@pytest.mark.asyncio
async def test_a_page_fetched_twice_returns_the_same_orders_and_cursor():
    replies = [row(4, T2), row(5, T3)]
    first, _ = await fetch([json_response(200, replies)], decode_cursor := '{"seen":[2,3],"w":"' + T2 + '"}')
    again, _ = await fetch([json_response(200, replies)], decode_cursor)
    assert ids(first) == ids(again) == ["4", "5"] and first.next_cursor == again.next_cursor
    assert [p.order for p in first.orders] == [p.order for p in again.orders]


@pytest.mark.asyncio
async def test_an_empty_page_keeps_the_cursor():
    cursor = '{"seen":[2],"w":"' + T2 + '"}'
    page, _ = await fetch([json_response(200, [])], cursor)
    assert page.orders == [] and not page.more and decode(page.next_cursor) == decode(cursor)


@pytest.mark.asyncio
async def test_orders_failing_import_rules_come_back_with_rule_failures_not_issues():
    page, _ = await fetch([json_response(200, [sales_order(stage="New")])], "")
    assert len(page.orders) == 1 and page.orders[0].issues == []
    assert [(f.field, f.code) for f in page.orders[0].rule_failures] == [("stage", "NOT_FULLY_PICKED")]


@pytest.mark.asyncio
async def test_dispatched_orders_are_ignored_so_our_own_write_back_does_not_come_back_invalid():
    page, _ = await fetch([json_response(200, [sales_order(stage="Dispatched"), sales_order(id=2)])], "")
    assert isinstance(page.orders[0], Ignored) and "SO-10482" in page.orders[0].reason
    assert ids(page) == ["2"]
    # The cursor moves past ignored orders too.
    assert decode(page.next_cursor).watermark == "2024-05-02T16:40:00Z"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "cursor", ["{", '{"x":1}', '{"w":"abc"}', '{"w":"x\' OR 1=1"}', '{"w":"a","seen":["b"]}', "[]"]
)
async def test_a_cursor_this_connector_did_not_write_is_refused(cursor):
    with pytest.raises(InvalidRequest):
        await fetch([], cursor)


@pytest.mark.asyncio
async def test_a_full_page_without_dates_cannot_move_on_and_says_so():
    rows = [sales_order(id=i, modifiedDate=None) for i in (1, 2, 3)]
    with pytest.raises(InvalidResponse):
        await fetch([json_response(200, rows)], "")


# ---- property: any data set, any page size, ties in any order ------------------------------


class FakeCin7:
    """Answers the three `where` forms the cursor writes over a fixed set of orders."""

    FORMS = (
        (re.compile(r"^ModifiedDate>='([^']+)'$"), lambda m, w: m >= w),
        (re.compile(r"^ModifiedDate>'([^']+)'$"), lambda m, w: m > w),
    )
    WALK = re.compile(r"^ModifiedDate='([^']+)' AND Id>(\d+)$")

    def __init__(self, orders: list[tuple[int, str]], seed: int) -> None:
        self.orders = orders
        self.rng = random.Random(seed)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        text, rows = request.url.params["where"], int(request.url.params["rows"])
        walk = self.WALK.match(text)
        if walk:
            chosen = sorted(o for o in self.orders if o[1] == walk[1] and o[0] > int(walk[2]))
        else:
            pattern, keep = next((p, k) for p, k in self.FORMS if p.match(text))
            mark = pattern.match(text)[1]  # type: ignore[index]
            chosen = [o for o in self.orders if keep(o[1], mark)]
            self.rng.shuffle(chosen)  # ties come in any order
            chosen.sort(key=lambda o: o[1])
        return json_response(200, [row(i, m) for i, m in chosen[:rows]])


@settings(max_examples=60, deadline=None)
@given(
    instants=st.lists(st.integers(min_value=0, max_value=4), min_size=0, max_size=25),
    page_size=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_paging_returns_every_order_once_and_ends(instants, page_size, seed):
    orders = [(i + 1, f"2024-05-02T1{t}:00:00Z") for i, t in enumerate(instants)]
    fake = FakeCin7(orders, seed)

    async def drain() -> list[str]:
        seen: list[str] = []
        cursor = '{"w":"2024-05-01T00:00:00Z"}'
        async with client(RequestRecorder(*[fake] * 200).transport) as cin7:
            for _ in range(200):
                page = await connector().fetch_page(cin7, cin7_settings(page_size=page_size), cursor, "t")
                seen += ids(page)
                cursor = page.next_cursor
                if not page.more:
                    return seen
        raise AssertionError("paging did not end")

    seen = asyncio.run(drain())
    assert sorted(seen, key=int) == [str(i) for i, _ in orders]
