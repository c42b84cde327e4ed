"""The admin API's ListOrders over real gRPC and Postgres, while the sender keeps changing orders."""

import asyncio

import grpc
import pytest
import pytest_asyncio
from ordersync.admin.v1 import order_admin_service_pb2 as pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.admin import OrderAdminServicer
from fulfillment_dispatch.api.peers import PeerViews
from fulfillment_dispatch.app import MIGRATIONS
from fulfillment_dispatch.operator_actions import OperatorActions
from fulfillment_dispatch.storage.dispatches import NewDispatch, claim_due, enqueue
from libs.connectors.registry import load
from libs.platform.db import create_pool, migrate
from libs.platform.testing import ALL_READER, access_for_tests, authorized

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(120)]

ORDERS = 300
SENDER_BATCH = 200


def routed(tenant_id: str, number: int) -> NewDispatch:
    order_id = f"{tenant_id}-o{number}"
    return NewDispatch(order_id, tenant_id, "vinoshipper", f"P-{order_id}", b"", "commerce7", order_id, str(number), "")


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "fulfillment_dispatch", MIGRATIONS)
    pool = await create_pool(database, "fulfillment_dispatch", 4)
    async with pool.acquire() as conn:
        # One order per statement, as the decisions consumer records them over time.
        for number in range(ORDERS):
            await enqueue(conn, [routed("acme", number)])
        await enqueue(conn, [routed("other", number) for number in range(20)])
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def admin(pool):
    server = grpc.aio.server()
    registry = load()
    actions = OperatorActions(pool, None, None, registry=registry, on_requeued=lambda: None)  # no actions here
    servicer = OrderAdminServicer(pool, actions, PeerViews({}), access_for_tests(), registry=registry)
    pb_grpc.add_OrderAdminServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield authorized(pb_grpc.OrderAdminServiceStub(channel), ALL_READER)
    finally:
        await channel.close()
        await server.stop(None)


async def sender_pass(pool) -> None:
    """What a sender pass does to the table: lease a batch (bumping updated_at), then let it go."""
    claimed = await claim_due(pool, SENDER_BATCH, lease_s=30)
    await pool.execute(
        "UPDATE dispatches SET lease_until = NULL, updated_at = now() WHERE order_id = ANY($1::text[])",
        [row["order_id"] for row in claimed],
    )


async def list_all(admin, request: pb.ListOrdersRequest, between_pages) -> list[str]:
    seen, token = [], ""
    while True:
        request.page_token = token
        page = await admin.ListOrders(request)
        seen += [order.order_id for order in page.orders]
        token = page.next_page_token
        if not token:
            return seen
        await between_pages()


async def test_every_order_is_listed_exactly_once_while_the_sender_changes_them(pool, admin):
    request = pb.ListOrdersRequest(tenant_id="acme", page_size=50)

    listed = await list_all(admin, request, lambda: sender_pass(pool))

    assert sorted(listed) == sorted(f"acme-o{n}" for n in range(ORDERS))
    assert listed[0] == f"acme-o{ORDERS - 1}", "newest order first"


async def test_listing_during_a_concurrent_stream_of_updates_still_shows_each_order_once(pool, admin):
    stop = asyncio.Event()

    async def keep_sending():
        while not stop.is_set():
            await sender_pass(pool)

    updater = asyncio.create_task(keep_sending())
    try:
        listed = await list_all(
            admin, pb.ListOrdersRequest(tenant_id="acme", page_size=25), lambda: asyncio.sleep(0.02)
        )
    finally:
        stop.set()
        await updater
    assert len(listed) == ORDERS and set(listed) == {f"acme-o{n}" for n in range(ORDERS)}


async def test_status_and_since_filters_still_apply_page_by_page(pool, admin):
    failed = {f"acme-o{n}" for n in range(0, ORDERS, 3)}
    await pool.execute("UPDATE dispatches SET status = 'failed' WHERE order_id = ANY($1::text[])", list(failed))
    recent = pb.ListOrdersRequest(tenant_id="acme", statuses=[pb.SYNC_STATUS_FAILED], page_size=20)
    recent.updated_after.GetCurrentTime()
    recent.updated_after.seconds -= 3600

    listed = await list_all(admin, recent, lambda: sender_pass(pool))
    assert sorted(listed) == sorted(failed)

    later = pb.ListOrdersRequest(tenant_id="acme", page_size=20)
    later.updated_after.GetCurrentTime()
    later.updated_after.seconds += 3600
    assert await list_all(admin, later, lambda: sender_pass(pool)) == []


async def test_a_page_token_works_only_for_the_tenant_it_was_issued_for(admin):
    first = await admin.ListOrders(pb.ListOrdersRequest(tenant_id="acme", page_size=5))
    assert first.next_page_token

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await admin.ListOrders(pb.ListOrdersRequest(tenant_id="other", page_size=5, page_token=first.next_page_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await admin.ListOrders(pb.ListOrdersRequest(tenant_id="acme", page_token="bm90LWEtdG9rZW4="))
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
