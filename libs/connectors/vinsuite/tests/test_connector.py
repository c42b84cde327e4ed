"""The VinSuite connector against recorded answers: every submit path, read-back, the directory,
the connection check, and the errors each answer becomes."""

from __future__ import annotations

import httpx
import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import ConnectionProblem, Notice, Submitted, UpsertedMember
from libs.connectors.base.errors import (
    ConnectorError,
    InvalidRequest,
    InvalidResponse,
    RateLimited,
    Rejected,
    Timeout,
    Unauthorized,
    Unavailable,
)
from libs.connectors.base.http import RetryPolicy
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json, request_json
from libs.connectors.vinsuite.client import VinSuiteClient
from libs.connectors.vinsuite.connector import CONNECTOR
from libs.connectors.vinsuite.orders import DateSource
from libs.connectors.vinsuite.tests.builders import (
    ORDER_NUMBER,
    SYNC_DAY,
    WINERY_ID,
    account,
    client,
    submission,
    valid_order,
)

pytestmark = pytest.mark.asyncio


def sample(name: str) -> httpx.Response:
    return json_response(200, load_vendor_json("vinsuite", name))


def method_of(request: httpx.Request) -> str:
    return request.url.path.rsplit("/", 1)[-1]


async def submit_one(recorder: RequestRecorder, item=None, settings=None):
    settings = settings or account()
    async with client(recorder.transport, settings) as vs:
        [result] = await CONNECTOR.submit(vs, settings, [item or submission()])
    return result


async def test_a_submit_posts_a_will_call_order_with_the_guest_as_buyer_then_the_note():
    recorder = RequestRecorder(sample("add_order_ok.json"), sample("add_order_note_ok.json"))
    result = await submit_one(recorder)
    assert isinstance(result, Submitted) and result.provider_reference == "900017"
    assert "order 900017" in result.activity and "guest notes attached" in result.activity
    add, note = recorder.requests
    assert add.method == "POST" and add.url.path == "/2.00/EWSWebServices.asmx/AddOrder"
    assert add.headers["content-type"] == "application/json"
    request = request_json(add)["request"]
    assert request["WineryID"] == WINERY_ID
    assert request["Security"] == {"Username": "cp-partner", "Password": "vs-password-value"}
    assert request["IsSendOrderConfirmation"] is False and request["IsDecrementInventory"] is False
    order = request["Order"]
    assert order["OrderNumber"] == ORDER_NUMBER and order["IsWillCallOrder"] is True
    assert order["OrderItems"] == [{"SKU": "EVT-TASTING", "Quantity": 2, "Price": 45.0}]
    buyer = order["BillingMember"]
    assert (buyer["FirstName"], buyer["LastName"], buyer["Email"]) == ("Ana", "Reyes", "ana@example.com")
    assert (buyer["Address"], buyer["Address2"], buyer["City"], buyer["ZipCode"]) == (
        "1 Vine St",
        "Suite 2",
        "Napa",
        "94558",
    )
    assert (order["OrderDate"], order["PickupDate"]) == ("2026-06-01", "2026-06-12")  # booked, event
    assert method_of(note) == "AddOrderNote"
    assert request_json(note)["request"] | {} == {
        "WineryID": WINERY_ID,
        "Security": {"Username": "cp-partner", "Password": "vs-password-value"},
        "OrderID": "900017",
        "Note": "Celebrating an anniversary",
    }


@pytest.mark.parametrize(
    ("order_date", "pickup_date", "expected"),
    [
        (DateSource.BOOKED, DateSource.EVENT, ("2026-06-01", "2026-06-12")),
        (DateSource.EVENT, DateSource.BOOKED, ("2026-06-12", "2026-06-01")),
        (DateSource.SYNC_DAY, DateSource.EVENT, (SYNC_DAY.isoformat(), "2026-06-12")),
        (DateSource.BOOKED, DateSource.BOOKED, ("2026-06-01", "2026-06-01")),
    ],
)
async def test_each_date_option_puts_its_date_on_the_order(order_date, pickup_date, expected):
    recorder = RequestRecorder(sample("add_order_ok.json"))
    settings = account(order_date=order_date, pickup_date=pickup_date)
    result = await submit_one(recorder, submission(valid_order(customer_notes="")), settings)
    assert isinstance(result, Submitted) and "notes" not in result.activity
    order = request_json(recorder.last)["request"]["Order"]
    assert (order["OrderDate"], order["PickupDate"]) == expected
    assert len(recorder.requests) == 1  # no note to attach: no AddOrderNote


async def test_an_order_without_the_date_its_option_names_is_refused_before_sending():
    result = await submit_one(RequestRecorder(), submission(valid_order(requested_ship_date="")))
    assert isinstance(result, InvalidRequest) and "event date" in result.message


async def test_unknown_skus_vinsuite_created_are_named_in_the_activity():
    recorder = RequestRecorder(sample("add_order_created_products.json"), sample("add_order_note_ok.json"))
    result = await submit_one(recorder)
    assert (
        isinstance(result, Submitted) and "inactive product(s) for unknown SKU(s) EVT-TASTING-0612" in result.activity
    )


async def test_a_send_that_may_have_arrived_is_found_and_not_sent_again():
    recorder = RequestRecorder(sample("search_orders_found.json"))
    result = await submit_one(recorder, submission(may_exist=True))
    assert isinstance(result, Submitted) and result.provider_reference == "900017"
    assert "already in VinSuite as order 900017" in result.activity
    assert [method_of(r) for r in recorder.requests] == ["SearchOrders"]
    assert request_json(recorder.last)["request"]["OrderNumber"] == ORDER_NUMBER
    # The interrupted attempt may have died before its note: said, not guessed at.
    assert "guest notes may NOT be attached" in result.activity


async def test_a_found_order_without_guest_notes_says_nothing_of_notes():
    recorder = RequestRecorder(sample("search_orders_found.json"))
    result = await submit_one(recorder, submission(valid_order(customer_notes=""), may_exist=True))
    assert isinstance(result, Submitted) and "notes" not in result.activity


async def test_a_send_that_may_have_arrived_but_did_not_is_created_once():
    recorder = RequestRecorder(
        sample("search_orders_none.json"), sample("add_order_ok.json"), sample("add_order_note_ok.json")
    )
    result = await submit_one(recorder, submission(may_exist=True))
    assert isinstance(result, Submitted) and result.provider_reference == "900017"
    assert [method_of(r) for r in recorder.requests] == ["SearchOrders", "AddOrder", "AddOrderNote"]


async def test_a_note_refused_after_the_order_was_created_never_resends_the_order():
    recorder = RequestRecorder(sample("add_order_ok.json"), sample("add_order_note_failed.json"))
    result = await submit_one(recorder)
    assert isinstance(result, Submitted) and result.provider_reference == "900017"
    assert "NOT attached" in result.activity and "Order 900017 was not found." in result.activity
    assert [method_of(r) for r in recorder.requests] == ["AddOrder", "AddOrderNote"]


async def test_a_note_that_timed_out_is_tried_once_more_and_then_said():
    recorder = RequestRecorder(sample("add_order_ok.json"), httpx.ReadTimeout, httpx.ReadTimeout)
    result = await submit_one(recorder)
    assert isinstance(result, Submitted) and result.provider_reference == "900017"
    assert "NOT attached (PROVIDER_TIMEOUT" in result.activity
    assert [method_of(r) for r in recorder.requests] == ["AddOrder", "AddOrderNote", "AddOrderNote"]


async def test_a_refused_order_is_rejected_with_vinsuites_message():
    result = await submit_one(RequestRecorder(sample("add_order_failed.json")))
    assert isinstance(result, Rejected) and not result.retryable
    assert "The order has no items." in result.message


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("auth_invalid_credentials.json", "Invalid username or password."),
        ("auth_account_inactive.json", "Web service account is inactive."),
    ],
)
async def test_a_refused_login_is_unauthorized_with_the_failure_reason(name, reason):
    result = await submit_one(RequestRecorder(sample(name)))
    assert isinstance(result, Unauthorized) and not result.retryable and reason in result.message


async def test_a_429_is_rate_limited_with_retry_after():
    limited = json_response(429, {"Message": "Too many requests"}, headers={"Retry-After": "90"})
    result = await submit_one(RequestRecorder(limited))
    assert isinstance(result, RateLimited) and result.retryable and result.retry_after == 90


async def test_an_add_order_5xx_or_timeout_is_retryable_and_never_repeated_blindly():
    for reply, kind in ((json_response(503, {"Message": "down"}), Unavailable), (httpx.ReadTimeout, Timeout)):
        recorder = RequestRecorder(reply)
        result = await submit_one(recorder)
        assert isinstance(result, kind) and result.retryable
        assert len(recorder.requests) == 1  # the order may exist: dispatch reads back first


async def test_a_malformed_answer_is_an_invalid_response():
    for body in (b"<html>oops</html>", b'{"d": []}', b'{"d": {"Success": true}}'):
        result = await submit_one(RequestRecorder(httpx.Response(200, content=body)))
        assert isinstance(result, InvalidResponse), body


async def test_a_refused_login_answered_with_a_4xx_still_names_the_reason():
    body = load_vendor_json("vinsuite", "auth_invalid_credentials.json")
    result = await submit_one(RequestRecorder(json_response(401, body)))
    assert isinstance(result, Unauthorized) and "Invalid username or password." in result.message


async def test_read_back_finds_the_order_by_its_number_or_says_none():
    recorder = RequestRecorder(sample("search_orders_found.json"), sample("search_orders_none.json"))
    settings = account()
    async with client(recorder.transport) as vs:
        assert await CONNECTOR.read_back(vs, settings, ORDER_NUMBER) == Notice(
            ORDER_NUMBER, None, "found", provider_reference="900017"
        )
        assert await CONNECTOR.read_back(vs, settings, "CP-OTHER") is None


async def test_members_are_found_by_email_case_insensitively_with_their_clubs():
    recorder = RequestRecorder(sample("get_members.json"), sample("get_members.json"))
    async with client(recorder.transport) as vs:
        [member] = await CONNECTOR.find_members(vs, account(), email="ana.reyes@EXAMPLE.com")
        assert request_json(recorder.last)["request"]["Email"] == "ana.reyes@EXAMPLE.com"
        assert member.member_id == "70001" and member.member_types == ("Club Member", "Trade")
        assert member.is_club_member and [c.club_name for c in member.active_clubs] == ["Reserve Club"]
        assert len(member.clubs) == 2
        by_name = await CONNECTOR.find_members(vs, account(), last_name="Reyes")
        assert request_json(recorder.last)["request"]["LastName"] == "Reyes" and len(by_name) == 1


async def test_a_directory_failure_raises_never_an_empty_answer():
    async with client(
        RequestRecorder(httpx.ConnectError, httpx.ConnectError, httpx.ConnectError, httpx.ConnectError).transport
    ) as vs:
        with pytest.raises(Unavailable):
            await CONNECTOR.find_members(vs, account(), email="ana@example.com")


async def test_an_upsert_updates_the_member_its_email_finds_and_creates_one_otherwise():
    customer = order_pb2.Customer(first_name="Ana", last_name="Reyes", email="Ana.Reyes@example.com")
    recorder = RequestRecorder(
        sample("get_members.json"),
        sample("add_update_member_updated.json"),
        sample("search_orders_none.json"),  # an answer without Members: nobody
        sample("add_update_member_new.json"),
    )
    async with client(recorder.transport) as vs:
        assert await CONNECTOR.upsert_member(vs, account(), customer) == UpsertedMember("70001", created=False)
        assert request_json(recorder.requests[1])["request"]["Member"]["MemberID"] == "70001"
        other = order_pb2.Customer(first_name="Ben", last_name="Ode", email="ben@example.com")
        assert await CONNECTOR.upsert_member(vs, account(), other, valid_order().bill_to) == UpsertedMember(
            "70002", created=True
        )
        sent = request_json(recorder.last)["request"]["Member"]
        assert "MemberID" not in sent and sent["Email"] == "ben@example.com" and sent["City"] == "Napa"


async def test_member_types_are_listed():
    async with client(RequestRecorder(sample("get_member_types.json")).transport) as vs:
        types = await CONNECTOR.member_types(vs, account())
    assert [(t.type_id, t.name) for t in types] == [("11", "Club Member"), ("12", "Trade")]


@pytest.mark.parametrize(
    ("reply", "ok", "problem", "detail"),
    [
        (sample("test_connection_ok.json"), True, None, ""),
        (
            sample("auth_invalid_credentials.json"),
            False,
            ConnectionProblem.BAD_CREDENTIALS,
            "Invalid username or password.",
        ),
        (
            sample("auth_account_inactive.json"),
            False,
            ConnectionProblem.ACCOUNT_INACTIVE,
            "Web service account is inactive.",
        ),
    ],
)
async def test_the_connection_check_says_which_problem_in_vinsuites_words(reply, ok, problem, detail):
    async with client(RequestRecorder(reply).transport) as vs:
        check = await CONNECTOR.check_connection(vs, account())
    assert (check.ok, check.problem, check.detail) == (ok, problem, detail)


async def test_the_connection_check_says_unreachable_without_raising():
    settings = account()
    recorder = RequestRecorder(httpx.ConnectError)
    vs = VinSuiteClient(settings.api, transport=recorder.transport, retry=RetryPolicy(max_attempts=1))
    async with vs:
        check = await CONNECTOR.check_connection(vs, settings)
    assert not check.ok and check.problem is ConnectionProblem.UNREACHABLE and "PROVIDER_UNAVAILABLE" in check.detail


async def test_no_password_appears_in_errors():
    result = await submit_one(RequestRecorder(sample("auth_invalid_credentials.json")))
    assert isinstance(result, ConnectorError) and "vs-password-value" not in str(result)
