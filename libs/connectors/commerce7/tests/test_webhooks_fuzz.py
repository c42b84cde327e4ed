"""Fuzzing Commerce7's webhook and order parsers: only the documented errors ever escape.

Whatever the body, `parse_webhook` answers a webhook or raises InvalidWebhook, and the order of
a parsed webhook always normalises into a canonical Order that serialises. Messages stay fit to
store: no NUL, no lone surrogate.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.connectors.base.errors import InvalidResponse, InvalidWebhook
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.base.tests.fuzzing import FUZZ, bodies, json_trees, mutations, typed_mutations
from libs.connectors.commerce7.orders import parse_order
from libs.connectors.commerce7.webhooks import parse_webhook

SAMPLE = load_vendor_json("commerce7", "webhook_order_create_web_ship.json")


def assert_storable(message: str) -> None:
    assert "\x00" not in message
    message.encode("utf-8")  # no lone surrogate


@FUZZ
@given(body=bodies(SAMPLE, within=("payload",)))
def test_parse_webhook_answers_a_webhook_or_invalid_webhook_and_its_order_always_normalises(body: bytes) -> None:
    try:
        webhook = parse_webhook(body)
    except InvalidWebhook as exc:
        assert_storable(exc.message)
        return
    order, issues = parse_order(webhook.payload, tenant_id="t")
    order.SerializeToString()
    for issue in issues:
        assert_storable(f"{issue.field}: {issue.message}")


@FUZZ
@given(
    payload=st.one_of(
        typed_mutations(SAMPLE["payload"]), typed_mutations(SAMPLE["payload"]), mutations(SAMPLE["payload"]), json_trees
    )
)
def test_parse_order_on_raw_json_returns_an_order_or_raises_invalid_response(payload) -> None:
    try:
        order, _ = parse_order(payload, tenant_id="t")
    except InvalidResponse as exc:
        assert_storable(exc.message)
        return
    order.SerializeToString()


@pytest.mark.parametrize("depth", [33, 900, 100_000])
def test_parse_webhook_refuses_any_depth_past_the_limit_without_recursion_error(depth: int) -> None:
    with pytest.raises(InvalidWebhook, match="nested deeper"):
        parse_webhook(b'{"object": "Order", "payload": ' * depth + b"{}" + b"}" * depth)
