"""Intake's Commerce7 webhook endpoint over real HTTP on real Postgres: every answer it gives.

Each answer is checked for its status code and its JSON body; each refusal after authentication
for the receipt that keeps it.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from order_intake.domain.intake import InputLimits
from services.order_intake.tests.endpoint import PASSWORD, SLUG, TENANT, USER, Endpoint, encode, serve, webhook
from tests.databases import fresh_database, unreachable

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.integration,
    pytest.mark.timeout(60),
]

BODY_LIMIT = 64 * 1024


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_endpoint(infra) -> AsyncIterator[Endpoint]:
    async with fresh_database(infra.pg_dsn) as dsn, serve(dsn, InputLimits(max_body_bytes=BODY_LIMIT)) as served:
        yield served


@pytest_asyncio.fixture(loop_scope="module")
async def endpoint(shared_endpoint) -> Endpoint:
    """The module's endpoint, emptied: every test starts with no receipts, orders or events."""
    await shared_endpoint.pool.execute("TRUNCATE webhook_receipts, order_revisions, orders, outbox CASCADE")
    return shared_endpoint


# ---- accepted answers -------------------------------------------------------------------------


async def test_a_new_order_is_accepted_with_202_once_stored_and_announced(endpoint):
    response = await endpoint.post(encode(webhook()))
    assert response.status_code == 202
    answer = response.json()
    assert set(answer) == {"status", "order_id", "receipt_id"}
    assert answer["status"] == "accepted" and answer["order_id"].startswith("ord_")
    assert (await endpoint.receipt(answer["receipt_id"]))["outcome"] == "accepted"
    assert await endpoint.count("orders") == 1
    assert await endpoint.count("outbox") == 1


async def test_an_order_unfit_to_process_is_202_invalid_with_its_reason(endpoint):
    response = await endpoint.post(encode(webhook(items=[])))
    assert response.status_code == 202
    answer = response.json()
    assert set(answer) == {"status", "order_id", "receipt_id", "reason"}
    assert answer["status"] == "invalid" and "items" in answer["reason"]
    assert await endpoint.count("outbox") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"object": "Customer", "action": "Create", "payload": {"id": "c1"}, "tenantId": SLUG},
        webhook() | {"action": "Delete"},
    ],
    ids=["another object", "an order action not used"],
)
async def test_a_webhook_ordersync_does_not_use_is_202_ignored_and_kept(endpoint, body):
    response = await endpoint.post(encode(body))
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "ignored" and answer["order_id"] is None
    assert (await endpoint.receipt(answer["receipt_id"]))["outcome"] == "ignored"
    assert await endpoint.count("orders") == 0


async def test_a_redelivered_revision_is_200_duplicate(endpoint):
    await endpoint.post(encode(webhook()))
    response = await endpoint.post(encode(webhook()))
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert await endpoint.count("outbox") == 1


async def test_a_newer_revision_that_changes_nothing_is_200_unchanged(endpoint):
    await endpoint.post(encode(webhook()))
    response = await endpoint.post(encode(webhook(updatedAt="2024-05-02T09:00:00.000Z")))
    assert response.status_code == 200
    assert response.json()["status"] == "unchanged"
    assert await endpoint.count("outbox") == 1


async def test_an_older_revision_after_a_newer_one_is_200_stale(endpoint):
    await endpoint.post(encode(webhook(updatedAt="2024-05-02T09:00:00.000Z", giftMessage="Enjoy")))
    response = await endpoint.post(encode(webhook()))
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"status", "order_id", "receipt_id"} and answer["status"] == "stale"


# ---- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [(USER, "wrong"), None], ids=["wrong password", "no credentials"])
async def test_wrong_or_missing_credentials_are_401_and_nothing_is_kept(endpoint, auth):
    response = await endpoint.post(encode(webhook()), auth=auth)
    assert response.status_code == 401
    assert response.json() == {
        "error": "UNAUTHORIZED",
        "message": "missing or wrong webhook credentials for this tenant",
    }
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert await endpoint.count("webhook_receipts") == 0


async def test_an_unknown_tenant_gets_the_same_401(endpoint):
    url = endpoint.url.replace(f"/{TENANT}", "/nobody")
    response = await endpoint.http.post(url, content=encode(webhook()), auth=(USER, PASSWORD))
    assert response.status_code == 401 and response.json()["error"] == "UNAUTHORIZED"


async def assert_refused_and_kept(endpoint, response, status: int, error: str, outcome: str, body: bytes) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    assert set(answer) == {"error", "message", "receipt_id"}
    assert answer["error"] == error
    kept = await endpoint.receipt(answer["receipt_id"])
    assert (kept["outcome"], kept["body"], kept["order_id"]) == (outcome, body, None)
    assert kept["detail"] == answer["message"]
    assert await endpoint.count("orders") == 0
    assert await endpoint.count("outbox") == 0
    return answer


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"object": "Order", "action": "Create", "payload": ', "body is not JSON"),
        (b"[" * 20_000 + b"]" * 20_000, "nested deeper than"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "nested deeper than 32 levels"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"object": "Order", "action": "Create", "tenantId": "demo-winery"}', "'payload' is missing"),
    ],
    ids=["truncated", "nested twenty thousand deep", "nested forty deep", "an array", "no payload"],
)
async def test_a_body_that_is_not_an_order_webhook_is_400_with_its_reason_and_kept(endpoint, body, message):
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", "malformed", body)
    assert message in answer["message"]


async def test_a_nul_character_in_the_order_number_is_400_naming_the_field_and_kept(endpoint):
    body = encode(webhook(orderNumber="10\u000001"))
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", "malformed", body)
    assert "payload.orderNumber" in answer["message"] and "NUL" in answer["message"]


async def test_a_lone_surrogate_in_a_name_is_400_and_kept(endpoint):
    body = encode(webhook()).replace(b'"firstName": "Jane"', b'"firstName": "\\ud800Jane"', 1)
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", "malformed", body)
    assert "surrogate" in answer["message"]


async def test_a_nul_character_in_a_key_is_refused_without_echoing_the_key(endpoint):
    order = webhook()
    order["payload"]["metaData"] = {"secret\u0000key": "x"}
    body = encode(order)
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", "malformed", body)
    assert "secret" not in answer["message"] and "payload.metaData" in answer["message"]


async def test_a_webhook_for_another_commerce7_tenant_is_400_and_kept(endpoint):
    body = encode(webhook() | {"tenantId": "someone-else"})
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", "malformed", body)
    assert "someone-else" in answer["message"]


async def test_a_number_too_large_for_the_order_is_202_invalid_naming_the_field(endpoint):
    order = webhook()
    order["payload"]["items"][0]["quantity"] = 10**20
    response = await endpoint.post(encode(order))
    assert response.status_code == 202
    assert response.json()["status"] == "invalid"
    assert "items[0].quantity: number out of range" in response.json()["reason"]


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/plain", "'text/plain' is not application/json"),
        ("application/x-www-form-urlencoded", "is not application/json"),
        ("application/json; charset=latin-1", "charset 'latin-1' is not utf-8"),
        (None, "no Content-Type"),
    ],
)
async def test_a_body_that_is_not_json_by_its_content_type_is_415_and_kept(endpoint, content_type, message):
    body = encode(webhook())
    response = await endpoint.post(body, content_type=content_type)
    answer = await assert_refused_and_kept(endpoint, response, 415, "UNSUPPORTED_MEDIA_TYPE", "malformed", body)
    assert message in answer["message"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON; charset=UTF-8"])
async def test_json_with_a_utf8_charset_is_accepted(endpoint, content_type):
    response = await endpoint.post(encode(webhook()), content_type=content_type)
    assert response.status_code == 202 and response.json()["status"] == "accepted"


async def test_a_body_over_the_limit_is_413_json_and_its_head_is_kept(endpoint):
    order = webhook()
    order["payload"]["metaData"] = {"padding": "x" * BODY_LIMIT}
    body = encode(order)
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 413, "PAYLOAD_TOO_LARGE", "too_large", body[:BODY_LIMIT])
    assert f"{len(body)} bytes; the limit is {BODY_LIMIT} bytes" in answer["message"]


async def test_a_streamed_body_over_the_limit_is_413_too(endpoint):
    body = encode(webhook()) + b" " * (2 * BODY_LIMIT)

    async def chunks():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = await endpoint.post(chunks())  # chunked: no Content-Length to go by
    answer = await assert_refused_and_kept(endpoint, response, 413, "PAYLOAD_TOO_LARGE", "too_large", body[:BODY_LIMIT])
    assert "longer; the limit is" in answer["message"]


async def test_a_body_of_exactly_the_limit_is_taken(endpoint):
    body = encode(webhook())
    body += b" " * (BODY_LIMIT - len(body))
    response = await endpoint.post(body)
    assert response.status_code == 202 and response.json()["status"] == "accepted"


async def test_the_default_body_limit_is_well_under_kafkas_one_mebibyte():
    assert InputLimits().max_body_bytes == 512 * 1024
    assert InputLimits().max_event_bytes < 1024 * 1024


async def test_an_accepted_order_whose_event_would_be_too_large_is_413_kept_and_not_announced(infra):
    # Lines are where a large order is large; each one is part of the canonical order.
    order = webhook()
    line = order["payload"]["items"][0]
    order["payload"]["items"] = [copy.deepcopy(line) | {"id": f"line-{i}"} for i in range(300)]
    body = encode(order)
    limits = InputLimits(max_body_bytes=len(body) + 1, max_event_bytes=16 * 1024)
    async with fresh_database(infra.pg_dsn) as dsn, serve(dsn, limits) as endpoint:
        response = await endpoint.post(body)
        answer = await assert_refused_and_kept(endpoint, response, 413, "PAYLOAD_TOO_LARGE", "too_large", body)
        assert "event would be" in answer["message"] and "the limit is 16384 bytes" in answer["message"]


async def test_intake_answers_503_when_it_cannot_store_and_the_retry_then_succeeds(infra):
    async with fresh_database(infra.pg_dsn) as dsn, serve(dsn, InputLimits()) as endpoint:
        async with unreachable(infra.pg_dsn, dsn.rpartition("/")[2]):
            answers = [await endpoint.post(encode(webhook())), await endpoint.post(b"not json")]
        for response in answers:
            assert response.status_code == 503
            assert response.json() == {
                "error": "TEMPORARILY_UNAVAILABLE",
                "message": "could not store the webhook; retry later",
            }
        retried = await endpoint.post(encode(webhook()))
        assert retried.status_code == 202 and retried.json()["status"] == "accepted"


async def test_other_paths_and_methods_are_answered_in_json(endpoint):
    wrong_method = await endpoint.http.get(endpoint.url)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "METHOD_NOT_ALLOWED"
    no_route = await endpoint.http.post(endpoint.url.replace("/webhooks/", "/hooks/"), content=b"{}")
    assert no_route.status_code == 404 and no_route.json()["error"] == "NOT_FOUND"


@pytest.mark.parametrize("field", ["id", "updatedAt"])
async def test_an_order_key_too_long_to_index_is_400_naming_the_field_and_kept(endpoint, field):
    # Random text does not compress, so only the length decides (PostgreSQL indexes keys up to ~2.7 kB).
    text = "".join(hashlib.sha512(str(i).encode()).hexdigest() for i in range(30))
    body = encode(webhook(**{field: text}))
    response = await endpoint.post(body)
    answer = await assert_refused_and_kept(endpoint, response, 400, "MALFORMED_WEBHOOK", "malformed", body)
    assert f"payload.{field} is longer than 200 characters" in answer["message"]
