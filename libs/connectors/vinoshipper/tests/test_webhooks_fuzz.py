"""Fuzzing Vinoshipper's webhook and order-detail parsers: only the documented errors ever escape.

`parse_webhook` answers a webhook or raises InvalidWebhook; `parse_order_detail` (fed what a
webhook's hrefV3 read back, which the webhook's sender chose) answers a Shipment, None, or raises
InvalidResponse. Messages stay fit to store: no NUL, no lone surrogate.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from libs.connectors.base.errors import InvalidResponse, InvalidWebhook
from libs.connectors.base.testing import load_vendor_json
from libs.connectors.base.tests.fuzzing import FUZZ, bodies, json_trees, mutations, typed_mutations
from libs.connectors.vinoshipper.shipments import parse_order_detail
from libs.connectors.vinoshipper.webhooks import parse_webhook

WEBHOOK = load_vendor_json("vinoshipper", "webhook_order_tracking_number_added.json")
DETAILS = [load_vendor_json("vinoshipper", f"order_detail_{s}.json") for s in ("shipped", "delivered", "cancelled")]


def assert_storable(message: str) -> None:
    assert "\x00" not in message
    message.encode("utf-8")  # no lone surrogate


@FUZZ
@given(body=bodies(WEBHOOK))
def test_parse_webhook_answers_a_webhook_or_invalid_webhook(body: bytes) -> None:
    try:
        webhook = parse_webhook(body)
    except InvalidWebhook as exc:
        assert_storable(exc.message)
        return
    assert isinstance(webhook.is_order_event, bool) and isinstance(webhook.may_change_shipment, bool)


@FUZZ
@given(detail=st.one_of(*map(typed_mutations, DETAILS), *map(mutations, DETAILS), json_trees))
def test_parse_order_detail_answers_a_shipment_none_or_invalid_response(detail) -> None:
    try:
        shipment = parse_order_detail(detail)
    except InvalidResponse as exc:
        assert_storable(exc.message)
        return
    if shipment is not None:
        shipment.SerializeToString()
