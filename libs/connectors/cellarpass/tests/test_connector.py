"""The connector's operations on a RequestRecorder: fetch_page and its cursor, sync results,
invite lists, the connection check, and the account settings."""

from __future__ import annotations

import httpx
import pytest

from libs.connectors.base.contract import ConnectionProblem, InviteList, SyncResult
from libs.connectors.base.errors import Conflict, InvalidRequest, InvalidResponse, NotFound, Unavailable
from libs.connectors.base.settings import SettingsError
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json, request_json
from libs.connectors.cellarpass.connector import INACTIVE_DETAIL, CellarPassConnector
from libs.connectors.cellarpass.cursor import Cursor, decode
from libs.connectors.cellarpass.tests.builders import client, page_answer, reservation

CONNECTOR = CellarPassConnector()


async def fetch(cursor: str, *replies, page_size: int = 50):
    recorder = RequestRecorder(*replies)
    async with client(recorder.transport, page_size=page_size) as cellarpass:
        page = await CONNECTOR.fetch_page(cellarpass, cellarpass.settings, cursor, "harbour")
    return page, recorder.requests


def ids(page) -> list[str]:
    return [p.order.external_id for p in page.orders]


def at(rid: str, updated: str) -> dict:
    return reservation(0, reservationId=rid, updatedAt=updated)


@pytest.mark.asyncio
async def test_the_first_page_asks_every_status_oldest_change_first_and_moves_the_watermark():
    sample = load_vendor_json("cellarpass", "list_reservations_page.json")
    page, (request,) = await fetch("", json_response(200, sample))
    assert dict(request.url.params) == {"status": "all", "page": "1", "pageSize": "50"}
    assert ids(page) == ["R-10041", "R-10042", "R-10043"] and page.more is False
    assert decode(page.next_cursor) == Cursor("2026-12-01T17:05:00.000Z", 1, ("R-10043",))


@pytest.mark.asyncio
async def test_the_first_poll_of_an_account_with_a_start_reads_from_it():
    recorder = RequestRecorder(page_answer())
    async with client(recorder.transport, start_at="2026-12-01T00:00:00Z") as cellarpass:
        page = await CONNECTOR.fetch_page(cellarpass, cellarpass.settings, "", "harbour")
    assert recorder.last.url.params["updatedSince"] == "2026-12-01T00:00:00Z"
    assert decode(page.next_cursor) == Cursor("2026-12-01T00:00:00Z")


@pytest.mark.asyncio
async def test_the_next_poll_reads_from_the_watermark_and_drops_what_it_returned_there():
    cursor = Cursor("2026-12-01T17:05:00.000Z", 1, ("R-10043",)).encode()
    page, (request,) = await fetch(
        cursor, page_answer(at("R-10043", "2026-12-01T17:05:00.000Z"), at("R-10041", "2026-12-01T18:00:00.000Z"))
    )
    assert request.url.params["updatedSince"] == "2026-12-01T17:05:00.000Z"
    # R-10041 changed after it was read (e.g. a refund after its sync): it comes back, newer.
    assert ids(page) == ["R-10041"] and page.orders[0].order.revision == "2026-12-01T18:00:00.000Z"
    assert decode(page.next_cursor) == Cursor("2026-12-01T18:00:00.000Z", 1, ("R-10041",))


@pytest.mark.asyncio
async def test_a_full_page_says_more_and_the_cursor_resumes_after_it():
    rows = [at(f"R-{i}", f"2026-12-01T17:00:0{i}.000Z") for i in range(2)]
    page, _ = await fetch("", page_answer(*rows, page_size=2, total=5), page_size=2)
    assert page.more is True
    assert decode(page.next_cursor) == Cursor("2026-12-01T17:00:01.000Z", 1, ("R-1",))


@pytest.mark.asyncio
async def test_a_full_page_at_one_instant_walks_on_to_the_next_page_of_it():
    same = "2026-12-01T17:00:00.000Z"
    cursor = Cursor(same, 1, ("R-1", "R-2")).encode()
    page, (request,) = await fetch(
        cursor, page_answer(at("R-1", same), at("R-2", same), page_size=2, total=4), page_size=2
    )
    assert ids(page) == [] and page.more is True
    assert decode(page.next_cursor) == Cursor(same, 2, ("R-1", "R-2"))
    page, (request, overlap) = await fetch(
        page.next_cursor,
        page_answer(at("R-3", same), at("R-4", same), page=2, page_size=2, total=4),
        page_answer(at("R-1", same), at("R-2", same), page_size=2, total=4),
        page_size=2,
    )
    assert (request.url.params["page"], overlap.url.params["page"]) == ("2", "1")
    assert ids(page) == ["R-3", "R-4"]
    assert page.more is False and decode(page.next_cursor) == Cursor(same, 3, ("R-1", "R-2", "R-3", "R-4"))


@pytest.mark.asyncio
async def test_a_reservation_leaving_the_instant_mid_walk_does_not_hide_the_one_behind_it():
    same, later = "2026-12-01T17:00:00.000Z", "2026-12-01T18:00:00.000Z"
    cursor = Cursor(same, 2, ("R-1", "R-2")).encode()
    # R-1 changed after page 1 was read: R-3 moved onto page 1, R-1 to the end.
    page, _ = await fetch(
        cursor,
        page_answer(at("R-4", same), at("R-1", later), page=2, page_size=2, total=4),
        page_answer(at("R-2", same), at("R-3", same), page_size=2, total=4),
        page_size=2,
    )
    assert ids(page) == ["R-3", "R-4", "R-1"]
    assert decode(page.next_cursor) == Cursor(later, 1, ("R-1",))


@pytest.mark.asyncio
async def test_a_page_fetched_again_after_a_crash_returns_the_same_orders():
    sample = load_vendor_json("cellarpass", "list_reservations_page.json")
    first, _ = await fetch("", json_response(200, sample))
    again, _ = await fetch("", json_response(200, sample))
    assert [p.order for p in first.orders] == [p.order for p in again.orders]
    assert first.next_cursor == again.next_cursor


@pytest.mark.asyncio
async def test_an_empty_page_keeps_the_cursor():
    cursor = Cursor("2026-12-01T17:05:00.000Z", 1, ("R-10043",)).encode()
    page, _ = await fetch(cursor, page_answer())
    assert page.orders == [] and page.next_cursor == cursor and page.more is False


@pytest.mark.asyncio
async def test_a_full_page_without_a_readable_updated_at_is_refused():
    with pytest.raises(InvalidResponse):
        await fetch("", page_answer(reservation(0, updatedAt="soon"), page_size=1, total=3), page_size=1)


@pytest.mark.asyncio
async def test_a_cursor_it_did_not_write_is_refused_without_a_request():
    with pytest.raises(InvalidRequest):
        await fetch("not-a-cursor")


@pytest.mark.asyncio
async def test_a_page_without_its_fields_is_an_invalid_response():
    with pytest.raises(InvalidResponse):
        await fetch("", json_response(200, {"reservations": []}))


# ---- sync results ------------------------------------------------------------------------


async def report(results, *replies):
    recorder = RequestRecorder(*replies)
    async with client(recorder.transport) as cellarpass:
        await CONNECTOR.report_sync_results(cellarpass, cellarpass.settings, results)
    return recorder.requests


@pytest.mark.asyncio
async def test_each_result_is_posted_to_its_reservation():
    ok = json_response(200, load_vendor_json("cellarpass", "sync_result_processed.json"))
    requests = await report(
        [SyncResult("R-10041", provider_reference="58213"), SyncResult("R-10042", failure="SKU TOUR-BRL unknown")],
        ok,
        ok,
    )
    assert [r.url.path for r in requests] == [
        "/api/v1/reservations/R-10041/sync-result",
        "/api/v1/reservations/R-10042/sync-result",
    ]
    assert [request_json(r) for r in requests] == [
        {"success": True, "externalOrderId": "58213", "error": ""},
        {"success": False, "externalOrderId": "", "error": "SKU TOUR-BRL unknown"},
    ]


@pytest.mark.asyncio
async def test_an_unknown_reservation_is_named_after_the_others_are_posted():
    gone = json_response(404, load_vendor_json("cellarpass", "sync_result_not_found.json"))
    ok = json_response(200, {})
    with pytest.raises(NotFound, match="R-99999") as raised:
        await report(
            [SyncResult("R-99999", provider_reference="1"), SyncResult("R-10041", provider_reference="2")], gone, ok
        )
    assert raised.value.retryable is False


@pytest.mark.asyncio
async def test_a_result_contradicting_a_processed_one_is_a_conflict_naming_it_after_the_rest():
    processed = json_response(409, {"code": "ALREADY_PROCESSED", "message": "processed as order 1"})
    recorder = RequestRecorder(processed, json_response(200, {}))
    async with client(recorder.transport) as cellarpass:
        with pytest.raises(Conflict, match="R-1"):
            await CONNECTOR.report_sync_results(
                cellarpass,
                cellarpass.settings,
                [SyncResult("R-1", failure="late"), SyncResult("R-2", provider_reference="2")],
            )
    assert [r.url.path for r in recorder.requests] == [
        "/api/v1/reservations/R-1/sync-result",
        "/api/v1/reservations/R-2/sync-result",
    ]


@pytest.mark.asyncio
async def test_a_vendor_outage_raises_retryable_so_the_whole_report_is_repeated():
    with pytest.raises(Unavailable):
        await report(
            [SyncResult("R-1", provider_reference="1")], json_response(500), json_response(500), json_response(500)
        )


# ---- invite lists --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_customer_types_are_invite_lists_and_staff_made_ones_have_no_source():
    recorder = RequestRecorder(
        json_response(200, load_vendor_json("cellarpass", "list_customer_types.json")),
        json_response(201, load_vendor_json("cellarpass", "put_customer_type_created.json")),
        json_response(404, {}),
    )
    async with client(recorder.transport) as cellarpass:
        lists = await CONNECTOR.list_invite_lists(cellarpass, cellarpass.settings)
        put = await CONNECTOR.put_invite_list(cellarpass, cellarpass.settings, "Allocation List", "19")
        removed = await CONNECTOR.remove_invite_list(cellarpass, cellarpass.settings, "CT-9")
    assert lists == [
        InviteList("CT-1", "Wine Club", "12"),
        InviteList("CT-2", "Trade", "14"),
        InviteList("CT-3", "Friends of the Winery", ""),
    ]
    assert put == InviteList("CT-4", "Allocation List", "19") and removed is False


@pytest.mark.asyncio
async def test_a_customer_type_list_that_is_no_array_is_an_invalid_response():
    recorder = RequestRecorder(json_response(200, {"types": []}))
    async with client(recorder.transport) as cellarpass:
        with pytest.raises(InvalidResponse):
            await CONNECTOR.list_invite_lists(cellarpass, cellarpass.settings)


# ---- connection check ------------------------------------------------------------------------


async def check(*replies):
    recorder = RequestRecorder(*replies)
    async with client(recorder.transport) as cellarpass:
        return await CONNECTOR.check_connection(cellarpass, cellarpass.settings)


@pytest.mark.asyncio
async def test_the_connection_check_passes_on_200():
    result = await check(json_response(200, load_vendor_json("cellarpass", "list_customer_types.json")))
    assert result.ok and result.problem is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("replies", "problem", "words"),
    [
        ((json_response(401, {}),), ConnectionProblem.BAD_CREDENTIALS, "api_key"),
        ((json_response(403, {}),), ConnectionProblem.ACCOUNT_INACTIVE, INACTIVE_DETAIL),
        ((json_response(503),) * 3, ConnectionProblem.UNREACHABLE, "did not answer"),
        ((httpx.ConnectTimeout,) * 3, ConnectionProblem.UNREACHABLE, "did not answer"),
        ((httpx.ConnectError,) * 3, ConnectionProblem.UNREACHABLE, "did not answer"),
        ((json_response(429, {}, headers={"Retry-After": "1"}),) * 3, ConnectionProblem.UNREACHABLE, "rate limiting"),
        ((httpx.Response(200, content=b"{"),), ConnectionProblem.UNREACHABLE, "did not answer"),
    ],
    ids=["401", "403", "5xx", "timeout", "network", "429", "malformed"],
)
async def test_the_connection_check_names_the_problem_and_never_raises(replies, problem, words):
    result = await check(*replies)
    assert not result.ok and result.problem is problem and words in result.detail


# ---- settings -----------------------------------------------------------------------------


def resolve(reference: str, where: str) -> str:
    return "key-value"


def test_settings_take_the_common_account_keys_and_refuse_a_page_size_above_50():
    section = {"connector": "cellarpass", "base_url": "https://cp", "api_key": "env:K", "poll_interval_s": 300}
    assert CONNECTOR.parse_settings(section, resolve, "here").page_size == 50
    with pytest.raises(SettingsError, match="page_size"):
        CONNECTOR.parse_settings(section | {"page_size": 51}, resolve, "here")
    assert CONNECTOR.parse_settings(section | {"start_at": "2026-12-01"}, resolve, "here").start_at == "2026-12-01"
    with pytest.raises(SettingsError, match="start_at"):
        CONNECTOR.parse_settings(section | {"start_at": "last week"}, resolve, "here")
