"""Pull intake on real Postgres against a real HTTP vendor: replicas, leases, cursors, acks, backoff.

Each replica is a PullScheduler with its own pool, connector clients and owner id, as separate
processes would be; they share only the database and the vendor (tests/pull_channel.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import ParsedOrder
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.db import create_pool, migrate
from libs.platform.tenants import TenantDirectory
from order_intake.app import MIGRATIONS
from order_intake.domain.intake import InputLimits, order_id_for
from order_intake.pulling import PullScheduler, PullSettings
from order_intake.revisions import ORDERS_TOPIC, RevisionBuilder
from order_intake.storage import pulls
from order_intake.storage.orders import RevisionWriter
from order_intake.storage.pulls import AccountKey, LeaseLost
from services.order_intake.tests.pull_channel import CONNECTOR_ID, PullConnector, Vendor, running

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

TENANT, ACCOUNT = "acme", "shop"
KEY = AccountKey(TENANT, ACCOUNT)
# Short leases and waits, so takeovers and backoffs happen within a test.
SETTINGS = PullSettings(lease_s=1.0, scan_s=0.05, max_pollers=4, backoff_base_s=0.2, backoff_max_s=1.0)


def tenants_file(folder: Path, vendor: Vendor, *, poll_interval_s: float = 0.2, import_delay_s: float = 0.0) -> Path:
    path = folder / "tenants.toml"
    path.write_text(
        f'[tenants.{TENANT}.accounts.{ACCOUNT}]\nconnector = "{CONNECTOR_ID}"\nbase_url = "{vendor.url}"\n'
        f"poll_interval_s = {poll_interval_s}\nimport_delay_s = {import_delay_s}\n"
    )
    return path


class Replica:
    """One intake replica's pull side: pool, registry, clients, writer and scheduler."""

    def __init__(self, name: str, dsn: str, tenants: Path, settings: PullSettings = SETTINGS):
        self.name, self._dsn, self._tenants, self._settings = name, dsn, tenants, settings
        self.connector = PullConnector(name)
        self.pool: asyncpg.Pool | None = None
        self._accounts: AccountClients | None = None
        self._scheduler: PullScheduler | None = None

    async def start(self) -> None:
        registry = Registry([self.connector])
        self.pool = await create_pool(self._dsn, "order_intake", 4)
        directory = TenantDirectory.load(self._tenants, registry)
        self._accounts = AccountClients(directory, registry)
        await self._accounts.start()
        builder = RevisionBuilder(ORDERS_TOPIC, "order-intake", InputLimits())
        self._scheduler = PullScheduler(
            self.pool,
            directory,
            self._accounts,
            RevisionWriter(self.pool),
            builder,
            owner=self.name,
            settings=self._settings,
        )
        await self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler is not None:
            await self._scheduler.stop()
        if self._accounts is not None:
            await self._accounts.stop()
        if self.pool is not None:
            await self.pool.close()


@asynccontextmanager
async def replicas(
    dsn: str, tenants: Path, *names: str, settings: PullSettings = SETTINGS
) -> AsyncIterator[list[Replica]]:
    started = [Replica(name, dsn, tenants, settings) for name in names]
    try:
        await asyncio.gather(*(r.start() for r in started))
        yield started
    finally:
        await asyncio.gather(*(r.stop() for r in started))


@asynccontextmanager
async def setup(database: str, vendor: Vendor) -> AsyncIterator[asyncpg.Pool]:
    """The vendor serving, intake's schema migrated, and a pool for the test's own reads."""
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 2)
    try:
        async with running(vendor):
            yield pool
    finally:
        await pool.close()


async def cursor_row(pool: asyncpg.Pool) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM pull_cursors WHERE tenant_id = $1 AND account = $2", TENANT, ACCOUNT)
    assert row is not None, "the account has no pull cursor"
    return row


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    """Wait until `check()` holds (it depends on polls running in the background)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def cursor_at(pool: asyncpg.Pool, cursor: str) -> Callable[[], Awaitable[bool]]:
    """At `cursor`, everything acknowledged, and the poll that got there finished."""

    async def check() -> bool:
        row = await pool.fetchrow("SELECT * FROM pull_cursors WHERE tenant_id = $1", TENANT)
        if row is None:
            return False
        return row["lease_owner"] is None and row["cursor"] == cursor and row["unacknowledged"] == "[]"

    return check


async def recorded(pool: asyncpg.Pool) -> dict[str, int]:
    """How many rows each table holds for the pulled orders."""
    counts = {}
    for table in ("webhook_receipts", "order_revisions", "orders", "outbox"):
        counts[table] = await pool.fetchval(f"SELECT count(*) FROM {table}")
    return counts


def tokens(count: int) -> list[str]:
    return [f"ack-o-{n}" for n in range(1, count + 1)]


# ---- replicas ------------------------------------------------------------------------------------


async def test_two_replicas_poll_one_account_one_at_a_time_and_record_every_order_once(database, tmp_path):
    vendor = Vendor(page_size=3)
    vendor.add_orders(20)
    async with setup(database, vendor) as pool:
        async with replicas(database, tenants_file(tmp_path, vendor), "replica-a", "replica-b"):
            await eventually(cursor_at(pool, "20"), "the cursor reaches the last record")
            polls_so_far = len(vendor.fetches)
            await eventually(lambda: _true(len(vendor.fetches) > polls_so_far + 4), "healthy polls go on")
        assert vendor.most_in_flight == 1  # never two polls of the account at once
        pages = [f.after for f in vendor.fetches if f.after < 20]
        assert pages == [0, 3, 6, 9, 12, 15, 18]  # each page fetched once, in order
        assert await recorded(pool) == {"webhook_receipts": 20, "order_revisions": 20, "orders": 20, "outbox": 20}
        assert sorted(vendor.acked_tokens()) == sorted(tokens(20))
        row = await cursor_row(pool)
        assert (row["orders_pulled"], row["failures"], row["last_error"]) == (20, 0, "")
        stored = await pool.fetchval("SELECT order_proto FROM orders WHERE external_id = 'o-7'")
        order = order_pb2.Order.FromString(stored)
        assert order.order_id == order_id_for(TENANT, CONNECTOR_ID, "o-7")  # the same id a webhook gets
        assert (order.channel, order.channel_account) == (CONNECTOR_ID, ACCOUNT)
        receipt = await pool.fetchrow(
            "SELECT source, account, body FROM webhook_receipts WHERE order_id = $1", order.order_id
        )
        assert receipt is not None and (receipt["source"], receipt["account"]) == ("pull", ACCOUNT)
        assert json.loads(receipt["body"])["externalId"] == "o-7"


async def test_a_lease_is_renewed_while_a_slow_page_is_fetched_so_nobody_takes_it_over(database, tmp_path):
    vendor = Vendor(page_size=2, answer_delay_s=1.5)  # each fetch outlasts the lease twice over
    vendor.add_orders(4)
    short_lease = PullSettings(lease_s=0.6, scan_s=0.05, backoff_base_s=0.2, backoff_max_s=1.0)
    async with setup(database, vendor) as pool:
        async with replicas(database, tenants_file(tmp_path, vendor), "replica-a", "replica-b", settings=short_lease):
            await eventually(cursor_at(pool, "4"), "both pages committed")
        assert vendor.most_in_flight == 1
        assert [f.after for f in vendor.fetches if f.after < 4] == [0, 2]
        assert await recorded(pool) == {"webhook_receipts": 4, "order_revisions": 4, "orders": 4, "outbox": 4}


async def test_a_replica_whose_lease_was_taken_over_cannot_commit_or_move_the_cursor(database):
    vendor = Vendor()
    async with setup(database, vendor) as pool:
        await pulls.ensure_rows(pool, [(TENANT, ACCOUNT, CONNECTOR_ID)])
        configured = [(TENANT, ACCOUNT, CONNECTOR_ID)]
        [stale] = await pulls.claim_due(pool, "replica-a", 0.2, 1, configured)
        await asyncio.sleep(0.3)  # replica-a stalls past its lease
        [taken] = await pulls.claim_due(pool, "replica-b", 30, 1, configured)
        assert taken.key == stale.key == KEY

        async def fence(conn):
            await pulls.hold(conn, KEY, "replica-a")

        async def move(conn, _results):
            await pulls.advance(conn, KEY, "replica-a", 30, "99", 1, [])

        builder = RevisionBuilder(ORDERS_TOPIC, "order-intake", InputLimits())
        order = order_pb2.Order(external_id="o-1", revision="r1")
        order.lines.add(sku="WINE-1", quantity=1)
        revision = builder.from_parsed(TENANT, CONNECTOR_ID, ACCOUNT, ParsedOrder(order), b"{}", source="pull")
        with pytest.raises(LeaseLost):
            await RevisionWriter(pool).commit_page([revision], before=fence, after=move)
        row = await cursor_row(pool)
        assert (row["cursor"], row["lease_owner"]) == ("", "replica-b")
        assert await recorded(pool) == {"webhook_receipts": 0, "order_revisions": 0, "orders": 0, "outbox": 0}
        assert not await pulls.renew(pool, KEY, "replica-a", 30)


async def test_a_replica_killed_mid_page_leaves_the_cursor_and_another_takes_over_after_the_lease(database, tmp_path):
    vendor = Vendor(page_size=3)
    vendor.add_orders(9)
    async with setup(database, vendor) as pool:
        tenants = tenants_file(tmp_path, vendor)
        first = Replica("replica-a", database, tenants)
        first.connector.hang_after_fetch = True
        await first.start()
        try:
            await asyncio.wait_for(first.connector.fetched.wait(), 20)
        finally:
            await first.stop()  # dies between fetching the first page and committing it
        row = await cursor_row(pool)
        assert (row["cursor"], row["lease_owner"]) == ("", "replica-a")
        assert await recorded(pool) == {"webhook_receipts": 0, "order_revisions": 0, "orders": 0, "outbox": 0}
        lease_until = row["lease_until"].timestamp()

        async with replicas(database, tenants, "replica-b"):
            await eventually(cursor_at(pool, "9"), "the second replica pulls every page")
        taken_over = [f for f in vendor.fetches if f.replica == "replica-b"]
        assert taken_over[0].after == 0 and taken_over[0].at >= lease_until  # only once the lease expired
        assert await recorded(pool) == {"webhook_receipts": 9, "order_revisions": 9, "orders": 9, "outbox": 9}
        assert sorted(vendor.acked_tokens()) == sorted(tokens(9))
        assert {replica for replica, _, _ in vendor.acks} == {"replica-b"}


# ---- acknowledgements ----------------------------------------------------------------------------


async def test_orders_are_acknowledged_only_after_their_commit_and_a_failed_ack_is_repeated(database, tmp_path):
    vendor = Vendor(page_size=3, fail_acks=1)
    vendor.add_orders(6)
    async with setup(database, vendor) as pool:
        seen: list[tuple[list[str], int, list[dict]]] = []

        async def look_at_the_database(acked: list[str]) -> None:
            # Another connection sees only committed rows: each acked order must be one of them.
            ids = [token.removeprefix("ack-") for token in acked]
            committed = await pool.fetchval("SELECT count(*) FROM orders WHERE external_id = ANY($1::text[])", ids)
            seen.append((acked, committed, json.loads((await cursor_row(pool))["unacknowledged"])))

        vendor.on_ack = look_at_the_database
        async with replicas(database, tenants_file(tmp_path, vendor), "replica-a"):
            await eventually(cursor_at(pool, "6"), "every order committed and acknowledged")
        assert all(committed == len(acked) for acked, committed, _ in seen)
        # The first page's acknowledgement failed; it was kept with the cursor and sent again.
        assert vendor.refused_acks == [tokens(3)]
        repeated = [entry for entry in seen[1:] if entry[0] == tokens(3)]
        assert len(repeated) == 1 and [p["ack_token"] for p in repeated[0][2]] == tokens(3)
        assert sorted(vendor.acked_tokens()) == sorted(tokens(6))
        row = await cursor_row(pool)
        assert (row["last_error"], row["failures"], row["unacknowledged"]) == ("", 0, "[]")


async def test_a_failed_acknowledgement_is_shown_without_stopping_the_pull(database, tmp_path):
    vendor = Vendor(page_size=10, fail_acks=10**6)
    vendor.add_orders(4)
    async with setup(database, vendor) as pool:
        async with replicas(database, tenants_file(tmp_path, vendor), "replica-a"):

            async def shown() -> bool:
                row = await pool.fetchrow("SELECT last_error FROM pull_cursors")
                return row is not None and row["last_error"].startswith("acknowledge:")

            await eventually(shown, "the acknowledgement error is shown")
        row = await cursor_row(pool)
        assert row["cursor"] == "4" and row["failures"] == 0  # the orders are in; only the ack waits
        assert "UNAVAILABLE" in row["last_error"] or "503" in row["last_error"]
        assert [p["ack_token"] for p in json.loads(row["unacknowledged"])] == tokens(4)
        assert await recorded(pool) == {"webhook_receipts": 4, "order_revisions": 4, "orders": 4, "outbox": 4}


# ---- errors, import delay, dedupe -----------------------------------------------------------------


async def test_fetch_errors_back_off_exponentially_and_are_recorded(database, tmp_path):
    vendor = Vendor(page_size=5, fail_fetches=10**6)
    vendor.add_orders(5)
    async with setup(database, vendor) as pool:
        async with replicas(database, tenants_file(tmp_path, vendor), "replica-a"):

            async def failed_thrice() -> bool:
                row = await pool.fetchrow("SELECT failures FROM pull_cursors")
                return row is not None and row["failures"] >= 3

            await eventually(failed_thrice, "three failed polls are counted")
            row = await cursor_row(pool)
            assert "UNAVAILABLE" in row["last_error"] and row["cursor"] == ""
            assert row["next_poll_at"].timestamp() > vendor.attempts[-1]
            # Each wait is at least half of base * 2^(failures before), so the gaps grow.
            gaps = [later - earlier for earlier, later in zip(vendor.attempts, vendor.attempts[1:], strict=False)]
            for failures_before, gap in enumerate(gaps[:3]):
                assert gap >= 0.5 * SETTINGS.backoff_base_s * 2**failures_before - 0.01
            vendor.fail_fetches = 0
            await eventually(cursor_at(pool, "5"), "the pull recovers")
        row = await cursor_row(pool)
        assert (row["failures"], row["last_error"], row["orders_pulled"]) == (0, "", 5)


async def test_orders_younger_than_the_import_delay_wait_and_the_cursor_stays_before_them(database, tmp_path):
    vendor = Vendor(page_size=10)
    vendor.add_orders(2, placed_at=time.time() - 3600)
    (young,) = vendor.add_orders(1, start=3)
    vendor.placed_after_first_fetch_s[young] = 1.0  # held at the first poll, old enough two seconds later
    async with setup(database, vendor) as pool:
        async with replicas(
            database, tenants_file(tmp_path, vendor, import_delay_s=1.0, poll_interval_s=30), "replica-a"
        ):

            async def old_ones_in() -> bool:
                return await pool.fetchval("SELECT count(*) FROM orders") == 2

            await eventually(old_ones_in, "the orders old enough are committed")
            row = await cursor_row(pool)
            assert row["cursor"] == ""  # not past the held order
            assert await pool.fetchval("SELECT count(*) FROM orders WHERE external_id = 'o-3'") == 0
            await eventually(cursor_at(pool, "3"), "the held order is taken once old enough")
        rows = await pool.fetch("SELECT outcome, count(*) FROM webhook_receipts GROUP BY outcome")
        outcomes = {r["outcome"]: r["count"] for r in rows}
        # The old orders were fetched again with the held one: duplicates of the same revisions.
        assert outcomes["accepted"] == 3 and outcomes["duplicate"] >= 2 and set(outcomes) == {"accepted", "duplicate"}
        assert set(vendor.acked_tokens()) == set(tokens(3))


async def test_a_pulled_page_records_ignored_records_and_dedupes_like_webhooks(database, tmp_path):
    vendor = Vendor(page_size=10)
    vendor.add_orders(2)
    vendor.records.append({"id": "n-1", "kind": "note", "updated": "x"})
    vendor.records.append(dict(vendor.records[0]))  # the channel serves a revision again
    async with setup(database, vendor) as pool:
        async with replicas(database, tenants_file(tmp_path, vendor), "replica-a"):
            await eventually(cursor_at(pool, "4"), "the page is committed")
        outcomes = await pool.fetch("SELECT outcome FROM webhook_receipts ORDER BY id")
        assert [r["outcome"] for r in outcomes] == ["accepted", "accepted", "ignored", "duplicate"]
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
        assert (await cursor_row(pool))["orders_pulled"] == 2


async def _true(value: bool) -> bool:
    return value
