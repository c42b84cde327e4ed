"""The Commerce7 connector: pushes checked against the account, writebacks that never post twice."""

from __future__ import annotations

import json

import pytest

from libs.connectors.base.contract import ChannelUpdate, Ignored, ParsedOrder, WritebackStep
from libs.connectors.base.errors import InvalidWebhook
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json, request_json
from libs.connectors.commerce7.client import Commerce7Client
from libs.connectors.commerce7.connector import CONNECTOR, Commerce7Account
from libs.connectors.commerce7.tests.builders import (
    EXPECTED_DELIVERED_BODY,
    EXPECTED_SHIPPED_BODY,
    ORDER_ID,
    TRACKING,
    settings,
    shipment,
    web_ship_order,
)

ACCOUNT = Commerce7Account(settings(), webhook_user="ordersync-app", webhook_password="s3cret-value")
WEBHOOK = load_vendor_json("commerce7", "webhook_order_create_web_ship.json")


def push(**changes) -> bytes:
    return json.dumps({**WEBHOOK, **changes}).encode()


def test_a_create_webhook_for_the_accounts_store_is_an_order():
    parsed = CONNECTOR.parse_push(ACCOUNT, push(), "acme")
    assert isinstance(parsed, ParsedOrder)
    assert parsed.order.external_id == ORDER_ID and parsed.order.tenant_id == "acme"


def test_a_webhook_claiming_another_store_is_refused():
    with pytest.raises(InvalidWebhook, match="belongs to 'demo-winery'"):
        CONNECTOR.parse_push(ACCOUNT, push(tenantId="someone-else"), "acme")


@pytest.mark.parametrize(("changes", "reason"), [({"action": "Delete"}, "Order Delete"), ({"object": "Customer"}, "")])
def test_deletes_and_other_objects_are_ignored_with_a_reason(changes, reason):
    ignored = CONNECTOR.parse_push(ACCOUNT, push(**changes), "acme")
    assert isinstance(ignored, Ignored) and reason in ignored.reason


def update(*steps: WritebackStep) -> ChannelUpdate:
    return ChannelUpdate(ORDER_ID, "1001", steps, shipment())


async def write(recorder: RequestRecorder, change: ChannelUpdate) -> bool:
    async with Commerce7Client(settings(), transport=recorder.transport) as client:
        return await CONNECTOR.write_back(client, ACCOUNT, change)


@pytest.mark.asyncio
async def test_ship_then_deliver_posts_the_fulfilment_and_records_delivery():
    recorder = RequestRecorder(json_response(200, web_ship_order()), json_response(200, {}), json_response(200, {}))
    assert await write(recorder, update(WritebackStep.SHIP, WritebackStep.DELIVER)) is True
    get, post, put = recorder.requests
    assert (get.method, post.method, put.method) == ("GET", "POST", "PUT")
    assert request_json(post) == EXPECTED_SHIPPED_BODY
    assert request_json(put)["shippingStatus"] == EXPECTED_DELIVERED_BODY["shippingStatus"]


@pytest.mark.asyncio
async def test_a_fulfilment_already_there_is_not_posted_again():
    shipped = web_ship_order(fulfillments=[{"type": "Shipped", "shipped": {"trackingNumbers": TRACKING}}])
    recorder = RequestRecorder(json_response(200, shipped))
    assert await write(recorder, update(WritebackStep.SHIP)) is False
    assert [r.method for r in recorder.requests] == ["GET"]
