"""Writeback's connection health and ListWritebacks on real Postgres, over real gRPC for the list:
per channel account the shipments not yet written and the oldest, the writes ended in the window,
failures and blocks, the couriers blocked writes name; the list by status, latest change first,
paged; another tenant's records never appear; the answer code of every path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
import pytest_asyncio
from ordersync.common.v1 import shipment_pb2
from ordersync.tracking.v1 import tracking_service_pb2 as pb
from ordersync.tracking.v1 import tracking_service_pb2_grpc as pb_grpc

from libs.platform.connection_health import CARRIER_CODE
from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import bind
from libs.platform.testing import ACME_READER, access_for_tests, authorized, refusals, refused, serving
from tracking_writeback.api.grpc import TrackingWritebackServicer
from tracking_writeback.app import MIGRATIONS
from tracking_writeback.connection_health import WritebackHealth

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
NOW = datetime.now(UTC)
DAY = NOW - timedelta(hours=24)


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "tracking_writeback", MIGRATIONS)
    pool = await create_pool(database, "tracking_writeback", 2)
    yield pool
    await pool.close()


async def seed(
    pool, order_id: str, status: str = "pending", *, tenant="acme", account="store", channel="groupon", **columns
):
    shipment = shipment_pb2.Shipment(service_code=columns.pop("service_code", ""), carrier=columns.pop("carrier", ""))
    values = {
        "order_id": order_id,
        "tenant_id": tenant,
        "channel": channel,
        "channel_account": account,
        "external_id": f"x-{order_id}",
        "external_number": f"#{order_id}",
        "target_status": "shipped",
        "shipment_proto": shipment.SerializeToString(),
        "status": status,
        **columns,
    }
    names = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await pool.execute(f"INSERT INTO writebacks ({names}) VALUES ({marks})", *values.values())


async def test_each_channel_account_with_its_unwritten_shipments_results_and_unmapped_couriers(pool):
    await seed(pool, "p1", "pending", wanted_at=NOW - timedelta(hours=5))
    await seed(pool, "r1", "retry_wait", wanted_at=NOW - timedelta(hours=1), reason="channel busy", updated_at=NOW)
    hour_ago, why = NOW - timedelta(hours=1), "courier has no code"
    await seed(pool, "b1", "blocked", reason=why, updated_at=hour_ago, service_code="fedex_ground")
    await seed(pool, "b2", "blocked", reason=why, updated_at=NOW - timedelta(minutes=30), service_code="fedex_ground")
    await seed(pool, "b3", "blocked", reason=why, updated_at=hour_ago, carrier="Lasership")
    await seed(pool, "w1", "written", updated_at=NOW - timedelta(hours=2))
    await seed(pool, "w_old", "written", updated_at=NOW - timedelta(days=3))
    await seed(pool, "f1", "failed", account="c7", channel="commerce7", reason="refused: order closed")
    await seed(pool, "other", "blocked", tenant="globex", service_code="ups", wanted_at=NOW - timedelta(days=9))

    health = await WritebackHealth().connection_health(pool, "acme", DAY)

    by_account = {h.account: h for h in health}
    assert set(by_account) == {"store", "c7"}
    store, c7 = by_account["store"], by_account["c7"]
    assert (store.connector, store.unwritten_count, store.oldest_unwritten) == ("groupon", 5, NOW - timedelta(hours=5))
    assert (store.attempts, store.failures) == (4, 3)  # w1 and the three blocked; w_old ended before
    assert store.last_error == "channel busy"  # r1 changed last
    assert sorted((u.kind, u.code, u.orders, u.connector) for u in store.unmapped) == [
        (CARRIER_CODE, "Lasership", 1, "groupon"),
        (CARRIER_CODE, "fedex_ground", 2, "groupon"),
    ]
    fedex = next(u for u in store.unmapped if u.code == "fedex_ground")
    assert fedex.example_order_id == "b2"  # the one that held up an order last
    assert (c7.connector, c7.unwritten_count, c7.oldest_unwritten, c7.attempts, c7.failures) == (
        "commerce7",
        0,
        None,
        1,
        1,
    )
    assert c7.last_error == "refused: order closed"
    assert await WritebackHealth().connection_health(pool, "initech", DAY) == []


@pytest_asyncio.fixture
async def stub(pool):
    servicer = TrackingWritebackServicer(pool, access_for_tests())
    async with serving(bind(pb, pb_grpc, "TrackingWritebackService", servicer)) as channel:
        yield pb_grpc.TrackingWritebackServiceStub(channel)


async def test_list_writebacks_filters_by_status_latest_change_first_in_pages(pool, stub):
    for n in range(7):
        await seed(pool, f"o{n}", "failed" if n % 2 else "blocked", updated_at=NOW - timedelta(minutes=n))
    await seed(pool, "p1", "pending", updated_at=NOW)
    await seed(pool, "w1", "written", updated_at=NOW)
    await seed(pool, "same_a", "blocked", updated_at=NOW - timedelta(hours=1))  # one change time, two records
    await seed(pool, "same_b", "blocked", updated_at=NOW - timedelta(hours=1))
    await seed(pool, "theirs", "blocked", tenant="globex", updated_at=NOW)
    reader = authorized(stub, ACME_READER)
    wanted = [pb.WRITEBACK_STATUS_BLOCKED, pb.WRITEBACK_STATUS_FAILED]

    seen, token, pages = [], "", 0
    while True:
        page = await reader.ListWritebacks(
            pb.ListWritebacksRequest(tenant_id="acme", statuses=wanted, page_size=3, page_token=token)
        )
        seen += page.records
        pages += 1
        token = page.next_page_token
        if not token:
            break

    assert pages == 3
    assert [r.record.order_id for r in seen] == [f"o{n}" for n in range(7)] + ["same_b", "same_a"]
    first = seen[0]
    assert (first.channel_account, first.channel, first.order_number) == ("store", "groupon", "#o0")
    assert first.record.status == pb.WRITEBACK_STATUS_BLOCKED and seen[1].record.status == pb.WRITEBACK_STATUS_FAILED
    retrying = await reader.ListWritebacks(
        pb.ListWritebacksRequest(tenant_id="acme", statuses=[pb.WRITEBACK_STATUS_RETRY_WAIT])
    )
    assert [r.record.order_id for r in retrying.records] == ["p1"] and not retrying.next_page_token
    everything = await reader.ListWritebacks(pb.ListWritebacksRequest(tenant_id="acme"))
    assert len(everything.records) == 11 and "theirs" not in {r.record.order_id for r in everything.records}


async def test_list_writebacks_refuses_strangers_bad_tokens_sizes_and_statuses(pool, stub):
    await seed(pool, "o1", "blocked")
    await seed(pool, "o2", "blocked")
    reader = authorized(stub, ACME_READER)
    request = pb.ListWritebacksRequest(tenant_id="acme")
    assert await refusals(stub, "ListWritebacks", request) == (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    page = await reader.ListWritebacks(pb.ListWritebacksRequest(tenant_id="acme", page_size=1))
    assert page.next_page_token
    for bad in (
        pb.ListWritebacksRequest(),
        pb.ListWritebacksRequest(tenant_id="acme", page_size=501),
        pb.ListWritebacksRequest(tenant_id="acme", statuses=[pb.WRITEBACK_STATUS_UNSPECIFIED]),
        pb.ListWritebacksRequest(tenant_id="acme", page_token="not-a-token"),
        # a token given for one tenant pages no other's list
        pb.ListWritebacksRequest(tenant_id="globex", page_token=page.next_page_token),
    ):
        code = await refused(authorized(stub, "all-tenants-reader-token").ListWritebacks(bad))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
