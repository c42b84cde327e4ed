"""Tests of the Commerce7 simulator against the vendor facts it follows."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest

from tests.simulators.common import SimulatorServer
from tests.simulators.tests.conftest import C7_TENANT, Receiver, eventually, run_c7

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(10), pytest.mark.filterwarnings("error")]

AUTH = (C7_TENANT["app_id"], C7_TENANT["app_secret"])
HEADERS = {"tenant": C7_TENANT["tenant_id"]}
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def shipped_body(**overrides: Any) -> dict[str, Any]:
    """A valid `fulfillment/all` body for a Shipped fulfillment."""
    return {
        "type": "Shipped",
        "fulfillmentDate": "2024-05-01T15:30:00.000Z",
        "sendTransactionEmail": True,
        "shipped": {"carrier": "UPS", "trackingNumbers": ["1Z999AA10123456784"]},
        "packageCount": 1,
    } | overrides


async def create_order(http: httpx.AsyncClient, c7: SimulatorServer, **order: Any) -> dict[str, Any]:
    """Create an order through the control API and return it."""
    response = await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": order})
    assert response.status_code == 201, response.text
    return response.json()["order"]


async def point_webhooks_at(http: httpx.AsyncClient, c7: SimulatorServer, receiver: Receiver) -> None:
    """Register the receiver as the tenant's webhook URL with Basic credentials."""
    tenant = C7_TENANT | {"webhook_url": receiver.url, "webhook_user": "hook", "webhook_password": "pw"}
    response = await http.put(f"{c7.base_url}/_sim/tenants/cellar", json=tenant)
    assert response.status_code == 200


async def test_request_without_credentials_is_unauthorized(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{c7.base_url}/v1/order", headers=HEADERS)
    assert response.status_code == 401
    body = response.json()
    assert body["statusCode"] == 401 and body["type"] == "unauthorized" and body["errors"] == []


@pytest.mark.parametrize(
    ("auth", "headers"),
    [
        ((C7_TENANT["app_id"], "wrong"), HEADERS),
        (AUTH, {}),
        (AUTH, {"tenant": "someone-else"}),
    ],
    ids=["wrong-secret", "missing-tenant-header", "unknown-tenant"],
)
async def test_bad_credentials_or_tenant_are_unauthorized(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
    auth: tuple[str, str],
    headers: dict[str, str],
) -> None:
    response = await http.get(f"{c7.base_url}/v1/order", auth=auth, headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == "unauthorized"


async def test_requests_over_the_tenant_limit_get_429_with_retry_after(http: httpx.AsyncClient) -> None:
    other = {"tenant_id": "other", "app_id": "app-2", "app_secret": "secret-2"}
    server = await run_c7(rate_limit_per_minute=3, tenants=[dict(C7_TENANT), other])
    try:
        statuses = [
            (await http.get(f"{server.base_url}/v1/order", auth=AUTH, headers=HEADERS)).status_code for _ in range(4)
        ]
        limited = await http.get(f"{server.base_url}/v1/order", auth=AUTH, headers=HEADERS)
        other_tenant = await http.get(
            f"{server.base_url}/v1/order", auth=("app-2", "secret-2"), headers={"tenant": "other"}
        )
        stats = (await http.get(f"{server.base_url}/_sim/stats")).json()
    finally:
        await server.stop()
    assert statuses == [200, 200, 200, 429]
    assert limited.json()["statusCode"] == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert other_tenant.status_code == 200
    assert stats["rate_limited"] == 2 and stats["requests"]["list_orders"] == {"cellar": 5, "other": 1}


async def test_new_order_gets_defaults_sequence_number_and_cent_totals(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    first = await create_order(http, c7)
    second = await create_order(
        http, c7, items=[{"sku": "CAB-750", "quantity": 2, "price": 3000}], shipTo={"stateCode": "OR"}
    )
    assert (first["orderNumber"], second["orderNumber"]) == (1001, 1002)
    assert second["subTotal"] == 6000 and second["shipTotal"] == 1500 and second["total"] == 7500
    assert second["shipTo"]["stateCode"] == "OR" and second["shipTo"]["city"] == "Napa"
    assert second["items"][0]["quantityFulfilled"] == 0 and second["fulfillmentStatus"] == "Not Fulfilled"
    assert all(ISO_MS.match(second[name]) for name in ("createdAt", "updatedAt", "orderPaidDate"))


async def test_created_order_fires_create_webhook_with_basic_credentials(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await point_webhooks_at(http, c7, receiver)
    response = await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": {}, "wait": True})
    result = response.json()
    assert result["delivery"]["state"] == "delivered" and result["delivery"]["status_code"] == 200
    assert json.loads(result["delivery"]["body"]) == {"seen": 1}
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"hook:pw").decode()
    body = json.loads(request.body)
    assert (body["object"], body["action"], body["tenantId"]) == ("Order", "Create", "cellar")
    assert body["payload"] == result["order"]


async def test_redeliver_sends_an_identical_body(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await point_webhooks_at(http, c7, receiver)
    order = (
        await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": {}, "wait": True})
    ).json()["order"]
    response = await http.post(f"{c7.base_url}/_sim/orders/{order['id']}/redeliver", json={"wait": True})
    assert response.json()["delivery"]["state"] == "delivered"
    assert len(receiver.requests) == 2 and receiver.requests[0].body == receiver.requests[1].body


async def test_webhook_is_retried_until_the_receiver_accepts_it(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await point_webhooks_at(http, c7, receiver)
    receiver.statuses = [500, 503]
    result = (
        await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": {}, "wait": True})
    ).json()
    assert [a["status_code"] for a in result["delivery"]["attempts"]] == [500, 503, 200]
    deliveries = (await http.get(f"{c7.base_url}/_sim/webhook-deliveries")).json()["deliveries"]
    assert deliveries[0]["state"] == "delivered" and deliveries[0]["event"] == "Order.Create"


async def test_webhook_to_an_unreachable_receiver_fails_after_retries(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    tenant = C7_TENANT | {"webhook_url": "http://127.0.0.1:9/unreachable"}
    await http.put(f"{c7.base_url}/_sim/tenants/cellar", json=tenant)
    result = (
        await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": {}, "wait": True})
    ).json()
    delivery = result["delivery"]
    assert delivery["state"] == "failed" and len(delivery["attempts"]) == 3
    assert all(a["status_code"] is None and a["error"] for a in delivery["attempts"])


async def test_orders_list_in_pages_of_at_most_50(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create_order(http, c7)
    page = await http.get(f"{c7.base_url}/v1/order", params={"page": 2, "limit": 2}, auth=AUTH, headers=HEADERS)
    too_big = await http.get(f"{c7.base_url}/v1/order", params={"limit": 51}, auth=AUTH, headers=HEADERS)
    assert page.json()["total"] == 3 and [o["orderNumber"] for o in page.json()["orders"]] == [1003]
    assert too_big.status_code == 400
    assert too_big.json()["type"] == "validation" and too_big.json()["errors"][0]["field"] == "limit"


async def test_cursor_mode_walks_every_order_then_returns_null(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    for _ in range(5):
        await create_order(http, c7)
    seen, cursor = [], "start"
    while cursor is not None:
        response = await http.get(
            f"{c7.base_url}/v1/order", params={"cursor": cursor, "limit": 2}, auth=AUTH, headers=HEADERS
        )
        seen += [order["orderNumber"] for order in response.json()["orders"]]
        cursor = response.json()["cursor"]
    assert seen == [1001, 1002, 1003, 1004, 1005]


async def test_updated_at_filter_returns_only_later_changes(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    await create_order(http, c7, updatedAt="2024-01-01T00:00:00.000Z")
    recent = await create_order(http, c7, updatedAt="2024-03-01T00:00:00.000Z")
    response = await http.get(
        f"{c7.base_url}/v1/order", params={"updatedAt": "gte:2024-02-01T00:00:00.000Z"}, auth=AUTH, headers=HEADERS
    )
    assert [order["id"] for order in response.json()["orders"]] == [recent["id"]]


async def test_a_btw_window_is_listed_page_by_page_in_cursor_mode(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    # What reconciliation asks: the orders changed in a window, every page of them.
    await create_order(http, c7, updatedAt="2024-01-01T00:00:00.000Z")
    inside = [await create_order(http, c7, updatedAt=f"2024-02-0{day}T12:00:00.000Z") for day in (1, 2, 3)]
    await create_order(http, c7, updatedAt="2024-03-01T00:00:00.000Z")
    window = "btw:2024-02-01T00:00:00.000Z|2024-02-28T23:59:59.999Z"
    seen, cursor = [], "start"
    while cursor is not None:
        response = await http.get(
            f"{c7.base_url}/v1/order",
            params={"updatedAt": window, "cursor": cursor, "limit": 2},
            auth=AUTH,
            headers=HEADERS,
        )
        assert response.json()["total"] == 3
        seen += [order["id"] for order in response.json()["orders"]]
        cursor = response.json()["cursor"]
    assert seen == [order["id"] for order in inside]


async def test_an_order_created_without_its_webhook_is_listed_but_not_delivered(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await point_webhooks_at(http, c7, receiver)
    body = {"tenant_id": "cellar", "order": {}, "wait": True, "webhook": False}
    created = (await http.post(f"{c7.base_url}/_sim/orders", json=body)).json()
    assert created["delivery"] is None
    listed = (await http.get(f"{c7.base_url}/v1/order", auth=AUTH, headers=HEADERS)).json()["orders"]
    assert [order["id"] for order in listed] == [created["order"]["id"]]
    assert receiver.requests == []


async def test_unknown_order_is_404_in_the_error_shape(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{c7.base_url}/v1/order/does-not-exist", auth=AUTH, headers=HEADERS)
    assert response.status_code == 404 and response.json()["type"] == "notFound"


async def test_fulfill_all_records_the_email_and_fires_an_update_webhook(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await point_webhooks_at(http, c7, receiver)
    order = (
        await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": {}, "wait": True})
    ).json()["order"]
    response = await http.post(
        f"{c7.base_url}/v1/order/{order['id']}/fulfillment/all", json=shipped_body(), auth=AUTH, headers=HEADERS
    )
    assert response.status_code == 200
    fulfillment = response.json()
    assert fulfillment["items"] == [{"id": order["items"][0]["id"], "quantityFulfilled": 1}]
    stored = (await http.get(f"{c7.base_url}/_sim/orders/{order['id']}")).json()
    assert stored["fulfillmentStatus"] == "Fulfilled" and stored["orderFulfilledDate"] == "2024-05-01T15:30:00.000Z"
    assert stored["updatedAt"] > order["updatedAt"]
    [email] = (await http.get(f"{c7.base_url}/_sim/emails")).json()["emails"]
    assert email["to"] == order["customer"]["emails"][0]["email"] and email["template"] == "shipment"
    assert email["trackingNumbers"] == ["1Z999AA10123456784"] and email["carrier"] == "UPS"
    await eventually(lambda: len(receiver.requests) == 2)
    update = json.loads(receiver.requests[1].body)
    assert update["action"] == "Update" and update["payload"]["fulfillments"] == [fulfillment]


async def test_shipped_fulfillment_without_tracking_is_rejected_per_field(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    order = await create_order(http, c7)
    body = shipped_body(shipped={"carrier": "UPS", "trackingNumbers": []}, fulfillmentDate="yesterday")
    response = await http.post(
        f"{c7.base_url}/v1/order/{order['id']}/fulfillment/all", json=body, auth=AUTH, headers=HEADERS
    )
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"fulfillmentDate", "shipped.trackingNumbers"}


async def test_fulfilling_an_already_fulfilled_order_is_rejected(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    order = await create_order(http, c7)
    url = f"{c7.base_url}/v1/order/{order['id']}/fulfillment/all"
    first = await http.post(url, json=shipped_body(sendTransactionEmail=False), auth=AUTH, headers=HEADERS)
    second = await http.post(url, json=shipped_body(sendTransactionEmail=False), auth=AUTH, headers=HEADERS)
    assert first.status_code == 200 and second.status_code == 400
    assert second.json()["type"] == "validation"


async def test_partial_fulfillment_by_sku_can_be_deleted_again(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    order = await create_order(http, c7, items=[{"sku": "CAB-750", "quantity": 2, "price": 3000}])
    body = shipped_body(items=[{"sku": "CAB-750", "quantityFulfilled": 1}])
    created = await http.post(
        f"{c7.base_url}/v1/order/{order['id']}/fulfillment", json=body, auth=AUTH, headers=HEADERS
    )
    partially = (await http.get(f"{c7.base_url}/v1/order/{order['id']}", auth=AUTH, headers=HEADERS)).json()
    deleted = await http.delete(
        f"{c7.base_url}/v1/order/{order['id']}/fulfillment/{created.json()['id']}", auth=AUTH, headers=HEADERS
    )
    assert partially["fulfillmentStatus"] == "Partially Fulfilled" and partially["orderFulfilledDate"] is None
    assert deleted.json()["fulfillmentStatus"] == "Not Fulfilled" and deleted.json()["fulfillments"] == []
    assert deleted.json()["items"][0]["quantityFulfilled"] == 0


async def test_update_merges_metadata_and_moves_updated_at_forward(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    order = await create_order(http, c7, metaData={"keep": "1"})
    url = f"{c7.base_url}/v1/order/{order['id']}"
    first = await http.put(url, json={"metaData": {"vinoshipper": "sent"}}, auth=AUTH, headers=HEADERS)
    second = await http.put(url, json={"shippingStatus": "Delivered"}, auth=AUTH, headers=HEADERS)
    assert first.json()["metaData"] == {"keep": "1", "vinoshipper": "sent"}
    assert order["updatedAt"] < first.json()["updatedAt"] < second.json()["updatedAt"]
    assert second.json()["shippingStatus"] == "Delivered"


async def test_injected_fault_answers_its_status_for_the_next_requests_only(
    c7: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    order = await create_order(http, c7)
    fault = await http.post(f"{c7.base_url}/_sim/faults", json={"route": "get_order", "status": 503, "count": 2})
    url = f"{c7.base_url}/v1/order/{order['id']}"
    statuses = [(await http.get(url, auth=AUTH, headers=HEADERS)).status_code for _ in range(3)]
    assert fault.status_code == 201 and statuses == [503, 503, 200]


async def test_delay_fault_exceeds_a_client_timeout(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    await http.post(f"{c7.base_url}/_sim/faults", json={"route": "*", "delay_s": 0.5})
    with pytest.raises(httpx.ReadTimeout):
        await http.get(f"{c7.base_url}/v1/order", auth=AUTH, headers=HEADERS, timeout=0.1)


async def test_back_office_change_fires_an_update_webhook(
    c7: SimulatorServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await point_webhooks_at(http, c7, receiver)
    order = (
        await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": {}, "wait": True})
    ).json()["order"]
    response = await http.patch(
        f"{c7.base_url}/_sim/orders/{order['id']}", json={"order": {"shippingStatus": "Delivered"}, "wait": True}
    )
    assert response.json()["delivery"]["status_code"] == 200
    update = json.loads(receiver.requests[-1].body)
    assert (update["action"], update["user"], update["payload"]["shippingStatus"]) == ("Update", "sim", "Delivered")


async def test_pickup_order_has_no_ship_to_and_typos_are_rejected(c7: SimulatorServer, http: httpx.AsyncClient) -> None:
    pickup = await create_order(http, c7, orderDeliveryMethod="Pickup")
    typo = await http.post(f"{c7.base_url}/_sim/orders", json={"tenant_id": "cellar", "order": {"shipto": {}}})
    assert pickup["shipTo"] is None and pickup["shipping"] == [] and pickup["shipTotal"] == 0
    assert typo.status_code == 400 and "shipto" in typo.json()["error"]
