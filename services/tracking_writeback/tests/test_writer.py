"""The writer on real Postgres and a real carrier-mapping service, writing through the registry.

The channel is a recording connector (the contract lets tests register their own): what the
writer hands it (account, steps, carrier) and what the writer records afterwards are what these
tests check; the Commerce7 connector's own requests are its own tests' and the e2e suite's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.dispatch.v1 import events_pb2
from ordersync.tracking.v1 import events_pb2 as tracking_events

from carrier_mapping.testing import ACME_READER, ADMIN, CALLERS, running_service
from libs.clients.carrier_mapping import CarrierMappingClient
from libs.connectors.base.contract import (
    Capability,
    ChannelConnector,
    ChannelUpdate,
    ConnectorInfo,
    Role,
    WritebackStep,
)
from libs.connectors.base.errors import InvalidRequest, Unavailable
from libs.connectors.registry import Registry
from libs.platform.db import create_pool, migrate
from libs.platform.events import parse_envelope, unpack
from libs.platform.tenants import Account, Tenant, TenantDirectory
from libs.platform.testing import consumed
from tracking_writeback.app import MIGRATIONS
from tracking_writeback.channels import channel_accounts
from tracking_writeback.consumers.shipments import ShipmentUpdatedConsumer
from tracking_writeback.writer import WRITEBACKS_TOPIC, Writer

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass(frozen=True)
class StoreSettings:
    store: str


class RecordingClient:
    """The fake's client: nothing to open, but opened and closed as every client is."""

    async def __aenter__(self) -> RecordingClient:
        return self

    async def __aexit__(self, *exc) -> None:
        return None


class RecordingChannel(ChannelConnector):
    """A channel connector that records each write (the account's settings and the update).

    Registered as "commerce7" so carrier mapping's seeded codes translate the provider's
    service codes into this channel's carrier spelling, as they do for the real one.
    """

    def __init__(self, connector_id: str = "commerce7", *, writes_back: bool = True):
        capabilities = {Capability.PUSH_ORDERS} | ({Capability.WRITE_BACK} if writes_back else set())
        self.info = ConnectorInfo(
            connector_id, connector_id.title(), frozenset({Role.CHANNEL}), frozenset(capabilities)
        )
        self.writes: list[tuple[StoreSettings, ChannelUpdate]] = []
        self.fail_with: Exception | None = None
        self.while_writing: Callable[[], Awaitable[None]] | None = None  # runs inside the write

    def parse_settings(self, section, resolve, where):
        return StoreSettings(section["store"])

    def open_client(self, settings, resources):
        return RecordingClient()

    async def write_back(self, client, settings, update: ChannelUpdate) -> bool:
        if self.fail_with is not None:
            raise self.fail_with
        if self.while_writing is not None:
            await self.while_writing()
        self.writes.append((settings, update))
        return WritebackStep.SHIP in update.steps


CHANNEL = "commerce7"
TILL = "till"  # a channel that takes no writebacks


def accounts(*names: tuple[str, str]) -> dict[str, Account]:
    return {name: Account(name, connector, StoreSettings(name)) for name, connector in names}


TENANTS = {
    # two stores of one channel: the order's account decides which is written
    "acme": Tenant("acme", accounts(("napa-store", CHANNEL), ("sonoma-store", CHANNEL), ("tasting-room", TILL))),
    # one store: rows from before accounts had names resolve to it
    "solo": Tenant("solo", accounts(("store", CHANNEL))),
}


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


@pytest_asyncio.fixture
async def carriers(mapping):
    client = CarrierMappingClient(mapping.address, token=ADMIN)
    async with client:
        yield client


@pytest_asyncio.fixture
async def world(pool, carriers):
    """(writer, channel, till, consume): the writer over a registry of the two fake channels."""
    channel, till = RecordingChannel(), RecordingChannel(TILL, writes_back=False)
    clients = channel_accounts(TenantDirectory(TENANTS), Registry([channel, till]), lambda: pool)
    writer = Writer(pool, clients, carriers, topic=WRITEBACKS_TOPIC, producer="t", lease_s=30, batch=10, max_attempts=3)
    consumer = ShipmentUpdatedConsumer(pool, group="writeback", on_wanted=lambda: None)

    async def consume(*updates: tuple[str, events_pb2.ShipmentUpdated]) -> None:
        await consumer.handle(
            [
                consumed("dispatch.shipments.v1", update, aggregate_id=update.order_id, tenant_id=tenant, offset=n)
                for n, (tenant, update) in enumerate(updates)
            ]
        )

    try:
        yield writer, channel, till, consume
    finally:
        await clients.stop()


def shipment_updated(
    order_id: str,
    account: str,
    status: shipment_pb2.ShipmentStatus = shipment_pb2.SHIPMENT_STATUS_SHIPPED,
    *,
    channel: str = CHANNEL,
    service_code: str = "03",
    tracking: tuple[str, ...] = ("1Z1",),
    voided: tuple[str, ...] = (),
) -> events_pb2.ShipmentUpdated:
    return events_pb2.ShipmentUpdated(
        order_id=order_id,
        channel_ref=order_pb2.ChannelOrderRef(
            channel=channel, external_id=f"ext-{order_id}", external_number="1001", account=account
        ),
        provider="vinoshipper",
        shipment=shipment_pb2.Shipment(
            status=status, tracking_numbers=tracking, service_code=service_code, voided_tracking_numbers=voided
        ),
    )


async def writeback(pool, order_id: str):
    return await pool.fetchrow(
        "SELECT status, reason, written_status, customer_notified, attempts FROM writebacks WHERE order_id = $1",
        order_id,
    )


async def test_a_shipment_is_written_through_the_orders_channel_account_with_the_channels_carrier(pool, world):
    writer, channel, _, consume = world
    await consume(("acme", shipment_updated("o1", "sonoma-store")))
    assert await writer.run_once() == 1

    [(settings, update)] = channel.writes
    assert settings == StoreSettings("sonoma-store")
    assert (update.external_id, update.external_number, list(update.steps)) == ("ext-o1", "1001", [WritebackStep.SHIP])
    assert (list(update.shipment.tracking_numbers), update.carrier) == (["1Z1"], "UPS")

    row = await writeback(pool, "o1")
    assert (row["status"], row["written_status"], row["customer_notified"]) == ("written", "shipped", True)
    activity = await pool.fetchval("SELECT message FROM writeback_activity WHERE kind = 'written'")
    assert activity == "channel updated to shipped; customer e-mailed"
    [value] = await pool.fetch("SELECT value FROM outbox")
    event = unpack(parse_envelope(value["value"]), tracking_events.ChannelUpdated)
    assert (event.channel_ref.account, event.status) == ("sonoma-store", shipment_pb2.SHIPMENT_STATUS_SHIPPED)


async def test_a_delivery_reported_before_the_shipment_hands_the_channel_both_steps_at_once(world):
    writer, channel, _, consume = world
    await consume(("acme", shipment_updated("o1", "napa-store", shipment_pb2.SHIPMENT_STATUS_DELIVERED)))
    await writer.run_once()
    [(settings, update)] = channel.writes
    assert settings == StoreSettings("napa-store")
    assert list(update.steps) == [WritebackStep.SHIP, WritebackStep.DELIVER]


async def test_a_row_from_before_accounts_had_names_goes_to_the_tenants_only_account_of_its_channel(pool, world):
    writer, channel, _, consume = world
    await consume(("solo", shipment_updated("o1", "")), ("acme", shipment_updated("o2", "")))
    await writer.run_once()

    assert [settings for settings, _ in channel.writes] == [StoreSettings("store")]
    ambiguous = await writeback(pool, "o2")
    assert ambiguous["status"] == "failed"
    assert "has 2 commerce7 accounts" in ambiguous["reason"]


async def test_a_channel_that_takes_no_writebacks_fails_the_writeback_saying_so(pool, world):
    writer, channel, till, consume = world
    await consume(("acme", shipment_updated("o1", "tasting-room", channel=TILL, service_code="")))
    await writer.run_once()

    row = await writeback(pool, "o1")
    assert (row["status"], row["written_status"], row["attempts"]) == ("failed", "", 1)
    assert "Till (channel account 'tasting-room') takes no writebacks" in row["reason"]
    assert channel.writes == [] and till.writes == []
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_channel_that_is_down_is_retried_later(pool, world):
    writer, channel, _, consume = world
    channel.fail_with = Unavailable("store answered 503", status_code=503)
    await consume(("acme", shipment_updated("o1", "napa-store")))
    await writer.run_once()

    row = await writeback(pool, "o1")
    assert (row["status"], row["reason"]) == ("retry_wait", "store answered 503")
    activity = await pool.fetchval("SELECT message FROM writeback_activity WHERE kind = 'retry_wait'")
    assert activity == "attempt 1 to write shipped failed: store answered 503"


async def test_a_translation_carrier_mapping_refuses_is_kept_as_the_tenants_reason_and_retried(pool, mapping):
    channel = RecordingChannel()
    clients = channel_accounts(TenantDirectory(TENANTS), Registry([channel, RecordingChannel(TILL)]), lambda: pool)
    consumer = ShipmentUpdatedConsumer(pool, group="writeback", on_wanted=lambda: None)
    updates = [("acme", shipment_updated("o1", "napa-store")), ("solo", shipment_updated("o2", "store"))]
    await consumer.handle(
        [
            consumed("dispatch.shipments.v1", u, aggregate_id=u.order_id, tenant_id=t, offset=n)
            for n, (t, u) in enumerate(updates)
        ]
    )
    # A token granted tenant acme only: the other tenant's translation is refused.
    async with CarrierMappingClient(mapping.address, token=ACME_READER) as carriers:
        writer = Writer(
            pool, clients, carriers, topic=WRITEBACKS_TOPIC, producer="t", lease_s=30, batch=10, max_attempts=3
        )
        assert await writer.run_once() == 2
    await clients.stop()

    assert (await writeback(pool, "o1"))["status"] == "written"
    refused = await writeback(pool, "o2")
    assert refused["status"] == "retry_wait"
    assert "carrier mapping answered PERMISSION_DENIED" in refused["reason"]


# ---- voided labels: what was written is taken back, a voided number is never written


def every_label_voided(order_id: str, account: str) -> events_pb2.ShipmentUpdated:
    """The provider's report once 1Z1's label is voided and no live label is left."""
    return shipment_updated(order_id, account, shipment_pb2.SHIPMENT_STATUS_FULFILLED, tracking=(), voided=("1Z1",))


async def written_tracking(pool, order_id: str) -> list[str]:
    return json.loads(await pool.fetchval("SELECT written_tracking FROM writebacks WHERE order_id = $1", order_id))


async def test_a_written_label_the_provider_voids_is_taken_back_and_announced(pool, world):
    writer, channel, _, consume = world
    await consume(("acme", shipment_updated("o1", "napa-store")))
    await writer.run_once()
    assert await written_tracking(pool, "o1") == ["1Z1"]

    await consume(("acme", every_label_voided("o1", "napa-store")))
    assert await writer.run_once() == 1
    _, retraction = channel.writes[-1]
    assert list(retraction.steps) == [WritebackStep.RETRACT]
    assert (list(retraction.shipment.tracking_numbers), list(retraction.shipment.voided_tracking_numbers)) == (
        [],
        ["1Z1"],
    )
    row = await writeback(pool, "o1")
    assert (row["status"], row["written_status"]) == ("written", "")
    assert await written_tracking(pool, "o1") == []
    events = [
        unpack(parse_envelope(v["value"]), tracking_events.ChannelUpdated)
        for v in await pool.fetch("SELECT value FROM outbox ORDER BY id")
    ]
    assert (events[-1].status, list(events[-1].tracking_numbers)) == (shipment_pb2.SHIPMENT_STATUS_UNSPECIFIED, [])
    assert list(events[-1].retracted_tracking_numbers) == ["1Z1"]

    await consume(("acme", every_label_voided("o1", "napa-store")))  # told again: nothing new
    assert await writer.run_once() == 0


async def test_a_new_label_after_a_voided_one_is_written_without_the_voided_number(pool, world):
    writer, channel, _, consume = world
    await consume(("acme", shipment_updated("o1", "napa-store")))
    await writer.run_once()
    await consume(("acme", shipment_updated("o1", "napa-store", tracking=("1Z1", "1Z9"), voided=("1Z1",))))
    await writer.run_once()
    _, relabel = channel.writes[-1]
    assert list(relabel.steps) == [WritebackStep.RETRACT, WritebackStep.SHIP]
    assert list(relabel.shipment.tracking_numbers) == ["1Z9"]
    assert await written_tracking(pool, "o1") == ["1Z9"]


async def test_a_label_voided_before_anything_was_written_is_never_written(pool, world):
    writer, channel, _, consume = world
    await consume(("acme", shipment_updated("o1", "napa-store", voided=("1Z1",))))
    await writer.run_once()
    # A later report still naming the voided number (out of order, or stale) writes nothing either.
    await consume(("acme", shipment_updated("o1", "napa-store", shipment_pb2.SHIPMENT_STATUS_DELIVERED)))
    await writer.run_once()
    assert channel.writes == []
    assert await written_tracking(pool, "o1") == []


async def test_a_label_voided_while_its_shipment_is_being_written_is_retracted_next(pool, world):
    writer, channel, _, consume = world
    await consume(("acme", shipment_updated("o1", "napa-store")))

    async def void_meanwhile() -> None:
        channel.while_writing = None
        await consume(("acme", every_label_voided("o1", "napa-store")))

    channel.while_writing = void_meanwhile
    await writer.run_once()
    row = await writeback(pool, "o1")
    assert (row["status"], row["written_status"]) == ("pending", "shipped")
    await writer.run_once()
    assert [list(u.steps) for _, u in channel.writes] == [[WritebackStep.SHIP], [WritebackStep.RETRACT]]


async def test_a_retraction_the_channel_cannot_make_fails_with_its_reason(pool, world):
    writer, channel, _, consume = world
    await consume(("acme", shipment_updated("o1", "napa-store")))
    await writer.run_once()
    channel.fail_with = InvalidRequest("this channel cannot take tracking back")
    await consume(("acme", every_label_voided("o1", "napa-store")))
    await writer.run_once()
    row = await writeback(pool, "o1")
    assert (row["status"], row["reason"], row["written_status"]) == (
        "failed",
        "this channel cannot take tracking back",
        "shipped",
    )
    assert await written_tracking(pool, "o1") == ["1Z1"]
    activity = await pool.fetchval("SELECT message FROM writeback_activity WHERE kind = 'failed'")
    assert activity == "attempt 2 to write a retraction failed: this channel cannot take tracking back"
