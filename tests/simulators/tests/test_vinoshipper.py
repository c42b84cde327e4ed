"""Tests of the Vinoshipper simulator against the vendor facts it follows."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.simulators.common import SimulatorServer
from tests.simulators.tests.conftest import VS_PRODUCER, Receiver, eventually, run_vs
from tests.simulators.vinoshipper import STATE_KEY

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(10), pytest.mark.filterwarnings("error")]

AUTH = (VS_PRODUCER["api_key"], VS_PRODUCER["api_secret"])
OTHER_PRODUCER = {
    "producer_id": "neighbour",
    "api_key": "key-2",
    "api_secret": "vs-secret-2",
    "products": ["CAB-750"],
    "licensed_states": ["CA"],
}


def order_body(**overrides: Any) -> dict[str, Any]:
    """A valid, compliant create request."""
    return {
        "orderNumber": "C7-cellar-1001",
        "orderDate": "2024-05-01T12:00:00.000Z",
        "customer": {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "dateOfBirth": "1980-12-10",
        },
        "shipToAddress": {
            "street1": "1 Vineyard Way",
            "city": "Napa",
            "postalCode": "94558",
            "stateCode": "CA",
            "country": "US",
            "firstName": "Ada",
            "lastName": "Lovelace",
        },
        "productIdType": "SKU",
        "products": [{"productId": "CAB-750", "quantity": 2, "price": 45.0}],
        "shippingRate": {"carrier": "UPS", "rateCode": "03"},
        "totalPrice": 105.0,
        "shippingPrice": 15.0,
        "isPaid": True,
        "suppressCustomerEmails": True,
    } | overrides


async def create(http: httpx.AsyncClient, vs: SimulatorServer, **overrides: Any) -> httpx.Response:
    """POST a create request as the default producer."""
    return await http.post(f"{vs.base_url}/api/v3/p/orders", json=order_body(**overrides), auth=AUTH)


async def stats(http: httpx.AsyncClient, vs: SimulatorServer) -> dict[str, Any]:
    """Return the simulator's counters."""
    return (await http.get(f"{vs.base_url}/_sim/stats")).json()


async def use_receiver(http: httpx.AsyncClient, vs: SimulatorServer, receiver: Receiver) -> None:
    """Send the default producer's webhooks to the receiver."""
    response = await http.put(f"{vs.base_url}/_sim/producers/winery", json=VS_PRODUCER | {"webhook_url": receiver.url})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "auth", [None, ("key-1", "wrong"), ("nobody", "vs-secret-1")], ids=["missing", "wrong-secret", "unknown-key"]
)
async def test_bad_api_credentials_are_unauthorized(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
    auth: tuple[str, str] | None,
) -> None:
    response = await http.post(f"{vs.base_url}/api/v3/p/orders", json=order_body(), auth=auth)
    assert response.status_code == 401 and response.json()["message"]
    assert (await stats(http, vs))["orders_created"] == 0


async def test_compliant_order_is_created_with_pending_status(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    response = await create(http, vs)
    assert response.status_code == 201
    detail = response.json()
    assert (detail["orderNumber"], detail["status"], detail["orderStatus"]) == ("C7-cellar-1001", "PENDING", "OPEN")
    assert detail["isCompliant"] is True and detail["shipping"]["rateDescription"] == "UPS Ground"
    assert detail["shipping"]["shipper"]["isFulfillmentCenter"] is True and detail["shipping"]["packages"] == []
    assert detail["products"] == order_body()["products"] and detail["suppressCustomerEmails"] is True
    [listed] = (await http.get(f"{vs.base_url}/_sim/orders", params={"producer_id": "winery"})).json()["orders"]
    assert listed["producer_id"] == "winery" and listed["receivedAt"] > 1e12


async def test_duplicate_order_number_is_409_and_counted(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    await http.put(f"{vs.base_url}/_sim/producers/neighbour", json=OTHER_PRODUCER)
    await create(http, vs)
    again = await create(http, vs)
    elsewhere = await http.post(f"{vs.base_url}/api/v3/p/orders", json=order_body(), auth=("key-2", "vs-secret-2"))
    assert again.status_code == 409 and again.json()["message"] == "Order number C7-cellar-1001 already exists"
    assert elsewhere.status_code == 409
    counters = await stats(http, vs)
    assert counters["duplicate_submissions"] == 2 and counters["orders_created"] == 1


async def test_unknown_sku_is_400_naming_the_product(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    products = [{"productId": "CAB-750", "quantity": 1}, {"productId": "ROSE-750", "quantity": 1}]
    response = await create(http, vs, products=products)
    assert response.status_code == 400
    assert response.json()["message"] == "Unknown product SKU 'ROSE-750'"
    assert response.json()["errors"][0]["field"] == "products[1].productId"


async def test_unknown_and_missing_fields_are_400_per_field(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    body = order_body(shipToAdress={}, shippingRate={"carrier": "FedEx", "rateCode": "03"})
    del body["customer"]["lastName"]
    response = await http.post(f"{vs.base_url}/api/v3/p/orders", json=body, auth=AUTH)
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"shipToAdress", "customer.lastName", "shippingRate.carrier"}


async def test_non_compliant_order_is_422_with_every_problem(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    ship_to = order_body()["shipToAddress"] | {"stateCode": "UT"}
    customer = order_body()["customer"] | {"dateOfBirth": "2015-01-01"}
    response = await create(
        http, vs, shipToAddress=ship_to, customer=customer, products=[{"productId": "CAB-750", "quantity": 25}]
    )
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "Order is not compliant"
    assert body["orderProblems"][0] == "Shipping to UT is not permitted for this producer"
    assert len(body["orderProblems"]) == 3
    assert (await stats(http, vs))["orders_created"] == 0


async def test_check_compliance_reports_without_creating(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    url = f"{vs.base_url}/api/v3/p/orders/check-compliance"
    good = await http.post(url, json=order_body(), auth=AUTH)
    bad = await http.post(
        url, json=order_body(shipToAddress=order_body()["shipToAddress"] | {"stateCode": "UT"}), auth=AUTH
    )
    assert good.json() == {"isCompliant": True, "orderProblems": []}
    assert bad.status_code == 200 and bad.json()["isCompliant"] is False
    assert (await stats(http, vs))["orders_created"] == 0


async def test_fulfil_ship_deliver_send_webhooks_whose_links_can_be_fetched(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    await use_receiver(http, vs, receiver)
    await create(http, vs)
    steps = {}
    for step in ("fulfil", "ship", "deliver"):
        response = await http.post(f"{vs.base_url}/_sim/orders/C7-cellar-1001/{step}", json={"wait": True})
        assert response.json()["delivery"]["status_code"] == 200
        hook = json.loads(receiver.requests[-1].body)
        steps[hook["event"]] = (await http.get(hook["hrefV3"], auth=AUTH)).json()
    assert [json.loads(r.body)["event"] for r in receiver.requests] == [
        "CREATED",
        "UPDATED",
        "TRACKING_NUMBER_ADDED",
        "SHIPMENT_STATUS_UPDATED",
    ]
    assert steps["UPDATED"]["status"] == "FULFILLED"
    [package] = steps["TRACKING_NUMBER_ADDED"]["shipping"]["packages"]
    assert re.fullmatch(r"1Z[0-9A-Z]{16}", package["trackingNumber"]) and steps["TRACKING_NUMBER_ADDED"]["shippedAt"]
    delivered = steps["SHIPMENT_STATUS_UPDATED"]
    assert delivered["status"] == "DELIVERED" and delivered["deliveredAt"] and delivered["orderStatus"] == "CLOSED"
    hook = json.loads(receiver.requests[0].body)
    assert hook["subject"] == "ORDER" and hook["identifier"] == "C7-cellar-1001" and hook["href"] != hook["hrefV3"]


async def test_deliver_before_ship_is_a_conflict(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    await create(http, vs)
    response = await http.post(f"{vs.base_url}/_sim/orders/C7-cellar-1001/deliver", json={})
    assert response.status_code == 409


async def test_lost_webhook_is_not_sent(vs: SimulatorServer, http: httpx.AsyncClient, receiver: Receiver) -> None:
    await use_receiver(http, vs, receiver)
    await create(http, vs)
    await eventually(lambda: len(receiver.requests) == 1)
    response = await http.post(
        f"{vs.base_url}/_sim/orders/C7-cellar-1001/ship",
        json={"webhook": False, "trackingNumbers": ["1ZAAAAAAAAAAAAAAAA"]},
    )
    assert response.json()["delivery"] is None and response.json()["order"]["status"] == "SHIPPED"
    assert len((await http.get(f"{vs.base_url}/_sim/webhook-deliveries")).json()["deliveries"]) == 1


async def test_other_producer_cannot_read_the_order(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    await http.put(f"{vs.base_url}/_sim/producers/neighbour", json=OTHER_PRODUCER)
    await create(http, vs)
    response = await http.get(f"{vs.base_url}/api/v3/p/orders/C7-cellar-1001", auth=("key-2", "vs-secret-2"))
    assert response.status_code == 404


async def test_cancel_sets_reason_and_shipped_orders_cannot_be_cancelled(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    await create(http, vs)
    await create(http, vs, orderNumber="C7-cellar-1002")
    await http.post(f"{vs.base_url}/_sim/orders/C7-cellar-1002/ship", json={})
    cancelled = await http.post(
        f"{vs.base_url}/api/v3/p/orders/C7-cellar-1001/cancel", json={"reason": "Customer request"}, auth=AUTH
    )
    refused = await http.post(f"{vs.base_url}/api/v3/p/orders/C7-cellar-1002/cancel", json={}, auth=AUTH)
    assert cancelled.json()["status"] == "CANCELLED" and cancelled.json()["cancelReason"] == "Customer request"
    assert cancelled.json()["canceledAt"] and refused.status_code == 409


async def test_upsert_creates_then_updates_and_refuses_shipped_orders(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    url = f"{vs.base_url}/api/v3/p/orders"
    created = await http.put(url, json=order_body(), auth=AUTH)
    updated = await http.put(url, json=order_body(specialInstructions="Leave at door"), auth=AUTH)
    await http.post(f"{vs.base_url}/_sim/orders/C7-cellar-1001/ship", json={})
    refused = await http.put(url, json=order_body(), auth=AUTH)
    assert (created.status_code, updated.status_code, refused.status_code) == (201, 200, 409)
    assert updated.json()["specialInstructions"] == "Leave at door"
    assert (await stats(http, vs))["duplicate_submissions"] == 0


async def test_overlapping_puts_of_one_order_leave_one_order_and_no_duplicate(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    # The first PUT is slow and its client gives up; the repeat arrives while it is still handled.
    url = f"{vs.base_url}/api/v3/p/orders"
    await http.post(f"{vs.base_url}/_sim/faults", json={"route": "upsert", "delay_s": 0.3})
    with pytest.raises(httpx.ReadTimeout):
        await http.put(url, json=order_body(), auth=AUTH, timeout=0.05)
    repeat = await http.put(url, json=order_body(), auth=AUTH)

    async def slow_one_handled() -> bool:
        return (await stats(http, vs))["requests"]["upsert"] == 2 and (await stats(http, vs))["orders_updated"] == 1

    await eventually(slow_one_handled)
    counters = await stats(http, vs)
    assert repeat.status_code == 201
    assert (counters["orders_created"], counters["orders_updated"], counters["duplicate_submissions"]) == (1, 1, 0)
    assert [o["orderNumber"] for o in (await http.get(f"{vs.base_url}/_sim/orders")).json()["orders"]] == [
        "C7-cellar-1001"
    ]


async def test_upsert_is_compliance_checked_and_refuses_another_producers_number(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    url = f"{vs.base_url}/api/v3/p/orders"
    not_compliant = await http.put(
        url, json=order_body(orderNumber="C7-cellar-2001", customer={"firstName": "A", "lastName": "B"}), auth=AUTH
    )
    await http.put(f"{vs.base_url}/_sim/producers/neighbour", json=OTHER_PRODUCER)
    await http.put(
        url, json=order_body(orderNumber="N-1"), auth=(OTHER_PRODUCER["api_key"], OTHER_PRODUCER["api_secret"])
    )
    taken = await http.put(url, json=order_body(orderNumber="N-1"), auth=AUTH)
    assert not_compliant.status_code == 422 and not_compliant.json()["orderProblems"]
    assert taken.status_code == 409
    counters = await stats(http, vs)
    assert (counters["orders_created"], counters["orders_updated"], counters["duplicate_submissions"]) == (1, 0, 1)


async def test_status_fault_answers_without_creating(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    await http.post(f"{vs.base_url}/_sim/faults", json={"route": "create", "status": 503})
    failed = await create(http, vs)
    retried = await create(http, vs)
    assert failed.status_code == 503 and "message" in failed.json()
    assert retried.status_code == 201 and (await stats(http, vs))["duplicate_submissions"] == 0


async def test_after_create_fault_loses_the_response_but_keeps_the_order(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    await http.post(f"{vs.base_url}/_sim/faults", json={"route": "create", "status": 500, "after_create": True})
    lost = await create(http, vs)
    read_back = await http.get(f"{vs.base_url}/api/v3/p/orders/C7-cellar-1001", auth=AUTH)
    assert lost.status_code == 500 and read_back.status_code == 200
    assert (await stats(http, vs))["orders_created"] == 1


async def test_delay_fault_times_the_client_out_and_the_order_still_lands(
    vs: SimulatorServer,
    http: httpx.AsyncClient,
) -> None:
    await http.post(f"{vs.base_url}/_sim/faults", json={"route": "create", "delay_s": 0.3})
    with pytest.raises(httpx.ReadTimeout):
        await http.post(f"{vs.base_url}/api/v3/p/orders", json=order_body(), auth=AUTH, timeout=0.05)

    async def landed() -> bool:
        return (await http.get(f"{vs.base_url}/_sim/orders/C7-cellar-1001")).status_code == 200

    await eventually(landed)


async def test_created_hook_runs_before_the_response(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    state = vs.app[STATE_KEY]
    seen: list[tuple[str, bool]] = []
    state.on_order_created.append(
        lambda order: seen.append((order["orderNumber"], order["orderNumber"] in state.orders))
    )
    await create(http, vs)
    assert seen == [("C7-cellar-1001", True)]


async def test_random_429_rate_of_one_throttles_every_request(http: httpx.AsyncClient) -> None:
    server = await run_vs(random_429_rate=1.0)
    try:
        response = await create(http, server)
        counters = await stats(http, server)
    finally:
        await server.stop()
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert counters["random_429s"] == 1 and counters["orders_created"] == 0


async def test_missing_birth_date_is_a_compliance_problem(vs: SimulatorServer, http: httpx.AsyncClient) -> None:
    customer = {k: v for k, v in order_body()["customer"].items() if k != "dateOfBirth"}
    response = await create(http, vs, customer=customer)
    assert response.status_code == 422
    assert "date of birth" in response.json()["orderProblems"][0]


async def test_cancelling_twice_answers_the_cancelled_order_without_a_second_webhook(
    vs: SimulatorServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    await use_receiver(http, vs, receiver)
    await create(http, vs)
    url = f"{vs.base_url}/api/v3/p/orders/C7-cellar-1001/cancel"
    first = await http.post(url, json={"cancelReason": "Voided in Commerce7"}, auth=AUTH)
    second = await http.post(url, json={"cancelReason": "Voided in Commerce7"}, auth=AUTH)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["cancelReason"] == "Voided in Commerce7"
    await eventually(lambda: len(receiver.requests) == 2)
    events = [d["event"] for d in (await http.get(f"{vs.base_url}/_sim/webhook-deliveries")).json()["deliveries"]]
    assert events == ["CREATED", "CANCELLED"]
