"""Acknowledging on handover, on real Postgres and Kafka: a pulled channel is told of an order only
once dispatch reported the provider accepted it (OrderDispatched on dispatch.orders.v1).

The channel is tests/pull_channel.py's vendor, with a connector whose account chooses its
AckMoment and which, like CommerceInterface, lists every order not acknowledged yet at each poll
(the vendor drops an order once acknowledged, as mark_exported does). The scheduler polls it;
intake's OrderDispatchedConsumer reads dispatch's events from a real topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from ordersync.common.v1 import order_pb2
from ordersync.dispatch.v1 import events_pb2

from libs.connectors.base.contract import AckMoment, OrderPage, SecretResolver
from libs.connectors.base.settings import SectionReader
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.db import create_pool, migrate
from libs.platform.events import new_event
from libs.platform.kafka import BatchConsumer, create_producer
from libs.platform.tenants import TenantDirectory
from order_intake.app import MIGRATIONS
from order_intake.consumers.handovers import DISPATCH_TOPIC, OrderDispatchedConsumer
from order_intake.domain.intake import InputLimits, order_id_for
from order_intake.pulling import PullScheduler
from order_intake.revisions import ORDERS_TOPIC, RevisionBuilder
from order_intake.storage import pulls
from order_intake.storage.orders import RevisionWriter
from services.order_intake.tests.pull_channel import CONNECTOR_ID, PullAccount, PullClient, PullConnector, Vendor
from services.order_intake.tests.test_pull_intake import ACCOUNT, SETTINGS, TENANT, eventually, recorded, setup

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(90)]

GROUP = "order-intake"


@dataclass(frozen=True)
class HandoverAccount(PullAccount):
    acknowledge: str = "on_commit"  # on_commit | on_handover | never


class RelistingConnector(PullConnector):
    """Lists, at every poll, every order the vendor still has (from the start, whatever the
    cursor), as CommerceInterface lists the orders not marked exported; acknowledged when the
    account says."""

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> HandoverAccount:
        read = SectionReader(section, resolve, where)
        account = HandoverAccount(read.text("base_url"), read.text("acknowledge"))
        read.finish()
        return account

    def acknowledge_when(self, settings: HandoverAccount) -> AckMoment:
        return AckMoment(settings.acknowledge)

    async def fetch_page(self, client: PullClient, settings: Any, cursor: str, tenant_id: str) -> OrderPage:
        page = await super().fetch_page(client, settings, "" if not cursor.startswith("+") else cursor[1:], tenant_id)
        # The cursor is kept only within one listing (its pages); a new poll lists from the start.
        return OrderPage(page.orders, "+" + page.next_cursor if page.more else "", page.more)


def tenants_file(folder: Path, vendor: Vendor, acknowledge: str) -> Path:
    path = folder / "tenants.toml"
    path.write_text(
        f'[tenants.{TENANT}.accounts.{ACCOUNT}]\nconnector = "{CONNECTOR_ID}"\nbase_url = "{vendor.url}"\n'
        f'acknowledge = "{acknowledge}"\npoll_interval_s = 0.2\n'
    )
    return path


def mark_exported(vendor: Vendor) -> None:
    """Acknowledged orders vanish from the vendor's listing, as mark_exported makes them."""

    async def drop(tokens: list[str]) -> None:
        vendor.records[:] = [r for r in vendor.records if f"ack-{r['id']}" not in tokens]

    vendor.on_ack = drop


@asynccontextmanager
async def poller(dsn: str, tenants: Path, name: str = "replica-a") -> AsyncIterator[RelistingConnector]:
    """One intake replica's pull side with the relisting connector."""
    connector = RelistingConnector(name)
    registry = Registry([connector])
    pool = await create_pool(dsn, "order_intake", 4)
    directory = TenantDirectory.load(tenants, registry)
    accounts = AccountClients(directory, registry)
    await accounts.start()
    builder = RevisionBuilder(ORDERS_TOPIC, "order-intake", InputLimits())
    scheduler = PullScheduler(pool, directory, accounts, RevisionWriter(pool), builder, owner=name, settings=SETTINGS)
    await scheduler.start()
    try:
        yield connector
    finally:
        await scheduler.stop()
        await accounts.stop()
        await pool.close()


@asynccontextmanager
async def dispatch_events(infra, dsn: str, topics: str) -> AsyncIterator[tuple[AIOKafkaProducer, BatchConsumer]]:
    """Intake's consumer of dispatch.orders.v1 on a real topic, and a producer playing dispatch."""
    pool = await create_pool(dsn, "order_intake", 2)
    handler = OrderDispatchedConsumer(pool, group=GROUP)
    consumer = BatchConsumer(
        bootstrap=infra.kafka_bootstrap,
        topics=[topics + DISPATCH_TOPIC],
        group_id=GROUP,
        handler=handler.handle,
        pool=pool,
    )
    producer = create_producer(infra.kafka_bootstrap, "dispatch-test")
    await producer.start()
    await consumer.start()
    try:
        yield producer, consumer
    finally:
        await consumer.stop()
        await producer.stop()
        await pool.close()


def order_id(external_id: str) -> str:
    return order_id_for(TENANT, CONNECTOR_ID, external_id)


async def publish(producer: AIOKafkaProducer, topics: str, *payloads) -> None:
    """Dispatch's events for these orders, as its outbox relay publishes them."""
    for payload in payloads:
        event = new_event(
            topics + DISPATCH_TOPIC, payload, aggregate_id=payload.order_id, tenant_id=TENANT, producer="dispatch"
        )
        await producer.send_and_wait(event.topic, event.value, key=event.key, headers=event.headers)


def dispatched(external_id: str) -> events_pb2.OrderDispatched:
    ref = order_pb2.ChannelOrderRef(channel=CONNECTOR_ID, external_id=external_id, account=ACCOUNT)
    return events_pb2.OrderDispatched(
        order_id=order_id(external_id), channel_ref=ref, provider="warehouse", provider_order_number="W-" + external_id
    )


def failed(external_id: str) -> events_pb2.OrderDispatchFailed:
    ref = order_pb2.ChannelOrderRef(channel=CONNECTOR_ID, external_id=external_id, account=ACCOUNT)
    return events_pb2.OrderDispatchFailed(
        order_id=order_id(external_id), channel_ref=ref, provider="warehouse", reason_code="UNKNOWN_SKU", reason="no"
    )


async def handover_rows(pool: asyncpg.Pool) -> dict[str, tuple[bool, bool]]:
    """external id -> (handed over, acknowledged)."""
    rows = await pool.fetch("SELECT order_id, handed_over_at, acknowledged_at FROM handover_acks")
    ids = {order_id(f"o-{n}"): f"o-{n}" for n in range(1, 10)}
    return {ids[r["order_id"]]: (r["handed_over_at"] is not None, r["acknowledged_at"] is not None) for r in rows}


async def polls_after(vendor: Vendor, count: int) -> None:
    """Wait until the vendor served `count` more fetches: polls that could have acknowledged."""
    start = len(vendor.fetches)
    await eventually(lambda: _true(len(vendor.fetches) >= start + count), f"{count} more polls")


async def _true(value: bool) -> bool:
    return value


async def account_counts(pool: asyncpg.Pool) -> tuple[int, int, int]:
    (row,) = await pulls.list_cursors(pool, TENANT)
    return row["unacknowledged_count"], row["awaiting_handover_count"], row["handed_over_unacknowledged_count"]


async def test_an_order_is_acknowledged_only_after_the_provider_accepted_it_never_for_a_failed_dispatch(
    infra, database, topics, tmp_path
):
    vendor = Vendor(page_size=2)
    vendor.add_orders(3)
    mark_exported(vendor)
    async with (
        setup(database, vendor) as pool,
        dispatch_events(infra, database, topics) as (producer, consumer),
        poller(database, tenants_file(tmp_path, vendor, "on_handover")),
    ):
        await eventually(
            lambda: _rows_are(pool, {"o-1": (False, False), "o-2": (False, False), "o-3": (False, False)}),
            "every order waits for its handover",
        )
        await polls_after(vendor, 4)  # relisted again and again, and still nobody told
        assert vendor.acks == []
        assert await account_counts(pool) == (0, 3, 0)

        await publish(producer, topics, failed("o-2"), dispatched("o-1"))
        await eventually(lambda: _true(vendor.acked_tokens() == ["ack-o-1"]), "o-1 is acknowledged")
        await eventually(lambda: _true(consumer.handled >= 2), "both events consumed")
        await polls_after(vendor, 4)

        assert vendor.acked_tokens() == ["ack-o-1"]  # once, and never the failed o-2
        assert [r["id"] for r in vendor.records] == ["o-2", "o-3"]
        assert await handover_rows(pool) == {"o-1": (True, True), "o-2": (False, False), "o-3": (False, False)}
        assert await account_counts(pool) == (0, 2, 0)
        # Relisted at every poll, the orders are still one order each, one revision each.
        counts = await recorded(pool)
        assert (counts["orders"], counts["order_revisions"]) == (3, 3)


async def _rows_are(pool: asyncpg.Pool, expected: dict[str, tuple[bool, bool]]) -> bool:
    return await handover_rows(pool) == expected


async def test_a_poller_restarted_between_handover_and_acknowledgement_acknowledges_once(
    infra, database, topics, tmp_path
):
    vendor = Vendor(page_size=5)
    vendor.add_orders(2)
    mark_exported(vendor)
    async with setup(database, vendor) as pool, dispatch_events(infra, database, topics) as (producer, _):
        tenants = tenants_file(tmp_path, vendor, "on_handover")
        async with poller(database, tenants, "replica-a"):
            await eventually(lambda: _rows_are(pool, {"o-1": (False, False), "o-2": (False, False)}), "recorded")
        # No poller runs while the provider accepts o-1 (as after a crash of intake).
        await publish(producer, topics, dispatched("o-1"))
        await eventually(lambda: _rows_are(pool, {"o-1": (True, False), "o-2": (False, False)}), "handed over")
        assert await account_counts(pool) == (0, 1, 1)
        assert vendor.acks == []

        vendor.fail_acks = 1  # the first acknowledgement is lost too
        async with poller(database, tenants, "replica-b"):
            await eventually(lambda: _true(vendor.acked_tokens() == ["ack-o-1"]), "o-1 acknowledged")
            await polls_after(vendor, 4)
            assert vendor.refused_acks == [["ack-o-1"]]
            assert vendor.acked_tokens() == ["ack-o-1"]
            assert await account_counts(pool) == (0, 1, 0)
            assert (await pulls.list_cursors(pool, TENANT))[0]["last_error"] == ""
        counts = await recorded(pool)
        assert (counts["orders"], counts["order_revisions"]) == (2, 2)


async def test_a_failed_acknowledgement_is_shown_and_retried(infra, database, topics, tmp_path):
    vendor = Vendor(page_size=5)
    vendor.add_orders(1)
    async with (
        setup(database, vendor) as pool,
        dispatch_events(infra, database, topics) as (producer, _),
        poller(database, tenants_file(tmp_path, vendor, "on_handover")),
    ):
        await eventually(lambda: _rows_are(pool, {"o-1": (False, False)}), "recorded")
        vendor.fail_acks = 10**6  # the channel refuses every acknowledgement for now
        await publish(producer, topics, dispatched("o-1"))
        await eventually(lambda: _true(len(vendor.refused_acks) >= 2), "tried and tried again")

        await eventually(_shown_as_failing(pool), "the failed acknowledgement shown on the account")
        assert await account_counts(pool) == (0, 0, 1)

        vendor.fail_acks = 0
        await eventually(lambda: _true(vendor.acked_tokens() == ["ack-o-1"]), "acknowledged at last")
        await eventually(lambda: _rows_are(pool, {"o-1": (True, True)}), "recorded as acknowledged")


def _shown_as_failing(pool: asyncpg.Pool):
    async def check() -> bool:
        (row,) = await pulls.list_cursors(pool, TENANT)
        return row["last_error"].startswith("acknowledge: ") and "503" in row["last_error"]

    return check


async def test_an_account_never_acknowledged_keeps_one_order_per_relisted_order(infra, database, topics, tmp_path):
    vendor = Vendor(page_size=5)
    vendor.add_orders(3)
    async with (
        setup(database, vendor) as pool,
        dispatch_events(infra, database, topics) as (producer, consumer),
        poller(database, tenants_file(tmp_path, vendor, "never")),
    ):
        await eventually(lambda: _orders_are(pool, 3), "the orders are taken")
        await publish(producer, topics, dispatched("o-1"), dispatched("o-2"))
        await eventually(lambda: _true(consumer.handled >= 2), "the handovers consumed")
        await polls_after(vendor, 5)

        assert vendor.acks == [] and vendor.refused_acks == []
        counts = await recorded(pool)
        assert (counts["orders"], counts["order_revisions"]) == (3, 3)  # relisted, deduped
        assert counts["webhook_receipts"] > 3  # every listing was received, and recognised
        outcomes = await pool.fetch("SELECT DISTINCT outcome FROM webhook_receipts")
        assert {r["outcome"] for r in outcomes} == {"accepted", "duplicate"}
        assert await handover_rows(pool) == {}
        assert await account_counts(pool) == (0, 0, 0)


async def _orders_are(pool: asyncpg.Pool, count: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM orders") == count


async def test_an_account_acknowledged_on_commit_is_unchanged_and_ignores_handovers(infra, database, topics, tmp_path):
    vendor = Vendor(page_size=5)
    vendor.add_orders(2)
    async with (
        setup(database, vendor) as pool,
        dispatch_events(infra, database, topics) as (producer, consumer),
        poller(database, tenants_file(tmp_path, vendor, "on_commit")),
    ):
        await eventually(lambda: _true(sorted(vendor.acked_tokens()) == ["ack-o-1", "ack-o-2"]), "acknowledged")
        await publish(producer, topics, dispatched("o-1"))
        await eventually(lambda: _true(consumer.handled >= 1), "the handover consumed")
        await polls_after(vendor, 3)

        # Told after the commit, at each listing (idempotent); the handover adds nothing.
        assert set(vendor.acked_tokens()) == {"ack-o-1", "ack-o-2"}
        assert await handover_rows(pool) == {}
        # Each poll queues the relisted orders with its commit and drops them once acknowledged:
        # read between the two, they show as owed for a moment.
        await eventually(lambda: _counts_are(pool, (0, 0, 0)), "nothing owed once a poll has acknowledged")


async def _counts_are(pool: asyncpg.Pool, expected: tuple[int, int, int]) -> bool:
    return await account_counts(pool) == expected


async def test_a_redelivered_or_unreadable_dispatch_event_changes_nothing_twice(infra, database, topics, tmp_path):
    vendor = Vendor(page_size=5)
    vendor.add_orders(1)
    mark_exported(vendor)
    async with (
        setup(database, vendor) as pool,
        dispatch_events(infra, database, topics) as (producer, consumer),
        poller(database, tenants_file(tmp_path, vendor, "on_handover")),
    ):
        await eventually(lambda: _rows_are(pool, {"o-1": (False, False)}), "recorded")
        event = new_event(
            topics + DISPATCH_TOPIC, dispatched("o-1"), aggregate_id=order_id("o-1"), tenant_id=TENANT, producer="d"
        )
        for _ in range(2):  # the relay published it twice
            await producer.send_and_wait(event.topic, event.value, key=event.key, headers=event.headers)
        await producer.send_and_wait(topics + DISPATCH_TOPIC, b"not an envelope", key=b"x")
        await eventually(lambda: _true(vendor.acked_tokens() == ["ack-o-1"]), "acknowledged")
        await eventually(_dead_letter_kept(pool), "the bad message kept")
        await polls_after(vendor, 3)
        assert vendor.acked_tokens() == ["ack-o-1"]
        assert await pool.fetchval("SELECT count(*) FROM processed_events WHERE consumer_group = $1", GROUP) == 1


def _dead_letter_kept(pool: asyncpg.Pool):
    async def check() -> bool:
        return await pool.fetchval("SELECT count(*) FROM dead_letters") == 1

    return check


async def test_a_newer_revision_replaces_the_token_until_acknowledged(database):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 2)
    key = pulls.AccountKey(TENANT, ACCOUNT)
    try:
        async with pool.acquire() as conn:
            await pulls.await_handover(conn, key, [pulls.PendingAck("o", "t1")])
            await pulls.await_handover(conn, key, [pulls.PendingAck("o", "t2")])
            assert await pulls.handed_over(conn, ["o", "unknown"]) == [key]
        await pulls.handovers_acknowledged(pool, [pulls.PendingAck("o", "t1")])  # an older token: not it
        assert await pulls.handed_over_unacknowledged(pool, key, 10) == [pulls.PendingAck("o", "t2")]
        await pulls.handovers_acknowledged(pool, [pulls.PendingAck("o", "t2")])
        async with pool.acquire() as conn:
            await pulls.await_handover(conn, key, [pulls.PendingAck("o", "t3")])  # told already: kept
        row = await pool.fetchrow("SELECT ack_token, acknowledged_at FROM handover_acks")
        assert row is not None and row["ack_token"] == "t2" and row["acknowledged_at"] is not None
        assert await pool.fetchval("SELECT count(*) FROM handover_acks") == 1
    finally:
        await pool.close()


async def test_a_handover_brings_a_healthy_accounts_poll_forward_but_not_one_in_backoff(database):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 2)
    healthy, failing = pulls.AccountKey(TENANT, "shop"), pulls.AccountKey(TENANT, "outlet")
    try:
        await pulls.ensure_rows(pool, [(TENANT, "shop", CONNECTOR_ID), (TENANT, "outlet", CONNECTOR_ID)])
        await pool.execute("UPDATE pull_cursors SET next_poll_at = now() + interval '1 hour'")
        await pool.execute("UPDATE pull_cursors SET failures = 2 WHERE account = 'outlet'")
        await pulls.poll_soon(pool, [healthy, failing])
        due = await pool.fetch("SELECT account FROM pull_cursors WHERE next_poll_at <= now()")
        assert [r["account"] for r in due] == ["shop"]
    finally:
        await pool.close()
