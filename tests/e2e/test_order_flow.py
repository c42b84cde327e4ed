"""The whole flow through the five service processes, real Kafka and Postgres, and the simulators."""

import base64

import pytest

from tests.e2e.conftest import web_order
from tests.system.stack import STORE, WINE_SHIPPING

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]


async def test_shipping_order_is_sent_shipped_and_delivered_back_to_the_channel(driver):
    placed = await driver.place(web_order(state="CA", code="02"))
    order = placed["order"]
    assert placed["delivery"]["status_code"] == 202

    sent = await driver.wait_for(order["id"], lambda j: j.dispatch == "sent")
    assert sent.route == "route" and sent.provider_order_number == f"ACME-{order['orderNumber']}"
    provider_order = (await driver.stack.http.get(f"{driver.vs}/_sim/orders")).json()
    submitted = next(o for o in provider_order["orders"] if o["orderNumber"] == sent.provider_order_number)
    assert submitted["shipping"]["rateCode"] == "02"
    assert submitted["suppressCustomerEmails"] is True

    await driver.provider(sent.provider_order_number, "fulfil")
    await driver.provider(sent.provider_order_number, "ship", trackingNumbers=["1ZTESTTRACK0000001"])
    shipped = await driver.wait_for(order["id"], lambda j: j.written_back == "shipped")
    assert shipped.customer_notified
    channel = await driver.channel_order(order["id"])
    assert channel["fulfillmentStatus"] == "Fulfilled"
    assert channel["fulfillments"][0]["shipped"]["trackingNumbers"] == ["1ZTESTTRACK0000001"]
    emails = (await driver.stack.http.get(f"{driver.c7}/_sim/emails")).json()["emails"]
    assert [e["trackingNumbers"] for e in emails if e["order_id"] == order["id"]] == [["1ZTESTTRACK0000001"]]

    await driver.provider(sent.provider_order_number, "deliver")
    await driver.wait_for(order["id"], lambda j: j.written_back == "delivered")
    channel = await driver.channel_order(order["id"])
    assert channel["shippingStatus"] == "Delivered"
    assert len(channel["fulfillments"]) == 1, "the fulfilment we wrote must not be written twice"


async def test_pickup_order_is_not_required_to_send(driver):
    order = web_order()
    order.update(orderDeliveryMethod="Pickup")
    order.pop("shipTo")
    placed = (await driver.place(order))["order"]
    journey = await driver.wait_for(placed["id"], lambda j: bool(j.route))
    assert (journey.route, journey.route_code) == ("not required", "PICKUP_ORDER")
    journey = await driver.wait_for(placed["id"], lambda j: bool(j.dispatch))
    assert (journey.dispatch, journey.dispatch_code) == ("not required", "PICKUP_ORDER")


async def test_order_rejected_by_the_provider_fails_with_its_reason(driver):
    placed = (await driver.place(web_order(state="NY")))["order"]  # chosen, but not licensed at Vinoshipper
    journey = await driver.wait_for(placed["id"], lambda j: j.dispatch in ("sent", "failed"))
    assert journey.dispatch == "failed" and journey.dispatch_code == "COMPLIANCE_REJECTED"
    assert "NY" in journey.dispatch_reason


async def test_redelivered_webhook_creates_no_second_order(driver):
    placed = (await driver.place(web_order()))["order"]
    await driver.wait_for(placed["id"], lambda j: j.dispatch == "sent")
    before = await driver.provider_stats()
    redelivered = await driver.stack.http.post(f"{driver.c7}/_sim/orders/{placed['id']}/redeliver", json={"wait": True})
    assert redelivered.json()["delivery"]["status_code"] == 200
    assert '"duplicate"' in redelivered.json()["delivery"]["body"]
    journey = await driver.journey(placed["id"])
    assert journey.dispatch == "sent"
    after = await driver.provider_stats()
    assert after["orders_created"] == before["orders_created"]
    assert after["duplicate_submissions"] == 0


async def _order_count(driver) -> int:
    conn = await driver.stack.connect_service_db()
    try:
        return await conn.fetchval("SELECT count(*) FROM order_intake.orders")
    finally:
        await conn.close()


@pytest.mark.parametrize("authorization", [None, "Basic " + base64.b64encode(b"ordersync:wrong").decode()])
async def test_wrong_or_missing_webhook_credentials_get_401_and_store_nothing(driver, authorization):
    before = await _order_count(driver)
    body = {
        "object": "Order",
        "action": "Create",
        "tenantId": driver.tenant_id,
        "payload": {"id": "x", "orderNumber": 1},
    }
    headers = {"Authorization": authorization} if authorization else {}
    response = await driver.stack.http.post(
        f"{driver.stack.http_url('order_intake')}/webhooks/commerce7/{driver.tenant_id}", json=body, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == "UNAUTHORIZED"
    assert await _order_count(driver) == before


async def test_malformed_payload_gets_400_with_a_clear_message_and_is_kept(driver):
    spec = driver.stack.tenants[driver.tenant_id]
    response = await driver.stack.http.post(
        f"{driver.stack.http_url('order_intake')}/webhooks/commerce7/{driver.tenant_id}",
        content=b'{"object": "Order", "action": "Create", "payload": ',
        headers={"Content-Type": "application/json"},
        auth=(spec.account(STORE)["webhook_user"], spec.account(STORE)["webhook_password"]),
    )
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "MALFORMED_WEBHOOK" and "JSON" in answer["message"]
    conn = await driver.stack.connect_service_db()
    try:
        kept = await conn.fetchrow(
            "SELECT outcome, detail, body FROM order_intake.webhook_receipts WHERE id = $1", answer["receipt_id"]
        )
    finally:
        await conn.close()
    assert kept["outcome"] == "malformed"
    assert kept["body"] == b'{"object": "Order", "action": "Create", "payload": '


async def _fault(driver, **fault) -> None:
    response = await driver.stack.http.post(f"{driver.vs}/_sim/faults", json=fault)
    response.raise_for_status()


async def test_provider_answer_lost_after_creating_the_order_is_recovered_without_posting_again(driver):
    # Vinoshipper stores the order, then answers 503: the answer is lost, the order exists.
    await _fault(driver, route="upsert", status=503, count=1, after_create=True)
    before = await driver.provider_stats()
    placed = (await driver.place(web_order()))["order"]
    journey = await driver.wait_for(placed["id"], lambda j: j.dispatch == "sent", timeout_s=60)
    after = await driver.provider_stats()
    assert after["orders_created"] == before["orders_created"] + 1
    sends = after["requests"]["upsert"] - before["requests"].get("upsert", 0)
    assert sends == 1, "sent once; recovered by reading back"
    assert after["duplicate_submissions"] == 0
    assert journey.provider_order_number == f"ACME-{placed['orderNumber']}"


async def test_provider_rate_limit_is_waited_out(driver):
    await _fault(driver, route="upsert", status=429, count=2)
    placed = (await driver.place(web_order()))["order"]
    journey = await driver.wait_for(placed["id"], lambda j: j.dispatch == "sent", timeout_s=60)
    assert journey.dispatch_code == ""
    assert (await driver.provider_stats())["duplicate_submissions"] == 0


def _vinoshipper_hook(driver, identifier: str, href_order: str) -> dict:
    return {
        "identifier": identifier,
        "subject": "ORDER",
        "event": "TRACKING_NUMBER_ADDED",
        "href": "",
        "hrefV3": f"{driver.vs}/api/v3/p/orders/{href_order}",
    }


async def test_provider_webhook_on_a_wrong_secret_url_is_refused(driver):
    url = f"{driver.stack.http_url('fulfillment_dispatch')}/webhooks/vinoshipper/{driver.tenant_id}/not-the-token"
    response = await driver.stack.http.post(url, json=_vinoshipper_hook(driver, "ACME-1", "ACME-1"))
    assert response.status_code == 404


async def test_provider_webhook_whose_href_reads_another_order_changes_nothing(driver):
    first = (await driver.place(web_order()))["order"]
    second = (await driver.place(web_order()))["order"]
    one = await driver.wait_for(first["id"], lambda j: j.dispatch == "sent")
    two = await driver.wait_for(second["id"], lambda j: j.dispatch == "sent")
    await driver.provider(two.provider_order_number, "ship", webhook=False)
    token = driver.stack.tenants[driver.tenant_id].account(WINE_SHIPPING)["webhook_token"]
    url = f"{driver.stack.http_url('fulfillment_dispatch')}/webhooks/vinoshipper/{driver.tenant_id}/{token}"
    forged = _vinoshipper_hook(driver, one.provider_order_number, two.provider_order_number)
    response = await driver.stack.http.post(url, json=forged)
    assert response.status_code == 400
    assert (await driver.journey(first["id"])).shipment == ""
