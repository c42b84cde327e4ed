"""Notices naming many orders (a batch of labels), over real HTTP and real Postgres: applied in
one transaction with each order's own outcome, one event per order moved, harmless when repeated,
and nothing half-applied when the database fails in the middle (503, and the retry succeeds)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from ordersync.common.v1 import shipment_pb2

from fulfillment_dispatch import shipments
from fulfillment_dispatch.api.webhooks import ProviderWebhookHandler, RecentNotices, build_web_app
from fulfillment_dispatch.app import MIGRATIONS
from fulfillment_dispatch.storage.dispatches import AttemptResult, claim_due, record_results
from libs.platform.db import create_pool, migrate
from services.fulfillment_dispatch.tests.fake_provider import NOTICE_TOKEN, TENANT, queue, recorder, shipped, world

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

SENT = [str(n) for n in range(2001, 2041)]  # forty orders sent to the provider


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "fulfillment_dispatch", MIGRATIONS)
    pool = await create_pool(database, "fulfillment_dispatch", 4)
    await queue(pool, *SENT, account="notices", provider="noticeship")
    claimed = await claim_due(pool, 100, lease_s=30)
    async with pool.acquire() as conn:
        results = [AttemptResult(r["order_id"], TENANT, "sent", "", "", None, "sent", 1) for r in claimed]
        await record_results(conn, results, first_check_after=None)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def hub(pool):
    built = world()
    yield built
    await built.accounts.stop()


@pytest_asyncio.fixture
async def http(pool, hub):
    handler = ProviderWebhookHandler(pool, hub.accounts, recorder(pool, hub.registry))
    server = TestServer(build_web_app(handler, []), host="127.0.0.1")
    await server.start_server()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client:
            yield client
    finally:
        await server.close()


def batch(*labels: tuple[str, str]) -> bytes:
    return json.dumps({"labels": [list(label) for label in labels]}).encode()


async def post(http, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json", "X-Notice-Token": NOTICE_TOKEN}
    return await http.post(f"/webhooks/noticeship/{TENANT}", content=body, headers=headers)


async def state(pool) -> dict[str, str]:
    rows = await pool.fetch("SELECT external_number, shipment_status FROM dispatches")
    return {r["external_number"]: r["shipment_status"] for r in rows}


async def counts(pool) -> tuple[int, int]:
    events = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'dispatch.shipments.v1'")
    activity = await pool.fetchval("SELECT count(*) FROM dispatch_activity WHERE kind LIKE 'shipment_%'")
    return events, activity


async def test_a_batch_of_labels_is_applied_with_each_orders_outcome_and_one_event_each(http, pool, hub):
    await recorder(pool, hub.registry).apply(TENANT, "noticeship", "N-2002", shipped("1Z2002"))
    labels = [(f"N-{n}", f"1Z{n}") for n in SENT] + [("N-9999", "1Z9999")]

    response = await post(http, batch(*labels))

    assert response.status_code == 200
    assert response.json()["status"] == "applied,unchanged,unknown_order"
    assert set((await state(pool)).values()) == {"shipped"}
    keys = [r["key"] for r in await pool.fetch("SELECT key FROM outbox WHERE topic = 'dispatch.shipments.v1'")]
    assert sorted(keys) == sorted(f"ord-{n}".encode() for n in SENT)  # one event per order, 2002's earlier
    assert await counts(pool) == (len(SENT), len(SENT))

    again = await post(http, batch(*labels))

    # A printed batch says the same at every re-read: the redelivery shares the first answer.
    assert (again.status_code, again.json()["status"]) == (200, "applied,unchanged,unknown_order")
    assert hub.vendor.rereads == 1
    assert await counts(pool) == (len(SENT), len(SENT))
    receipts = await pool.fetch("SELECT outcome, detail FROM provider_webhooks ORDER BY id")
    assert [r["detail"] for r in receipts] == [
        "SHIP_NOTIFY",
        "SHIP_NOTIFY (a redelivery: the first delivery's re-read)",
    ]


async def test_a_redelivery_while_the_first_is_handled_waits_for_it_instead_of_reading_again(http, pool, hub):
    hub.vendor.hold = release = asyncio.Event()
    labels = [(f"N-{n}", f"1Z{n}") for n in SENT[:5]]
    first = asyncio.create_task(post(http, batch(*labels)))
    await hub.vendor.entered.wait()  # the first delivery is re-reading the batch
    second = asyncio.create_task(post(http, batch(*labels)))
    await asyncio.sleep(0.2)
    release.set()

    answers = [await first, await second]

    assert [(a.status_code, a.json()["status"]) for a in answers] == [(200, "applied")] * 2
    assert hub.vendor.rereads == 1
    assert await counts(pool) == (5, 5)


async def test_a_repeated_notice_whose_news_can_change_is_read_again(http, pool, hub):
    body = json.dumps({"order": "N-2001", "tracking": "1Z2001"}).encode()  # an order's status: news may differ

    answers = [await post(http, body), await post(http, body)]

    assert [a.json()["status"] for a in answers] == ["applied", "unchanged"]
    assert hub.vendor.rereads == 2


async def test_a_failed_resolution_is_forgotten_so_the_next_delivery_tries_again():
    recent, calls = RecentNotices(window_s=60), []

    async def failing() -> list[str]:
        calls.append("fail")
        raise RuntimeError("read-back failed")

    async def working() -> list[str]:
        calls.append("work")
        return ["applied"]

    with pytest.raises(RuntimeError):
        await recent.once(("t", "a", b"k"), failing)
    assert await recent.once(("t", "a", b"k"), working) == (["applied"], False)
    assert await recent.once(("t", "a", b"k"), working) == (["applied"], True)
    assert calls == ["fail", "work"]


async def test_a_resolution_is_shared_only_within_its_window():
    now = [0.0]
    recent = RecentNotices(window_s=10, clock=lambda: now[0])

    async def work() -> list[str]:
        return ["applied"]

    assert (await recent.once(("k",), work))[1] is False
    now[0] = 9.0
    assert (await recent.once(("k",), work))[1] is True
    now[0] = 10.5
    assert (await recent.once(("k",), work))[1] is False


async def test_apply_many_answers_each_report_in_order_and_sees_earlier_reports_of_the_same_order(pool, hub):
    delivered = shipment_pb2.Shipment(status=shipment_pb2.SHIPMENT_STATUS_DELIVERED, tracking_numbers=["1Z2001"])
    reports = [
        ("N-2001", shipped("1Z2001")),
        ("N-0000", shipped("1Z0000")),
        ("N-2001", shipped("1Z2001")),  # the same label again: no news after the first
        ("N-2002", None),  # a report without a state
        ("N-2001", delivered),
    ]

    outcomes = await recorder(pool, hub.registry).apply_many(TENANT, "noticeship", reports)

    assert outcomes == ["applied", "unknown_order", "unchanged", "unchanged", "applied"]
    assert (await state(pool))["2001"] == "delivered"
    assert await counts(pool) == (2, 2)  # shipped, then delivered
    assert await pool.fetchval("SELECT next_check_at FROM dispatches WHERE external_number = '2001'") is None


async def test_a_list_longer_than_a_transaction_is_applied_in_chunks_with_the_same_outcomes(pool, hub, monkeypatch):
    monkeypatch.setattr(shipments, "MAX_REPORTS_PER_TRANSACTION", 3)
    reports = [(f"N-{n}", shipped(f"1Z{n}")) for n in SENT[:7]] + [("N-0000", shipped("1Z0000"))]

    outcomes = await recorder(pool, hub.registry).apply_many(TENANT, "noticeship", reports)

    assert outcomes == ["applied"] * 7 + ["unknown_order"]
    assert await counts(pool) == (7, 7)


async def test_a_database_failure_mid_batch_applies_nothing_answers_503_and_the_retry_succeeds(http, pool):
    # The activity of the third order fails after the batch's UPDATE ran: everything must roll back.
    await pool.execute(
        "CREATE FUNCTION refuse_2003() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.order_id = 'ord-2003' THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER refuse_2003 BEFORE INSERT ON dispatch_activity"
        " FOR EACH ROW EXECUTE FUNCTION refuse_2003()"
    )
    labels = [(f"N-{n}", f"1Z{n}") for n in SENT[:5]]

    failed = await post(http, batch(*labels))

    assert failed.status_code == 503
    assert failed.json() == {"error": "TEMPORARILY_UNAVAILABLE", "message": "could not store the webhook; retry later"}
    assert set((await state(pool)).values()) == {""}
    assert await counts(pool) == (0, 0)
    assert await pool.fetchval("SELECT count(*) FROM provider_webhooks") == 0

    await pool.execute("DROP TRIGGER refuse_2003 ON dispatch_activity")
    retried = await post(http, batch(*labels))

    assert (retried.status_code, retried.json()["status"]) == (200, "applied")
    assert [s for n, s in sorted((await state(pool)).items())][:5] == ["shipped"] * 5
    assert await counts(pool) == (5, 5)
