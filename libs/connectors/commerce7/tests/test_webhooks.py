"""Tests of Commerce7 webhook parsing and Basic-auth verification."""

from __future__ import annotations

import json
from typing import Any

import pytest

from libs.connectors.base.errors import InvalidWebhook
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.commerce7.webhooks import parse_webhook, verify_basic_auth

# base64("hook-user:hook-pass")
HOOK_AUTH = "Basic aG9vay11c2VyOmhvb2stcGFzcw=="


def envelope(**changes: Any) -> dict[str, Any]:
    """The valid order webhook of this suite; keyword arguments replace envelope fields."""
    body = load_vendor_json("commerce7", "webhook_order_create_web_ship.json")
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def test_an_order_webhook_is_parsed() -> None:
    hook = parse_webhook(encode(envelope()))
    assert (hook.object, hook.action, hook.tenantId) == ("Order", "Create", "demo-winery")
    assert hook.payload.id == "5b1d0c1e-2f0a-4c7e-9d4f-0c1a7e2b9a01"
    assert hook.payload.orderNumber == 1001
    assert hook.payload.shipping[0].code == "03"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe\x00", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (encode(envelope(object=...)), "'object' is missing"),
        (encode(envelope(action=...)), "'action' is missing"),
        (encode(envelope(payload=...)), "'payload' is missing"),
        (encode(envelope(tenantId=...)), "'tenantId' is missing"),
        (encode(envelope(tenantId="")), "'tenantId' is missing"),
        (encode(envelope(payload=[1])), "payload is not an order (not a JSON object)"),
        (encode(envelope(payload={"orderNumber": 1})), "payload is not an order ('id' is missing)"),
        (
            encode(envelope(payload={"id": "x", "items": "many"})),
            "payload is not an order (payload.items: Input should be a valid list)",
        ),
    ],
)
def test_a_malformed_webhook_is_refused_with_a_precise_message(body: bytes, message: str) -> None:
    with pytest.raises(InvalidWebhook) as caught:
        parse_webhook(body)
    assert caught.value.message == f"commerce7 webhook: {message}"
    assert caught.value.reason_code == "MALFORMED_WEBHOOK"
    assert caught.value.retryable is False


def test_the_configured_basic_credentials_are_accepted() -> None:
    assert verify_basic_auth(HOOK_AUTH, "hook-user", "hook-pass") is True
    assert verify_basic_auth("basic aG9vay11c2VyOmhvb2stcGFzcw==", "hook-user", "hook-pass")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer aG9vay11c2VyOmhvb2stcGFzcw==",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic aG9vay11c2VyOndyb25n",  # hook-user:wrong
    ],
)
def test_missing_or_wrong_credentials_are_refused(header: str | None) -> None:
    assert verify_basic_auth(header, "hook-user", "hook-pass") is False


def test_nothing_is_accepted_when_no_credentials_are_configured() -> None:
    assert verify_basic_auth("Basic Og==", "", "") is False  # ":"


def test_webhook_about_another_object_is_unsupported_not_malformed():
    from libs.connectors.commerce7.webhooks import UnsupportedWebhook

    body = json.dumps({"object": "Customer", "action": "Update", "payload": {"id": "c1"}, "tenantId": "t"}).encode()
    with pytest.raises(UnsupportedWebhook) as raised:
        parse_webhook(body)
    assert raised.value.reason_code == "UNSUPPORTED_OBJECT"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, "body is nested deeper than 32 levels"),
        (b'{"a": ' * 33 + b"1" + b"}" * 33, "body is nested deeper than 32 levels"),
        (
            encode(envelope(tenantId="demo\u0000winery")),
            "tenantId holds a NUL character (\\u0000), which cannot be stored",
        ),
        (
            encode(envelope()).replace(b'"orderNumber": 1001', b'"orderNumber": "1001\\u0000"'),
            "payload.orderNumber holds a NUL character (\\u0000), which cannot be stored",
        ),
        (
            encode(envelope()).replace(b'"Jane"', b'"\\udc00Jane"', 1),
            "payload.shipTo.firstName holds a lone UTF-16 surrogate, which is not valid Unicode",
        ),
        (
            encode(envelope(payload={"id": "x", "items": [{"sku": "a", "tags": ["ok", "b\u0000"]}]})),
            "payload.items[0].tags[1] holds a NUL character (\\u0000), which cannot be stored",
        ),
        (
            encode(envelope(payload={"id": "x", "metaData": {"e-mail jane@example.com\u0000": 1}})),
            "a key in payload.metaData holds a NUL character (\\u0000), which cannot be stored",
        ),
        (
            encode(envelope(payload={"id": "x", "metaData": {"e-mail jane@example.com": "\u0000"}})),
            "payload.metaData.[key] holds a NUL character (\\u0000), which cannot be stored",
        ),
    ],
    ids=[
        "deep arrays",
        "33 objects deep",
        "NUL in tenantId",
        "NUL in order number",
        "lone surrogate",
        "NUL in a list",
        "NUL in a key",
        "under a key that is not echoed",
    ],
)
def test_a_body_no_store_can_keep_is_refused_naming_where(body: bytes, message: str) -> None:
    with pytest.raises(InvalidWebhook) as caught:
        parse_webhook(body)
    assert caught.value.message == f"commerce7 webhook: {message}"


def test_an_emoji_written_as_a_surrogate_pair_is_fine() -> None:
    body = encode(envelope()).replace(b'"Jane"', b'"Jane \\ud83c\\udf77"', 1)
    ship_to = parse_webhook(body).payload.shipTo
    assert ship_to is not None
    assert ship_to.firstName == "Jane \U0001f377"
