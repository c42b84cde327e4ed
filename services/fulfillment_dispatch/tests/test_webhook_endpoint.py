"""Dispatch's Vinoshipper webhook endpoint over real HTTP, reading back from the Vinoshipper simulator,
on real Postgres: every answer it gives, with its status code, its JSON body and what it keeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from fulfillment_dispatch.api.webhooks import MAX_BODY_BYTES
from fulfillment_dispatch.storage.dispatches import NewDispatch, enqueue
from services.fulfillment_dispatch.tests.endpoint import (
    SENT,
    STRANGER,
    TENANT,
    TOKEN,
    Endpoint,
    place_at_vinoshipper,
    serve,
)
from tests.databases import unreachable

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.integration,
    pytest.mark.timeout(60),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_endpoint(infra) -> AsyncIterator[Endpoint]:
    async with serve(infra.pg_dsn) as endpoint:
        yield endpoint


@pytest_asyncio.fixture(loop_scope="module")
async def endpoint(shared_endpoint) -> Endpoint:
    """The module's endpoint, dispatch and Vinoshipper reset: SENT is sent and has no shipment yet."""
    pool = shared_endpoint.pool
    await pool.execute("TRUNCATE provider_webhooks, dispatches, dispatch_activity, outbox CASCADE")
    async with pool.acquire() as conn:
        await enqueue(conn, [NewDispatch("ord-1", TENANT, "vinoshipper", SENT, b"", "commerce7", "c7-1", "1001", "")])
    (await shared_endpoint.http.post(f"{shared_endpoint.sim}/_sim/reset")).raise_for_status()
    await place_at_vinoshipper(shared_endpoint.sim, SENT, STRANGER)
    return shared_endpoint


# ---- accepted answers -------------------------------------------------------------------------


async def test_every_recorded_outcome_is_answered_200_with_its_name_and_kept(endpoint):
    await endpoint.sim_step(SENT, "fulfil")
    await endpoint.sim_step(SENT, "ship", trackingNumbers=["1Z999AA10123456784"])
    answers = [
        await endpoint.post(endpoint.hook(SENT)),  # the shipment moved forward
        await endpoint.post(endpoint.hook(SENT)),  # Vinoshipper delivered the same news again
        await endpoint.post(endpoint.hook(STRANGER)),  # an order dispatch did not send
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [set(a.json()) for a in answers] == [{"status", "receipt_id"}] * 3
    assert [a.json()["status"] for a in answers] == ["applied", "unchanged", "unknown_order"]
    kept = await endpoint.kept()
    assert [(k["id"], k["outcome"], k["detail"]) for k in kept] == [
        (a.json()["receipt_id"], a.json()["status"], "TRACKING_NUMBER_ADDED") for a in answers
    ]
    assert await endpoint.pool.fetchval("SELECT shipment_status FROM dispatches WHERE order_id = 'ord-1'") == "shipped"
    assert await endpoint.pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_cancellation_is_applied(endpoint):
    await endpoint.sim_step(SENT, "cancel", reason="Customer changed their mind")
    response = await endpoint.post(endpoint.hook(SENT, event="CANCELLED"))
    assert (response.status_code, response.json()["status"]) == (200, "applied")


async def test_a_subject_other_than_orders_is_202_ignored_and_kept(endpoint):
    response = await endpoint.post(endpoint.hook(SENT, subject="PRODUCT"))
    assert response.status_code == 202
    answer = response.json()
    assert set(answer) == {"status", "receipt_id"} and answer["status"] == "ignored"
    assert [k["outcome"] for k in await endpoint.kept()] == ["ignored"]


@pytest.mark.parametrize("event", ["CREATED", "APPROVED"])
async def test_an_order_event_that_cannot_move_a_shipment_is_202_ignored_without_a_read_back(endpoint, event):
    await endpoint.http.post(f"{endpoint.sim}/_sim/faults", json={"route": "get_order", "status": 500, "count": 9})
    response = await endpoint.post(endpoint.hook(SENT, event=event))
    assert response.status_code == 202
    assert response.json() == {"status": "ignored"}
    assert await endpoint.kept() == []


# ---- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url_tail",
    [f"{TENANT}/not-the-token", f"nobody/{TOKEN}", f"channel-only/{TOKEN}", f"{TENANT}/{TOKEN}%00"],
    ids=["wrong token", "unknown tenant", "tenant without Vinoshipper", "token with a NUL"],
)
async def test_a_wrong_url_is_404_json_and_nothing_is_kept(endpoint, url_tail):
    url = endpoint.url.replace(f"{TENANT}/{TOKEN}", url_tail)
    response = await endpoint.post(endpoint.hook(SENT), url=url)
    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND", "message": "no such webhook endpoint"}
    assert await endpoint.kept() == []


async def assert_refused_and_kept(endpoint, response, status: int, error: str, body: bytes, outcome="malformed"):
    assert response.status_code == status
    answer = response.json()
    assert set(answer) == {"error", "message", "receipt_id"} and answer["error"] == error
    kept = await endpoint.kept()
    assert [(k["id"], k["outcome"], k["body"]) for k in kept] == [(answer["receipt_id"], outcome, body)]
    assert kept[0]["detail"] == answer["message"]
    assert await endpoint.pool.fetchval("SELECT shipment_status FROM dispatches WHERE order_id = 'ord-1'") == ""
    return answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"identifier": "ACME-1001", ', "body is not JSON"),
        (b"[" * 20_000 + b"]" * 20_000, "nested deeper than"),
        (b'["ACME-1001"]', "not a JSON object"),
        (b'{"subject": "ORDER", "event": "UPDATED"}', "'identifier' is missing"),
        (b'{"identifier": "ACME-1001\\u0000", "subject": "ORDER", "event": "UPDATED"}', "identifier holds a NUL"),
        (b'{"identifier": "ACME-1001", "subject": "ORDER", "event": "\\udfff"}', "event holds a lone UTF-16"),
        (b'{"identifier": 1001, "subject": ["ORDER"], "event": "UPDATED"}', "subject"),
    ],
    ids=["truncated", "deep", "array", "no identifier", "NUL", "lone surrogate", "wrong type"],
)
async def test_a_body_that_is_not_a_webhook_is_400_with_its_reason_and_kept(endpoint, body, message):
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", body)
    assert message in answer["message"]


@pytest.mark.parametrize(
    "href",
    ["https://attacker.example/api/v3/p/orders/ACME-1001", "{sim}/api/v3/p/orders/../../admin", None],
    ids=["another host", "another API", "no hrefV3"],
)
async def test_an_href_that_is_not_a_vinoshipper_order_is_400_and_kept_without_a_call(endpoint, href):
    body = endpoint.hook(SENT, hrefV3=href.format(sim=endpoint.sim) if href else None)
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "INVALID_REQUEST", body)
    assert "not a Vinoshipper order URL" in answer["message"]


async def test_an_href_that_reads_another_order_is_400_and_kept(endpoint):
    body = endpoint.hook(SENT, hrefV3=f"{endpoint.sim}/api/v3/p/orders/{STRANGER}")
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", body)
    assert "not the webhook's identifier" in answer["message"]


async def test_an_order_read_back_with_unstorable_text_is_400_and_kept(endpoint):
    await endpoint.sim_step(SENT, "cancel", reason="broken\u0000reason")
    body = endpoint.hook(SENT, event="CANCELLED")
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "INVALID_RESPONSE", body)
    assert "cancelReason holds a NUL" in answer["message"]


async def test_a_body_that_is_not_json_by_its_content_type_is_415_and_kept(endpoint):
    body = endpoint.hook(SENT)
    response = await endpoint.post(body, content_type="text/plain")
    answer = await assert_refused_and_kept(endpoint, response, 415, "UNSUPPORTED_MEDIA_TYPE", body)
    assert "'text/plain' is not application/json" in answer["message"]


async def test_a_body_over_the_limit_is_413_json_and_its_head_is_kept(endpoint):
    body = endpoint.hook(SENT, padding="x" * MAX_BODY_BYTES)
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(
        endpoint, response, 413, "PAYLOAD_TOO_LARGE", body[:MAX_BODY_BYTES], outcome="too_large"
    )
    assert f"the limit is {MAX_BODY_BYTES} bytes" in answer["message"]


async def test_a_read_back_failing_transiently_is_503_so_vinoshipper_sends_it_again(endpoint):
    await endpoint.sim_step(SENT, "fulfil")
    await endpoint.http.post(f"{endpoint.sim}/_sim/faults", json={"route": "get_order", "status": 503, "count": 4})
    response = await endpoint.post(endpoint.hook(SENT, event="UPDATED"))
    assert response.status_code == 503
    assert response.json() == {
        "error": "PROVIDER_UNAVAILABLE",
        "message": "could not read the order back; retry later",
    }
    again = await endpoint.post(endpoint.hook(SENT, event="UPDATED"))
    assert (again.status_code, again.json()["status"]) == (200, "applied")


async def test_dispatch_answers_503_when_it_cannot_store_and_the_retry_then_succeeds(endpoint, infra):
    async with unreachable(infra.pg_dsn, await endpoint.pool.fetchval("SELECT current_database()")):
        answers = [await endpoint.post(endpoint.hook(SENT, subject="PRODUCT")), await endpoint.post(b"{")]
    for response in answers:
        assert response.status_code == 503
        assert response.json() == {
            "error": "TEMPORARILY_UNAVAILABLE",
            "message": "could not store the webhook; retry later",
        }
    retried = await endpoint.post(endpoint.hook(SENT, subject="PRODUCT"))
    assert (retried.status_code, retried.json()["status"]) == (202, "ignored")


async def test_other_paths_and_methods_are_answered_in_json(endpoint):
    wrong_method = await endpoint.http.get(endpoint.url)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "METHOD_NOT_ALLOWED"
    no_route = await endpoint.http.post(endpoint.url.rpartition("/")[0], content=b"{}")
    assert no_route.status_code == 404 and no_route.json()["error"] == "NOT_FOUND"
