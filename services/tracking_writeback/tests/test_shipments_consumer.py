"""The shipments consumer on real Postgres: the wanted channel state only moves forward."""

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.dispatch.v1 import events_pb2

from libs.platform.db import create_pool, migrate
from libs.platform.testing import consumed
from tracking_writeback.app import MIGRATIONS
from tracking_writeback.consumers.shipments import ShipmentUpdatedConsumer

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


def update(status: shipment_pb2.ShipmentStatus, account: str = "store") -> events_pb2.ShipmentUpdated:
    return events_pb2.ShipmentUpdated(
        order_id="o1",
        channel_ref=order_pb2.ChannelOrderRef(
            channel="commerce7", external_id="c7-1", external_number="1001", account=account
        ),
        provider="vinoshipper",
        shipment=shipment_pb2.Shipment(status=status, tracking_numbers=["1Z1"]),
    )


def event(status: shipment_pb2.ShipmentStatus, offset: int, account: str = "store"):
    return consumed(
        "dispatch.shipments.v1", update(status, account), aggregate_id="o1", tenant_id="acme", offset=offset
    )


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "tracking_writeback", MIGRATIONS)
    pool = await create_pool(database, "tracking_writeback", 4)
    yield pool
    await pool.close()


async def test_an_older_report_after_a_newer_one_does_not_move_the_wanted_state_back(pool):
    woken = []
    consumer = ShipmentUpdatedConsumer(pool, group="writeback", on_wanted=lambda: woken.append(1))
    await consumer.handle([event(shipment_pb2.SHIPMENT_STATUS_DELIVERED, 1)])
    await consumer.handle([event(shipment_pb2.SHIPMENT_STATUS_SHIPPED, 0)])
    row = await pool.fetchrow("SELECT target_status, status FROM writebacks WHERE order_id = 'o1'")
    assert (row["target_status"], row["status"]) == ("delivered", "pending")
    assert woken == [1]


async def test_a_label_alone_is_not_written_to_the_channel(pool):
    consumer = ShipmentUpdatedConsumer(pool, group="writeback", on_wanted=lambda: None)
    await consumer.handle([event(shipment_pb2.SHIPMENT_STATUS_FULFILLED, 0)])
    assert await pool.fetchval("SELECT count(*) FROM writebacks") == 0


async def test_the_channel_account_is_kept_and_not_forgotten_by_a_report_naming_none(pool):
    consumer = ShipmentUpdatedConsumer(pool, group="writeback", on_wanted=lambda: None)
    await consumer.handle([event(shipment_pb2.SHIPMENT_STATUS_SHIPPED, 0)])
    await consumer.handle([event(shipment_pb2.SHIPMENT_STATUS_DELIVERED, 1, account="")])
    row = await pool.fetchrow("SELECT target_status, channel_account FROM writebacks WHERE order_id = 'o1'")
    assert (row["target_status"], row["channel_account"]) == ("delivered", "store")
