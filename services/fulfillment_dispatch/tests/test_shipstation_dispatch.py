"""Dispatch with the real ShipStation connector against the ShipStation simulator, on real Postgres:
100 orders a call, a refused item failing alone, an unmapped status failing clearly, and the
shipment poller recovering lost notices, voided labels, and leasing each account to one replica."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from ordersync.common.v1 import shipment_pb2

from fulfillment_dispatch.sender import Sender
from fulfillment_dispatch.shipment_polling import PollSettings, ShipmentPoller
from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.dispatches import NewDispatch, enqueue
from libs.connectors.base.contract import ClientResources
from libs.connectors.registry import Registry
from libs.connectors.shipstation import codes
from libs.connectors.shipstation.connector import CONNECTOR
from libs.connectors.shipstation.tests.builders import account, valid_order
from libs.platform.accounts import AccountClients
from libs.platform.tenants import Account, Tenant, TenantDirectory
from tests.simulators.common import SimulatorServer
from tests.simulators.shipstation import STATE_KEY, ShipStationConfig, create_app
from tests.simulators.shipstation.app import ShipStationAccount

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(90)]

TENANT, LABELS = "cellar", "labels"
SIM_ACCOUNT = f"{TENANT}.{LABELS}"


@pytest_asyncio.fixture
async def sim():
    # A window wider than these tests send: the budget's own behaviour is tested on its own.
    config = ShipStationConfig(
        accounts=[ShipStationAccount(SIM_ACCOUNT, "ss-key", "ss-secret")],
        rate_limit_per_minute=100_000,
    )
    server = await SimulatorServer(create_app(config)).start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def world(sim):
    mapping = codes.validate_status_mapping({"awaiting_shipment": "Ready To Ship"})
    settings = account(status_mapping=tuple(mapping.items()))
    api = dataclasses.replace(settings.api, base_url=sim.base_url, requests_per_minute=60_000)
    settings = dataclasses.replace(settings, api=api)
    registry = Registry([CONNECTOR])
    tenants = TenantDirectory({TENANT: Tenant(TENANT, {LABELS: Account(LABELS, "shipstation", settings)}, ())})
    accounts = AccountClients(tenants, registry, ClientResources(max_concurrency=4))
    yield tenants, accounts
    await accounts.stop()


async def queue(pool, numbers, *, status: str = "Ready To Ship") -> None:
    rows = []
    for n in numbers:
        order = valid_order(n)
        order.tenant_id, order.order_id, order.channel_status = TENANT, f"ord-{n}", status
        rows.append(
            NewDispatch(
                order_id=order.order_id,
                tenant_id=TENANT,
                provider="shipstation",
                provider_order_number=n,
                order_proto=order.SerializeToString(),
                channel="cin7",
                external_id=f"cin7-{n}",
                external_number=n,
                traceparent="",
                provider_account=LABELS,
                route="",
                channel_account="omni",
            )
        )
    async with pool.acquire() as conn:
        await enqueue(conn, rows)


def sender(pool, accounts, *, linger_s: float = 0.0) -> Sender:
    return Sender(
        pool,
        accounts,
        None,  # type: ignore[arg-type]  # ShipStation needs no service codes: carrier mapping is never asked
        topic="dispatch.orders.v1",
        producer="test",
        lease_s=30,
        batch=200,
        max_attempts=5,
        concurrency=8,
        first_check_after=timedelta(minutes=15),
        linger_s=linger_s,
    )


def recorder(pool, accounts) -> ShipmentRecorder:
    return ShipmentRecorder(
        pool, accounts.registry, topic="dispatch.shipments.v1", producer="test", check_after=timedelta(minutes=15)
    )


def poller(pool, world, owner: str = "replica-a") -> ShipmentPoller:
    tenants, accounts = world
    settings = PollSettings(interval_s=0.0, lease_s=30)
    return ShipmentPoller(pool, tenants, accounts, recorder(pool, accounts), owner=owner, settings=settings)


async def drain(send: Sender) -> None:
    while await send.run_once():
        pass


async def rows(pool) -> dict[str, tuple]:
    found = await pool.fetch("SELECT external_number, status, reason_code, reason, shipment_proto FROM dispatches")
    return {r["external_number"]: (r["status"], r["reason_code"], r["reason"], r["shipment_proto"]) for r in found}


def shipment_of(proto: bytes) -> shipment_pb2.Shipment:
    shipment = shipment_pb2.Shipment()
    shipment.ParseFromString(proto)
    return shipment


async def control(sim, path: str, body: dict) -> dict:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(f"{sim.base_url}/_sim/accounts/{SIM_ACCOUNT}/{path}", json=body)
        response.raise_for_status()
        return response.json()


async def test_250_orders_go_in_three_calls_and_a_refused_one_fails_alone_with_shipstations_words(pool, sim, world):
    numbers = [str(5000 + i) for i in range(250)]
    await queue(pool, numbers)
    await control(sim, "rejections", {"order_number": "5007", "message": "The shipTo.postalCode is invalid."})
    await drain(sender(pool, world[1]))

    state = sim.app[STATE_KEY]
    assert state.stats.requests["createorders"] == 3
    found = await rows(pool)
    assert found["5007"][:3] == (
        "failed",
        "SHIPSTATION_ORDER_REJECTED",
        "ShipStation refused order 5007: The shipTo.postalCode is invalid.",
    )
    assert {n for n, r in found.items() if r[0] == "sent"} == set(numbers) - {"5007"}
    assert len(state.orders_of(SIM_ACCOUNT)) == 249


async def test_a_burst_still_arriving_lingers_so_it_goes_in_full_batches(pool, sim, world):
    await queue(pool, [str(5500 + i) for i in range(150)])
    send = sender(pool, world[1], linger_s=60)
    assert await send.run_once() == 0  # fewer than a claim's worth, and the newest just came
    assert sim.app[STATE_KEY].stats.requests["createorders"] == 0
    await pool.execute("UPDATE dispatches SET next_attempt_at = now() - interval '2 minutes'")  # settled
    await drain(send)
    assert sim.app[STATE_KEY].stats.requests["createorders"] == 2  # 100 + 50


async def test_an_unmapped_channel_status_fails_that_order_naming_the_setting_to_add(pool, sim, world):
    await queue(pool, ["6001"])
    await queue(pool, ["6002"], status="Backordered")
    await drain(sender(pool, world[1]))

    found = await rows(pool)
    assert found["6001"][0] == "sent"
    status, code, reason, _ = found["6002"]
    assert (status, code) == ("failed", "UNMAPPED_STATUS")
    assert "'Backordered'" in reason and "status_<shipstation status> = 'Backordered'" in reason
    assert [o["orderNumber"] for o in sim.app[STATE_KEY].orders_of(SIM_ACCOUNT).values()] == ["6001"]


async def test_a_lost_ship_notify_is_recovered_by_polling_and_polling_again_changes_nothing(pool, sim, world):
    await queue(pool, ["7001", "7002"])
    await drain(sender(pool, world[1]))
    await control(sim, "webhooks/drop", {"count": 5})
    await control(sim, "shipments/batch", {"order_numbers": ["7001", "7002"]})

    assert await poller(pool, world).run_once() == 2
    found = await rows(pool)
    for number in ("7001", "7002"):
        shipment = shipment_of(found[number][3])
        assert shipment.status == shipment_pb2.SHIPMENT_STATUS_SHIPPED and len(shipment.tracking_numbers) == 1
    events = await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'dispatch.shipments.v1'")
    assert events == 2
    cursor = await pool.fetchval("SELECT cursor FROM shipment_poll_cursors")
    assert cursor  # the watermark moved

    assert await poller(pool, world).run_once() == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'dispatch.shipments.v1'") == events


async def test_a_voided_label_is_carried_as_voided_and_its_replacement_as_tracking(pool, sim, world):
    await queue(pool, ["8001"])
    await drain(sender(pool, world[1]))
    first = await control(sim, "orders/8001/ship", {"tracking_number": "1Z-FIRST"})
    await poller(pool, world).run_once()
    await control(sim, f"shipments/{first['shipment']['shipmentId']}/void", {})
    await control(sim, "orders/8001/ship", {"tracking_number": "1Z-SECOND"})

    await poller(pool, world).run_once()
    shipment = shipment_of((await rows(pool))["8001"][3])
    assert list(shipment.tracking_numbers) == ["1Z-SECOND"]
    assert list(shipment.voided_tracking_numbers) == ["1Z-FIRST"]


async def test_an_account_is_polled_by_one_replica_at_a_time(pool, sim, world):
    await queue(pool, ["9001"])
    await drain(sender(pool, world[1]))
    tenants, accounts = world
    first, second = poller(pool, world, "replica-a"), poller(pool, world, "replica-b")
    await first.run_once()  # makes the row, polls, releases it due at once (interval 0)
    await pool.execute("UPDATE shipment_poll_cursors SET lease_owner = 'replica-a', lease_until = now() + '1 min'")
    before = sim.app[STATE_KEY].stats.requests["list_shipments"]
    await second.run_once()
    assert sim.app[STATE_KEY].stats.requests["list_shipments"] == before, "a leased account is left alone"


async def test_every_label_voided_takes_the_tracking_back_until_the_next_label(pool, sim, world):
    await queue(pool, ["8101"])
    await drain(sender(pool, world[1]))
    first = await control(sim, "orders/8101/ship", {"tracking_number": "1Z-ONLY"})
    await poller(pool, world).run_once()
    await control(sim, f"shipments/{first['shipment']['shipmentId']}/void", {})

    await poller(pool, world).run_once()
    voided = shipment_of((await rows(pool))["8101"][3])
    assert voided.status == shipment_pb2.SHIPMENT_STATUS_FULFILLED  # no live label: nothing to show
    assert (list(voided.tracking_numbers), list(voided.voided_tracking_numbers)) == ([], ["1Z-ONLY"])
    assert await pool.fetchval("SELECT shipment_status FROM dispatches") == "fulfilled"
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'dispatch.shipments.v1'") == 2

    await control(sim, "orders/8101/ship", {"tracking_number": "1Z-NEXT"})
    await poller(pool, world).run_once()
    shipped = shipment_of((await rows(pool))["8101"][3])
    assert shipped.status == shipment_pb2.SHIPMENT_STATUS_SHIPPED
    assert (list(shipped.tracking_numbers), list(shipped.voided_tracking_numbers)) == (["1Z-NEXT"], ["1Z-ONLY"])
