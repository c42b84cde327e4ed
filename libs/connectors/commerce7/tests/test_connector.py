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


# ---- retraction: Commerce7 removes a fulfilment whole (DELETE /order/{id}/fulfillment/{id})

NEW_LABEL = "1ZNEWLABEL0000001"


def retraction(*steps: WritebackStep, live: list[str]) -> ChannelUpdate:
    voided = shipment(tracking_numbers=live)
    voided.voided_tracking_numbers.append(TRACKING[0])
    return ChannelUpdate(ORDER_ID, "1001", steps, voided)


def fulfilled(*fulfilments: tuple[str, list[str]]) -> dict:
    return web_ship_order(
        fulfillments=[
            {"id": fid, "type": "Shipped", "shipped": {"trackingNumbers": numbers}} for fid, numbers in fulfilments
        ]
    )


@pytest.mark.asyncio
async def test_a_fulfilment_listing_a_voided_label_is_removed_and_the_live_labels_posted_again():
    recorder = RequestRecorder(
        json_response(200, fulfilled(("f-1", TRACKING))),
        json_response(200, {}),
        json_response(200, web_ship_order()),
        json_response(200, {}),
    )
    told = await write(recorder, retraction(WritebackStep.RETRACT, WritebackStep.SHIP, live=[TRACKING[1], NEW_LABEL]))
    assert told is True
    get, delete, reread, post = recorder.requests
    assert (delete.method, delete.url.path) == ("DELETE", f"/v1/order/{ORDER_ID}/fulfillment/f-1")
    assert (reread.method, post.method) == ("GET", "POST")
    assert request_json(post)["shipped"]["trackingNumbers"] == [TRACKING[1], NEW_LABEL]


@pytest.mark.asyncio
async def test_a_retraction_repeated_after_its_fulfilment_is_gone_writes_nothing():
    untouched = RequestRecorder(json_response(200, fulfilled(("f-2", [NEW_LABEL]))))
    assert await write(untouched, retraction(WritebackStep.RETRACT, live=[])) is False
    assert [r.method for r in untouched.requests] == ["GET"]
    # A DELETE that landed but whose answer was lost: the repeat's 404 is not an error.
    lost = RequestRecorder(
        json_response(200, fulfilled(("f-1", TRACKING))),
        json_response(404, {"statusCode": 404, "type": "notFound", "message": "Fulfillment not found"}),
        json_response(200, web_ship_order()),
    )
    assert await write(lost, retraction(WritebackStep.RETRACT, live=[])) is False
    assert [r.method for r in lost.requests] == ["GET", "DELETE", "GET"]
