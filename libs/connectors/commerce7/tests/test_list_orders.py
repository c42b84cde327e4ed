"""Listing a window of Commerce7 orders for reconciliation: the updatedAt=btw filter in Commerce7's
timestamp form, cursor paging to the end, and each order parsed with its webhook's revision."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.connectors.base.contract import Capability, ParsedOrder
from libs.connectors.base.testing import RequestRecorder, json_response
from libs.connectors.commerce7.client import Commerce7Client
from libs.connectors.commerce7.connector import Commerce7Account, Commerce7Connector
from libs.connectors.commerce7.orders import parse_order
from libs.connectors.commerce7.tests.builders import TENANT, settings, web_ship_order

pytestmark = pytest.mark.asyncio

SINCE = datetime(2026, 3, 1, 8, 0, 0, 123000, tzinfo=UTC)
UNTIL = datetime(2026, 3, 3, 8, 0, 0, tzinfo=UTC)


async def test_the_window_is_listed_page_by_page_with_the_btw_filter() -> None:
    first, second = web_ship_order(id="a", orderNumber=1001), web_ship_order(id="b", orderNumber=1002)
    recorder = RequestRecorder(
        json_response(200, {"orders": [first], "total": 2, "cursor": "next-1"}),
        json_response(200, {"orders": [second], "total": 2, "cursor": None}),
    )
    connector = Commerce7Connector()
    assert connector.info.can(Capability.LIST_ORDERS)
    account = Commerce7Account(settings(), "hook", "pw")
    async with Commerce7Client(settings(), transport=recorder.transport) as c7:
        page = await connector.list_orders(c7, account, SINCE, UNTIL, "", TENANT)
        assert page.more and page.next_cursor == "next-1"
        last = await connector.list_orders(c7, account, SINCE, UNTIL, page.next_cursor, TENANT)
    assert not last.more and last.next_cursor == ""
    queries = [dict(request.url.params) for request in recorder.requests]
    window = "btw:2026-03-01T08:00:00.123Z|2026-03-03T08:00:00.000Z"
    assert queries == [{"cursor": "start", "updatedAt": window}, {"cursor": "next-1", "updatedAt": window}]
    listed = [item for item in [*page.orders, *last.orders] if isinstance(item, ParsedOrder)]
    # The same revision a webhook of the order carries: a listed and a pushed order dedupe.
    assert [p.order.revision for p in listed] == [parse_order(o, tenant_id=TENANT)[0].revision for o in (first, second)]
    assert [p.order.external_id for p in listed] == ["a", "b"]


async def test_an_empty_page_ends_the_listing_even_with_a_cursor() -> None:
    recorder = RequestRecorder(json_response(200, {"orders": [], "total": 0, "cursor": "stale"}))
    async with Commerce7Client(settings(), transport=recorder.transport) as c7:
        page = await Commerce7Connector().list_orders(
            c7, Commerce7Account(settings(), "h", "p"), SINCE, UNTIL, "", TENANT
        )
    assert (page.orders, page.next_cursor, page.more) == ([], "", False)
