"""Tests of the ShipStation simulator against the v1 and Custom Store facts it follows, and of the
connector against it."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from aiohttp import web

from libs.connectors.base.contract import PushRequest, Submission, Submitted
from libs.connectors.base.errors import InvalidRequest
from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.shipstation import customstore
from libs.connectors.shipstation.client import ShipStationClient
from libs.connectors.shipstation.connector import CONNECTOR
from libs.connectors.shipstation.errors import OrderRejected
from libs.connectors.shipstation.tests.builders import account as connector_account
from libs.connectors.shipstation.tests.builders import valid_order
from tests.simulators.common import SimulatorServer
from tests.simulators.shipstation import STATE_KEY, ShipStationConfig, create_app
from tests.simulators.tests.conftest import FAST_WEBHOOKS, Receiver, eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(20), pytest.mark.filterwarnings("error")]

ACCOUNT = {"account_id": "cellar.ship", "api_key": "ss-key", "api_secret": "ss-secret"}
AUTH = ("ss-key", "ss-secret")


def fast_client(settings: Any) -> ShipStationClient:
    """A client paced faster than 40 a minute: these tests send a dozen requests, well inside the
    simulator's window, and should not wait 1.5 s between them."""
    return ShipStationClient(settings.api, rate_limiter=KeyedRateLimiter(6000, burst=20))


async def run_ss(**overrides: Any) -> SimulatorServer:
    accounts = overrides.pop("accounts", [dict(ACCOUNT)])
    config = ShipStationConfig(**({"accounts": accounts} | FAST_WEBHOOKS | overrides))
    return await SimulatorServer(create_app(config)).start()


def order(number: str, key: str, **changes: Any) -> dict[str, Any]:
    address = {"name": "Jane Doe", "street1": "100 Vine Street", "city": "Napa", "postalCode": "94558", "country": "US"}
    return {
        "orderNumber": number,
        "orderKey": key,
        "orderDate": "2024-05-01T09:00:00.000Z",
        "orderStatus": "awaiting_shipment",
        "billTo": address,
        "shipTo": address,
        "items": [{"lineItemKey": "line-1", "sku": "CAB-750", "name": "Cabernet", "quantity": 2}],
    } | changes


async def test_createorders_answers_200_with_a_result_per_order_and_upserts_by_order_key(http):
    ss = await run_ss()
    try:
        first = await http.post(f"{ss.base_url}/orders/createorders", json=[order("1001", "k1")], auth=AUTH)
        again = await http.post(
            f"{ss.base_url}/orders/createorders",
            json=[order("1001", "k1", internalNotes="VIP"), order("1002", "k2", shipTo={"name": "x"})],
            auth=AUTH,
        )
        stats = ss.app[STATE_KEY].stats
    finally:
        await ss.stop()
    assert first.status_code == 200 and first.json()["results"][0]["success"] is True
    body = again.json()
    assert again.status_code == 200 and body["hasErrors"] is True
    updated, refused = body["results"]
    assert updated["success"] and updated["orderId"] == first.json()["results"][0]["orderId"]
    assert refused["success"] is False and "shipTo.street1" in refused["errorMessage"]
    assert (stats.orders_created, stats.orders_updated) == (1, 1)


async def test_more_than_100_orders_a_call_is_a_400(http):
    ss = await run_ss()
    try:
        answer = await http.post(
            f"{ss.base_url}/orders/createorders", json=[order(str(n), f"k{n}") for n in range(101)], auth=AUTH
        )
    finally:
        await ss.stop()
    assert answer.status_code == 400 and "100" in answer.json()["Message"]


async def test_chosen_orders_fail_with_the_given_message(http):
    ss = await run_ss()
    try:
        await http.post(
            f"{ss.base_url}/_sim/accounts/cellar.ship/rejections",
            json={"order_number": "1002", "message": "Invalid SKU"},
        )
        answer = await http.post(
            f"{ss.base_url}/orders/createorders", json=[order("1001", "k1"), order("1002", "k2")], auth=AUTH
        )
    finally:
        await ss.stop()
    results = answer.json()["results"]
    assert [r["success"] for r in results] == [True, False] and results[1]["errorMessage"] == "Invalid SKU"


async def test_every_answer_carries_the_window_and_past_it_comes_a_429(http):
    ss = await run_ss(rate_limit_per_minute=3)
    try:
        answers = [await http.get(f"{ss.base_url}/orders", auth=AUTH) for _ in range(4)]
        unauthenticated = await http.get(f"{ss.base_url}/orders")
    finally:
        await ss.stop()
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-Rate-Limit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["X-Rate-Limit-Limit"] == "3" for a in answers)
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert 0 <= int(answers[3].headers["X-Rate-Limit-Reset"]) <= 60
    assert unauthenticated.status_code == 401


async def test_a_label_sends_a_thin_ship_notify_and_a_void_keeps_it_listed_as_voided(http, receiver: Receiver):
    ss = await run_ss(accounts=[dict(ACCOUNT, webhook_url=receiver.url)])
    try:
        await http.post(f"{ss.base_url}/orders/createorders", json=[order("1001", "k1")], auth=AUTH)
        shipped = await http.post(
            f"{ss.base_url}/_sim/accounts/cellar.ship/orders/1001/ship", json={"tracking_number": "1Z999"}
        )
        await eventually(lambda: len(receiver.requests) == 1)
        hook = receiver.requests[0]
        notice = httpx.Response(200, content=hook.body).json()
        listed = await http.get(notice["resource_url"], auth=AUTH)
        shipment_id = shipped.json()["shipment"]["shipmentId"]
        await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/shipments/{shipment_id}/void")
        after = await http.get(f"{ss.base_url}/shipments", params={"orderNumber": "1001"}, auth=AUTH)
        orders = await http.get(f"{ss.base_url}/orders", params={"orderNumber": "1001"}, auth=AUTH)
    finally:
        await ss.stop()
    assert set(notice) == {"resource_url", "resource_type"} and notice["resource_type"] == "SHIP_NOTIFY"
    assert "batchId=" in notice["resource_url"]
    (label,) = listed.json()["shipments"]
    assert label["trackingNumber"] == "1Z999" and label["orderNumber"] == "1001" and label["voided"] is False
    assert after.json()["shipments"][0]["voided"] is True
    assert orders.json()["orders"][0]["orderStatus"] == "awaiting_shipment"


async def test_a_batch_of_labels_sends_one_ship_notify_naming_every_order_of_it(http, receiver: Receiver):
    other = {"account_id": "other.ship", "api_key": "other-key", "api_secret": "other-secret"}
    ss = await run_ss(accounts=[dict(ACCOUNT, webhook_url=receiver.url), other])
    try:
        orders = [order(str(n), f"k{n}") for n in range(1001, 1006)]
        await http.post(f"{ss.base_url}/orders/createorders", json=orders, auth=AUTH)
        first = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/shipments/batch", json={"limit": 3})
        rest = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/shipments/batch", json={})
        none_left = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/shipments/batch", json={})
        await eventually(lambda: len(receiver.requests) == 2)
        urls = [httpx.Response(200, content=r.body).json()["resource_url"] for r in receiver.requests]
        listed = [await http.get(url, auth=AUTH) for url in urls]
        await http.get(f"{ss.base_url}/orders", auth=("other-key", "other-secret"))
        stats = (await http.get(f"{ss.base_url}/_sim/stats")).json()
    finally:
        await ss.stop()
    assert first.status_code == 201 and first.json()["order_numbers"] == ["1001", "1002", "1003"]
    assert rest.json()["order_numbers"] == ["1004", "1005"] and none_left.json()["order_numbers"] == []
    assert [sorted(s["orderNumber"] for s in page.json()["shipments"]) for page in listed] == [
        ["1001", "1002", "1003"],
        ["1004", "1005"],
    ]
    assert stats["account_requests"] == {
        "cellar.ship": {"createorders": 1, "list_shipments": 2},
        "other.ship": {"list_orders": 1},
    }
    assert stats["account_rate_limited"] == {}


async def test_getrates_prices_the_carriers_services_by_weight(http):
    ss = await run_ss()
    body = {"carrierCode": "stamps_com", "fromPostalCode": "95476", "toCountry": "US", "toPostalCode": "94558"}
    try:
        rates = await http.post(
            f"{ss.base_url}/shipments/getrates", json=body | {"weight": {"value": 1000, "units": "grams"}}, auth=AUTH
        )
        unknown = await http.post(
            f"{ss.base_url}/shipments/getrates",
            json=body | {"carrierCode": "nope", "weight": {"value": 1, "units": "grams"}},
            auth=AUTH,
        )
    finally:
        await ss.stop()
    assert [(r["serviceCode"], r["shipmentCost"]) for r in rates.json()] == [
        ("usps_first_class_mail", 6.7),
        ("usps_priority_mail", 11.53),
    ]
    assert unknown.status_code == 400


async def test_getrates_other_cost_is_the_carriers_unrounded_surcharge_and_counts_against_the_window(http):
    ss = await run_ss(rate_limit_per_minute=2)
    body = {"carrierCode": "ups", "fromPostalCode": "95476", "toCountry": "US", "toPostalCode": "94558"}
    body |= {"weight": {"value": 2800, "units": "grams"}}
    try:
        ground = await http.post(
            f"{ss.base_url}/shipments/getrates", json=body | {"serviceCode": "ups_ground"}, auth=AUTH
        )
        usps = await http.post(
            f"{ss.base_url}/shipments/getrates", json=body | {"carrierCode": "stamps_com"}, auth=AUTH
        )
        limited = await http.post(f"{ss.base_url}/shipments/getrates", json=body, auth=AUTH)
    finally:
        await ss.stop()
    # 9.85 + 0.51 * 28 = 24.13; UPS fuel 1.25 % of it = 0.301625, a sub-cent amount as sent
    assert '"shipmentCost": 24.13, "otherCost": 0.301625' in ground.text
    assert [r["serviceCode"] for r in ground.json()] == ["ups_ground"]
    assert {r["otherCost"] for r in usps.json()} == {0.0} and len(usps.json()) == 2
    assert ground.headers["X-Rate-Limit-Limit"] == "2" and usps.headers["X-Rate-Limit-Remaining"] == "0"
    assert limited.status_code == 429 and "Retry-After" in limited.headers


async def test_injected_faults_answer_in_shipstations_shape(http):
    ss = await run_ss()
    try:
        await http.post(f"{ss.base_url}/_sim/faults", json={"route": "createorders", "status": 500})
        failed = await http.post(f"{ss.base_url}/orders/createorders", json=[order("1", "k1")], auth=AUTH)
        passed = await http.post(f"{ss.base_url}/orders/createorders", json=[order("1", "k1")], auth=AUTH)
    finally:
        await ss.stop()
    assert failed.status_code == 500 and "Message" in failed.json() and passed.status_code == 200


# --- the Custom Store puller, against a store made of the connector's pure halves -----------


@dataclasses.dataclass
class Store:
    """A Custom Store endpoint: two export pages of the connector's XML; takes ShipNotices."""

    user: str = "shipstation"
    password: str = "store-pw"
    exports: list[dict[str, str]] = dataclasses.field(default_factory=list)
    notices: list[Any] = dataclasses.field(default_factory=list)

    statuses: tuple[str, ...] = ("Fully Picked", "Fully Picked")  # OrderStatus of page 1, page 2

    async def handle(self, request: web.Request) -> web.Response:
        settings = connector_account(store_user=self.user, store_password=self.password)
        if not CONNECTOR.authenticate_pull(settings, PushRequest(dict(request.headers))):
            return web.Response(status=401)
        action = request.query.get("action")
        if action == "export":
            self.exports.append(dict(request.query))
            page = int(request.query["page"])
            number = str(1000 + page)
            order = valid_order(number)
            order.order_id = f"ord-{number}"  # the store's OrderID, unique per order
            xml = customstore.render_export([order], [number], statuses=[self.statuses[page - 1]], page=page, pages=2)
            return web.Response(body=xml, content_type="application/xml")
        if action == "shipnotify":
            notice = CONNECTOR.parse_posted_shipment(settings, await request.read())
            assert notice.order_number == request.query["order_number"]
            self.notices.append(notice)
            return web.Response(status=200)
        return web.Response(status=400)


async def test_the_puller_reads_every_export_page_then_posts_shipnotices(http):
    store = Store()
    app = web.Application()
    app.router.add_route("*", "/store", store.handle)
    async with SimulatorServer(app) as store_server:
        store_account = dict(
            ACCOUNT, store_url=f"{store_server.base_url}/store", store_user=store.user, store_password=store.password
        )
        ss = await run_ss(accounts=[store_account])
        try:
            pulled = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/store/pull", json={"ship": True})
            stats = ss.app[STATE_KEY].stats
        finally:
            await ss.stop()
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["orders"] == ["1001", "1002"] and [e["page"] for e in store.exports] == ["1", "2"]
    assert all(len(e["start_date"]) == 16 and e["start_date"][2] == "/" for e in store.exports)  # MM/dd/yyyy HH:mm
    assert [n["status"] for n in pulled.json()["shipnotify"]] == [200, 200]
    assert [n.order_number for n in store.notices] == ["1001", "1002"]
    shipment = store.notices[0].shipment
    assert shipment.carrier == "USPS" and shipment.tracking_numbers and shipment.carrier_fee.minor_units == 954
    assert [(i.sku, i.quantity) for i in shipment.items] == [("CAB-750", 2)]
    assert (stats.store_pages_pulled, stats.store_shipnotify_posts) == (2, 2)


async def test_the_puller_stops_at_a_store_that_refuses_its_credentials(http):
    store = Store(password="other")
    app = web.Application()
    app.router.add_route("*", "/store", store.handle)
    async with SimulatorServer(app) as store_server:
        ss = await run_ss(
            accounts=[
                dict(ACCOUNT, store_url=f"{store_server.base_url}/store", store_user="shipstation", store_password="x")
            ]
        )
        try:
            pulled = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/store/pull", json={})
        finally:
            await ss.stop()
    assert pulled.status_code == 502 and "HTTP 401" in pulled.json()["error"]


async def store_and_simulator(store: Store, **config: Any):
    """The store served at /store and a simulator whose account 'cellar.ship' pulls it."""
    app = web.Application()
    app.router.add_route("*", "/store", store.handle)
    store_server = await SimulatorServer(app).start()
    account = dict(
        ACCOUNT, store_url=f"{store_server.base_url}/store", store_user=store.user, store_password=store.password
    )
    return store_server, await run_ss(accounts=[account], **config)


async def test_a_label_bought_for_a_store_order_posts_its_shipnotice_to_the_store(http):
    store = Store()
    store_server, ss = await store_and_simulator(store)
    try:
        await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/store/pull", json={})
        shipped = await http.post(
            f"{ss.base_url}/_sim/accounts/cellar.ship/orders/1002/ship", json={"wait": True, "tracking_number": "1Z9"}
        )
    finally:
        await ss.stop()
        await store_server.stop()
    assert shipped.status_code == 201
    assert shipped.json()["shipnotify"] == {"order_number": "1002", "status": 200, "state": "delivered"}
    (notice,) = store.notices
    assert notice.order_number == "1002" and list(notice.shipment.tracking_numbers) == ["1Z9"]


async def test_a_repulled_window_does_not_undo_a_label_and_unmapped_statuses_are_not_imported(http):
    store = Store(statuses=("Fully Picked", "Backordered"))
    store_server, ss = await store_and_simulator(store)
    try:
        first = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/store/pull", json={})
        await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/orders/1001/ship", json={"wait": True})
        again = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/store/pull", json={})
        orders = (await http.get(f"{ss.base_url}/_sim/accounts/cellar.ship/orders")).json()["orders"]
    finally:
        await ss.stop()
        await store_server.stop()
    assert first.json()["orders"] == ["1001"] and first.json()["skipped"] == ["1002"]
    assert again.json()["orders"] == ["1001"]
    assert [(o["orderNumber"], o["orderStatus"]) for o in orders] == [("1001", "shipped")]


async def test_the_scheduler_pulls_every_store_on_its_own(http):
    store = Store()
    store_server, ss = await store_and_simulator(store, store_pull_interval_s=0.05)
    try:
        await eventually(lambda: len(store.exports) >= 4)  # two pulls of two pages each
        pulls = (await http.get(f"{ss.base_url}/_sim/accounts/cellar.ship/store/pulls")).json()["pulls"]
    finally:
        await ss.stop()
        await store_server.stop()
    assert [e["page"] for e in store.exports[:4]] == ["1", "2", "1", "2"]
    assert all(e["action"] == "export" and len(e["start_date"]) == len(e["end_date"]) == 16 for e in store.exports)
    assert pulls[0] == {"account_id": "cellar.ship", "pages": 2, "orders": ["1001", "1002"], "skipped": []}
    assert store.notices == []  # no label bought: nothing posted back


# --- the connector against the simulator ------------------------------------------------------


async def test_the_connector_submits_reads_back_and_resolves_notices_through_the_simulator(http, receiver: Receiver):
    ss = await run_ss(accounts=[dict(ACCOUNT, webhook_url=receiver.url)])
    settings = connector_account()
    settings = dataclasses.replace(settings, api=dataclasses.replace(settings.api, base_url=ss.base_url))
    try:
        await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/rejections", json={"order_number": "1002"})
        async with fast_client(settings) as client:
            batch = [Submission(valid_order(n), n, f"dispatch-{n}") for n in ("1001", "1002")]
            results = await CONNECTOR.submit(client, settings, batch)
            again = await CONNECTOR.submit(client, settings, batch[:1])
            before = await CONNECTOR.read_back(client, settings, "1001")
            await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/orders/1001/ship", json={})
            await eventually(lambda: len(receiver.requests) == 1)
            head = CONNECTOR.parse_notice(receiver.requests[0].body)
            (notice,) = await CONNECTOR.resolve_notice(client, settings, head)
            with pytest.raises(InvalidRequest, match="can no longer be updated"):
                await CONNECTOR.cancel(client, settings, "1001", "customer asked")  # shipped: too late
    finally:
        stats = ss.app[STATE_KEY].stats
        await ss.stop()
    assert isinstance(results[0], Submitted) and isinstance(results[1], OrderRejected)
    assert isinstance(again[0], Submitted) and (stats.orders_created, stats.orders_updated) == (1, 1)
    assert before is not None and before.shipment is None
    assert notice.order_number == "1001" and notice.shipment is not None and notice.shipment.carrier == "USPS"
    assert stats.rate_limited == 0


async def test_the_connector_cancels_an_order_awaiting_shipment(http):
    ss = await run_ss()
    settings = connector_account()
    settings = dataclasses.replace(settings, api=dataclasses.replace(settings.api, base_url=ss.base_url))
    try:
        async with fast_client(settings) as client:
            await CONNECTOR.submit(client, settings, [Submission(valid_order("1001"), "1001", "dispatch-1001")])
            await CONNECTOR.cancel(client, settings, "1001", "customer asked")
            await CONNECTOR.cancel(client, settings, "1001", "customer asked")  # converges
        orders = await http.get(f"{ss.base_url}/orders", params={"orderNumber": "1001"}, auth=AUTH)
    finally:
        await ss.stop()
    assert [o["orderStatus"] for o in orders.json()["orders"]] == ["cancelled"]


async def test_the_client_pauses_on_a_spent_window_and_collects_no_429():
    # A one-second window of 5 keeps the test short; the client's own pacing is fast, so only the
    # X-Rate-Limit-* headers keep it inside ShipStation's count.
    ss = await run_ss(rate_limit_per_minute=5, rate_window_s=1.0)
    settings = connector_account()
    settings = dataclasses.replace(settings, api=dataclasses.replace(settings.api, base_url=ss.base_url))
    try:
        async with fast_client(settings) as client:
            for _ in range(8):
                await client.list_orders("1001")
        stats = ss.app[STATE_KEY].stats
    finally:
        await ss.stop()
    assert stats.requests["list_orders"] == 8 and stats.rate_limited == 0


async def test_shipments_are_listed_by_create_date_sorted_and_paged(http):
    ss = await run_ss()
    try:
        await http.post(
            f"{ss.base_url}/orders/createorders", json=[order("1001", "k1"), order("1002", "k2")], auth=AUTH
        )
        first = await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/orders/1001/ship", json={})
        await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/orders/1002/ship", json={})
        since = first.json()["shipment"]["createDate"]
        listed = await http.get(
            f"{ss.base_url}/shipments",
            params={"createDateStart": since, "sortBy": "CreateDate", "sortDir": "DESC", "pageSize": "1"},
            auth=AUTH,
        )
        later = await http.get(
            f"{ss.base_url}/shipments", params={"createDateStart": "2999-01-01T00:00:00.0000000"}, auth=AUTH
        )
    finally:
        await ss.stop()
    body = listed.json()
    assert (body["total"], body["pages"]) == (2, 2)
    assert body["shipments"][0]["orderNumber"] == "1002"  # newest first
    assert later.json()["shipments"] == []


async def test_dropped_webhooks_are_lost_and_a_batch_print_sends_one_notice(http, receiver: Receiver):
    ss = await run_ss(accounts=[dict(ACCOUNT, webhook_url=receiver.url)])
    try:
        await http.post(f"{ss.base_url}/orders/createorders", json=[order(n, f"k{n}") for n in "123"], auth=AUTH)
        await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/webhooks/drop", json={"count": 1})
        await http.post(f"{ss.base_url}/_sim/accounts/cellar.ship/orders/1/ship", json={})
        batch = await http.post(
            f"{ss.base_url}/_sim/accounts/cellar.ship/shipments/batch", json={"order_numbers": ["2", "3"]}
        )
        await eventually(lambda: len(receiver.requests) == 1)
        notice = httpx.Response(200, content=receiver.requests[0].body).json()
        listed = await http.get(notice["resource_url"], auth=AUTH)
        stats = ss.app[STATE_KEY].stats
    finally:
        await ss.stop()
    assert stats.webhooks_dropped == 1
    assert f"batchId={batch.json()['batchId']}" in notice["resource_url"]
    assert sorted(s["orderNumber"] for s in listed.json()["shipments"]) == ["2", "3"]
