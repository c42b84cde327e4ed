"""Tests of Vinoshipper webhook parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from libs.connectors.base.errors import InvalidWebhook
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.vinoshipper.webhooks import parse_webhook


def notification(**changes: Any) -> bytes:
    """The valid TRACKING_NUMBER_ADDED notification; `...` removes a field."""
    body = load_vendor_json("vinoshipper", "webhook_order_tracking_number_added.json")
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_an_order_notification_is_parsed() -> None:
    hook = parse_webhook(notification())
    assert hook.identifier == "C7-napa-1001"
    assert hook.event == "TRACKING_NUMBER_ADDED"
    assert hook.hrefV3 == "https://vinoshipper.com/api/v3/p/orders/C7-napa-1001"
    assert hook.is_order_event is True


def test_other_subjects_are_not_order_events() -> None:
    assert parse_webhook(notification(subject="CUSTOMER")).is_order_event is False


def test_a_numeric_identifier_is_kept_as_text() -> None:
    assert parse_webhook(notification(identifier=100001)).identifier == "100001"


def test_href_v3_is_optional() -> None:
    assert parse_webhook(notification(hrefV3=..., href=...)).hrefV3 is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is not JSON"),
        (b"identifier=1", "body is not JSON"),
        (b'"ORDER"', "body is not a JSON object"),
        (notification(identifier=...), "'identifier' is missing"),
        (notification(subject=...), "'subject' is missing"),
        (notification(event=""), "'event' is missing"),
        (notification(hrefV3=["x"]), "hrefV3: Input should be a valid string"),
    ],
)
def test_a_malformed_notification_is_refused_with_a_precise_message(body: bytes, message: str) -> None:
    with pytest.raises(InvalidWebhook) as caught:
        parse_webhook(body)
    assert caught.value.message == f"vinoshipper webhook: {message}"


def test_created_and_approved_events_carry_no_shipment_news():
    from libs.connectors.vinoshipper.webhooks import parse_webhook as parse

    def hook(event: str):
        return parse(json.dumps({"identifier": "A-1", "subject": "ORDER", "event": event, "hrefV3": "x"}).encode())

    assert not hook("CREATED").may_change_shipment
    assert not hook("APPROVED").may_change_shipment
    assert hook("TRACKING_NUMBER_ADDED").may_change_shipment
    assert hook("SOMETHING_NEW").may_change_shipment


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 5000 + b"]" * 5000, "body is nested deeper than 32 levels"),
        (
            notification(identifier="C7-napa-1001\u0000"),
            "identifier holds a NUL character (\\u0000), which cannot be stored",
        ),
        (
            notification().replace(b'"TRACKING_NUMBER_ADDED"', b'"\\ud800"'),
            "event holds a lone UTF-16 surrogate, which is not valid Unicode",
        ),
    ],
    ids=["deep", "NUL", "lone surrogate"],
)
def test_a_notification_no_store_can_keep_is_refused_naming_where(body: bytes, message: str) -> None:
    with pytest.raises(InvalidWebhook) as caught:
        parse_webhook(body)
    assert caught.value.message == f"vinoshipper webhook: {message}"
