"""The orders consumer on real Postgres: one decision per order, published once, with its outbox event."""

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2, postal_address_pb2
from ordersync.intake.v1 import events_pb2

from compliance_routing.app import MIGRATIONS
from compliance_routing.consumers.orders import OrderAcceptedConsumer
from libs.platform.db import create_pool, migrate
from libs.platform.tenants import Tenant, TenantDirectory
from libs.platform.testing import consumed

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

TENANTS = TenantDirectory({"acme": Tenant("acme", None, object(), frozenset({"CA"}))})


def accepted(order_id: str, state: str = "CA", revision: str = "2026-11-23T10:00:00Z") -> events_pb2.OrderAccepted:
    order = order_pb2.Order(
        order_id=order_id,
        tenant_id="acme",
        channel="commerce7",
        external_id=order_id,
        revision=revision,
        order_type=order_pb2.ORDER_TYPE_SHIPPING,
        delivery_method=order_pb2.DELIVERY_METHOD_SHIP,
        ship_to=postal_address_pb2.PostalAddress(administrative_area=state),
    )
    return events_pb2.OrderAccepted(order=order)


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "compliance_routing", MIGRATIONS)
    pool = await create_pool(database, "compliance_routing", 4)
    yield pool
    await pool.close()


async def decisions_and_events(pool) -> tuple[list, int]:
    rows = await pool.fetch("SELECT order_id, outcome, reason_code FROM decisions ORDER BY order_id")
    return [tuple(r) for r in rows], await pool.fetchval("SELECT count(*) FROM outbox")


async def test_each_order_is_decided_and_announced_once(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    first = consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")
    await consumer.handle(
        [first, consumed("intake.orders.v1", accepted("o2", state="NV"), aggregate_id="o2", tenant_id="acme")]
    )
    assert await decisions_and_events(pool) == (
        [("o1", "route", "SHIPPING_TO_CHOSEN_STATE"), ("o2", "not_required", "STATE_NOT_CHOSEN")],
        2,
    )

    # Redelivery of the same event, and a later revision of the same order (our own writeback
    # causes one), change nothing and publish nothing.
    later = consumed(
        "intake.orders.v1", accepted("o1", revision="2026-11-23T11:00:00Z"), aggregate_id="o1", tenant_id="acme"
    )
    await consumer.handle([first, later])
    assert (await decisions_and_events(pool))[1] == 2


async def test_the_same_event_twice_in_one_batch_is_decided_once(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    event = consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")
    await consumer.handle([event, event])
    assert await decisions_and_events(pool) == ([("o1", "route", "SHIPPING_TO_CHOSEN_STATE")], 1)


async def test_an_event_of_the_wrong_type_is_kept_as_a_dead_letter(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    wrong = consumed("intake.orders.v1", order_pb2.Order(order_id="o9"), aggregate_id="o9", tenant_id="acme")
    await consumer.handle([wrong, consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")])
    assert (await decisions_and_events(pool))[0] == [("o1", "route", "SHIPPING_TO_CHOSEN_STATE")]
    assert "expected ordersync.intake.v1.OrderAccepted" in await pool.fetchval("SELECT error FROM dead_letters")
