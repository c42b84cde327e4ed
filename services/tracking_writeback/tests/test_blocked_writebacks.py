"""Blocked writebacks on real Postgres and a real carrier-mapping service: a channel that takes only
carrier codes of its own (`needs_carrier_code`, as Groupon's approved couriers) is never sent a
shipment whose courier maps to none; the row is blocked with the courier and the fix, keeps its
attempts, and is written once the tenant's mapping exists.

The channel is a recording connector registered as "groupon" (carrier mapping's seeded catalog of
approved codes); the provider is "mintsoft", whose courier services are tenant mappings only.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.dispatch.v1 import events_pb2
from ordersync.tracking.v1 import tracking_service_pb2 as pb
from ordersync.tracking.v1 import tracking_service_pb2_grpc as pb_grpc

from carrier_mapping import cli as carrier_cli
from carrier_mapping.testing import ADMIN, CALLERS, running_service
from libs.clients.carrier_mapping import CarrierMappingClient
from libs.connectors.base.contract import Capability, ChannelConnector, ChannelUpdate, ConnectorInfo, Role
from libs.connectors.registry import Registry
from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import bind
from libs.platform.tenants import Account, Tenant, TenantDirectory
from libs.platform.testing import ACME_READER, access_for_tests, authorized, consumed, serving
from tracking_writeback.api.grpc import TrackingWritebackServicer
from tracking_writeback.app import MIGRATIONS
from tracking_writeback.channels import channel_accounts
from tracking_writeback.consumers.shipments import ShipmentUpdatedConsumer
from tracking_writeback.writer import WRITEBACKS_TOPIC, Writer

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

UNMAPPED = "DPD-NEXT-DAY"  # a Mintsoft courier service nobody mapped yet
FIX = "python -m carrier_mapping.cli add acme mintsoft DPD-NEXT-DAY NAME CARRIER CANONICAL_CARRIER [CANONICAL_SERVICE]"


@dataclass(frozen=True)
class Store:
    name: str


class ApprovedCodesChannel(ChannelConnector):
    """Records each write; takes shipments only with a carrier code of its own list."""

    def __init__(self, *, needs_carrier_code: bool = True):
        self.info = ConnectorInfo(
            "groupon",
            "Groupon",
            frozenset({Role.CHANNEL}),
            frozenset({Capability.PULL_ORDERS, Capability.WRITE_BACK}),
            needs_carrier_code=needs_carrier_code,
        )
        self.writes: list[ChannelUpdate] = []

    def parse_settings(self, section, resolve, where):
        return Store(section["name"])

    def open_client(self, settings, resources):
        return _Client()

    async def write_back(self, client, settings, update: ChannelUpdate) -> bool:
        self.writes.append(update)
        return False


class _Client:
    async def __aenter__(self) -> _Client:
        return self

    async def __aexit__(self, *exc) -> None:
        return None


TENANTS = {"acme": Tenant("acme", {"deals": Account("deals", "groupon", Store("deals"))})}


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "tracking_writeback", MIGRATIONS)
    pool = await create_pool(database, "tracking_writeback", 4)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def mapping(infra):
    async with running_service(infra.pg_dsn, CALLERS) as service:
        yield service


def shipped(order_id: str, service_code: str = UNMAPPED, carrier: str = "") -> events_pb2.ShipmentUpdated:
    return events_pb2.ShipmentUpdated(
        order_id=order_id,
        channel_ref=order_pb2.ChannelOrderRef(
            channel="groupon", external_id=f"ext-{order_id}", external_number="G-1", account="deals"
        ),
        provider="mintsoft",
        shipment=shipment_pb2.Shipment(
            status=shipment_pb2.SHIPMENT_STATUS_SHIPPED,
            tracking_numbers=["15501234"],
            service_code=service_code,
            carrier=carrier,
        ),
    )


async def consume(pool, *updates: events_pb2.ShipmentUpdated) -> None:
    consumer = ShipmentUpdatedConsumer(pool, group="writeback", on_wanted=lambda: None)
    await consumer.handle(
        [
            consumed("dispatch.shipments.v1", u, aggregate_id=u.order_id, tenant_id="acme", offset=n)
            for n, u in enumerate(updates)
        ]
    )


def writer_of(pool, channel: ApprovedCodesChannel, carriers: CarrierMappingClient, *, recheck_s: float = 3600):
    clients = channel_accounts(TenantDirectory(TENANTS), Registry([channel]), lambda: pool)
    writer = Writer(
        pool,
        clients,
        carriers,
        topic=WRITEBACKS_TOPIC,
        producer="t",
        lease_s=30,
        batch=10,
        max_attempts=3,
        blocked_recheck_s=recheck_s,
    )
    return writer, clients


async def row(pool, order_id: str = "o1"):
    return await pool.fetchrow(
        "SELECT status, reason, attempts, written_status, next_attempt_at > now() + interval '30 minutes' AS later"
        " FROM writebacks WHERE order_id = $1",
        order_id,
    )


async def add_mapping(mapping) -> None:
    """The operator's fix, as the reason spells it: the tenant's Mintsoft courier service mapped to a
    canonical carrier Groupon has an approved code for (DPD UK: DPDUK)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["--addr", mapping.address, "--token-env", "TEST_MAPPING_TOKEN"]
    argv += ["add", "acme", "mintsoft", UNMAPPED, "DPD Next Day", "DPD", "DPD_UK"]
    assert await carrier_cli.run(argv, out, err) == 0, err.getvalue()


async def test_an_unmapped_courier_blocks_the_write_with_the_fix_and_keeps_its_attempts(pool, mapping):
    channel = ApprovedCodesChannel()
    async with CarrierMappingClient(mapping.address, token=ADMIN) as carriers:
        writer, clients = writer_of(pool, channel, carriers, recheck_s=3600)
        await consume(pool, shipped("o1"))
        assert await writer.run_once() == 1

        blocked = await row(pool)
        assert blocked["status"] == "blocked"
        assert blocked["reason"].startswith("courier DPD-NEXT-DAY has no Groupon code; fix: " + FIX)
        assert "python -m carrier_mapping.cli catalog groupon" in blocked["reason"]
        assert (blocked["attempts"], blocked["written_status"], blocked["later"]) == (0, "", True)
        assert channel.writes == []
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0

        # Re-checked (here forced due) while still unmapped: still blocked, attempts untouched,
        # and the activity log says so once.
        for _ in range(3):
            await pool.execute("UPDATE writebacks SET next_attempt_at = now()")
            assert await writer.run_once() == 1
        again = await row(pool)
        assert (again["status"], again["reason"], again["attempts"]) == ("blocked", blocked["reason"], 0)
        kinds = [r["kind"] for r in await pool.fetch("SELECT kind FROM writeback_activity ORDER BY id")]
        assert kinds == ["wanted", "blocked"]
        assert channel.writes == []
        await clients.stop()


async def test_a_blocked_write_is_written_as_soon_as_the_mapping_is_added(pool, mapping, monkeypatch):
    monkeypatch.setenv("TEST_MAPPING_TOKEN", ADMIN)
    channel = ApprovedCodesChannel()
    async with CarrierMappingClient(mapping.address, token=ADMIN) as carriers:
        await asyncio.wait_for(carriers.synced.wait(), 10)
        writer, clients = writer_of(pool, channel, carriers, recheck_s=3600)  # the schedule is far off
        carriers.on_change(writer.mappings_changed)  # as the service wires it (with a wake-up)
        acme_changed = asyncio.Event()
        carriers.on_change(lambda tenant_id: acme_changed.set() if tenant_id == "acme" else None)
        await consume(pool, shipped("o1"))
        await writer.run_once()
        assert (await row(pool))["status"] == "blocked"

        await add_mapping(mapping)
        await asyncio.wait_for(acme_changed.wait(), 10)  # carrier mapping's change stream told the writer
        assert await writer.run_once() == 1

        written = await row(pool)
        assert (written["status"], written["reason"], written["written_status"]) == ("written", "", "shipped")
        assert written["attempts"] == 1  # the write's own attempt; the blocked checks took none
        [update] = channel.writes
        # Groupon's approved code for DPD UK, as the channel takes it
        assert (update.carrier, list(update.shipment.tracking_numbers)) == ("DPDUK", ["15501234"])
        await clients.stop()


async def test_a_shipment_without_a_courier_service_code_is_blocked_naming_its_courier(pool, mapping):
    channel = ApprovedCodesChannel()
    async with CarrierMappingClient(mapping.address, token=ADMIN) as carriers:
        writer, clients = writer_of(pool, channel, carriers)
        await consume(pool, shipped("o1", service_code="", carrier="Hermes"))
        await writer.run_once()
        blocked = await row(pool)
        assert blocked["status"] == "blocked"
        assert blocked["reason"].startswith(
            "courier Hermes has no Groupon code: mintsoft reported the shipment without its courier service code"
        )
        assert channel.writes == []
        await clients.stop()


async def test_carrier_mapping_unreachable_is_a_retry_not_a_block(pool):
    channel = ApprovedCodesChannel()
    # Nothing listens there: every translation is UNAVAILABLE.
    async with CarrierMappingClient("127.0.0.1:9", token=ADMIN, timeout_s=0.2, attempts=1, watch=False) as carriers:
        writer, clients = writer_of(pool, channel, carriers)
        await consume(pool, shipped("o1"))
        await writer.run_once()
        retried = await row(pool)
        assert (retried["status"], retried["attempts"]) == ("retry_wait", 1)
        assert "carrier mapping at 127.0.0.1:9 unavailable" in retried["reason"]
        assert channel.writes == []
        await clients.stop()


async def test_a_channel_taking_any_carrier_spelling_is_written_without_a_mapping(pool, mapping):
    channel = ApprovedCodesChannel(needs_carrier_code=False)
    async with CarrierMappingClient(mapping.address, token=ADMIN) as carriers:
        writer, clients = writer_of(pool, channel, carriers)
        await consume(pool, shipped("o1"))
        await writer.run_once()
        assert (await row(pool))["status"] == "written"
        [update] = channel.writes
        assert update.carrier is None  # the connector spells the canonical carrier itself
        await clients.stop()


async def test_a_blocked_writeback_is_shown_as_blocked_with_its_reason_over_grpc(pool, mapping):
    async with CarrierMappingClient(mapping.address, token=ADMIN) as carriers:
        writer, clients = writer_of(pool, ApprovedCodesChannel(), carriers)
        await consume(pool, shipped("o1"))
        await writer.run_once()
        await clients.stop()
    binding = bind(pb, pb_grpc, "TrackingWritebackService", TrackingWritebackServicer(pool, access_for_tests()))
    async with serving(binding) as grpc_channel:
        stub = authorized(pb_grpc.TrackingWritebackServiceStub(grpc_channel), ACME_READER)
        record = (await stub.GetWriteback(pb.GetWritebackRequest(tenant_id="acme", order_id="o1"))).record
    assert record.status == pb.WRITEBACK_STATUS_BLOCKED
    assert record.reason.startswith("courier DPD-NEXT-DAY has no Groupon code")
    assert (record.shipment_status, record.attempts) == (shipment_pb2.SHIPMENT_STATUS_SHIPPED, 0)


async def test_the_orders_lines_reach_the_channel_with_the_update_and_survive_a_report_without_them(pool, mapping):
    """A channel writing tracking per line is handed the order's lines from dispatch's event; a
    later report carrying none (an older dispatch) keeps the lines stored before."""
    channel = ApprovedCodesChannel(needs_carrier_code=False)
    lines = [
        order_pb2.OrderLine(channel_line_id="54553920", sku="TEE", quantity=2),
        order_pb2.OrderLine(channel_line_id="54553921", sku="MUG", quantity=1),
    ]
    first = shipped("o1", service_code="")
    first.order_lines.extend(lines)
    delivered = shipped("o1", service_code="")
    delivered.shipment.status = shipment_pb2.SHIPMENT_STATUS_DELIVERED
    async with CarrierMappingClient(mapping.address, token=ADMIN) as carriers:
        writer, clients = writer_of(pool, channel, carriers)
        await consume(pool, first, delivered)  # the second carries no lines
        assert await writer.run_once() == 1
        assert (await row(pool))["written_status"] == "delivered"

        [update] = channel.writes
        assert [(line.channel_line_id, line.quantity) for line in update.order_lines] == [
            ("54553920", 2),
            ("54553921", 1),
        ]
        await clients.stop()
