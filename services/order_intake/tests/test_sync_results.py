"""Sync results, locked changes and sync now, on real Postgres, Kafka and gRPC.

The channel is tests/pull_channel.py's vendor with a connector that, like a reservations
channel, wants each order's sync result back (Capability.SYNC_RESULTS: accepted with the
provider's reference, refused with the reason), takes no acknowledgement, and is locked after
handover: a change of an order the provider accepted is recorded, never sent on. Dispatch's
outcomes arrive on a real dispatch.orders.v1 topic, read by intake's consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.connectors.base.contract import Capability, ConnectorInfo, Role, SyncResult
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.db import create_pool
from libs.platform.grpc_server import GrpcServer, bind, insecure_channel
from libs.platform.tenants import TenantDirectory
from libs.platform.testing import ACME_OPERATOR, ACME_READER, GLOBEX_OPERATOR, access_for_tests, authorized
from order_intake import cli
from order_intake.api.grpc import OrderIntakeServicer
from order_intake.domain.intake import InputLimits
from order_intake.pulling import PullScheduler
from order_intake.revisions import ORDERS_TOPIC, RevisionBuilder
from order_intake.storage import pulls
from order_intake.storage.orders import RevisionWriter
from services.order_intake.tests.pull_channel import CONNECTOR_ID, PullClient, PullConnector, Vendor
from services.order_intake.tests.test_handover_acks import (
    _true,
    dispatch_events,
    dispatched,
    failed,
    order_id,
    polls_after,
    publish,
)
from services.order_intake.tests.test_pull_intake import ACCOUNT, SETTINGS, TENANT, eventually, recorded, setup

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(90)]


class ReservationsConnector(PullConnector):
    """A channel told each order's sync result, whose orders are locked once synced."""

    info = ConnectorInfo(
        id=CONNECTOR_ID,
        label="Reservations Fake",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset({Capability.PULL_ORDERS, Capability.SYNC_RESULTS}),
        locked_after_handover=True,
    )

    async def report_sync_results(self, client: PullClient, settings: Any, results: Sequence[SyncResult]) -> None:
        await client.sync_results(
            [
                {
                    "token": r.ack_token,
                    "status": "accepted" if r.accepted else "refused",
                    "reference": r.provider_reference,
                    "failure": r.failure,
                }
                for r in results
            ]
        )


def tenants_file(folder: Path, vendor: Vendor) -> Path:
    path = folder / "tenants.toml"
    path.write_text(
        f'[tenants.{TENANT}.accounts.{ACCOUNT}]\nconnector = "{CONNECTOR_ID}"\nbase_url = "{vendor.url}"\n'
        "poll_interval_s = 0.2\n"
    )
    return path


def parts(dsn: str, tenants: Path, name: str):
    registry = Registry([ReservationsConnector(name)])
    directory = TenantDirectory.load(tenants, registry)
    return registry, directory, AccountClients(directory, registry)


@asynccontextmanager
async def poller(dsn: str, tenants: Path, name: str = "replica-a") -> AsyncIterator[None]:
    """One intake replica's pull side with the reservations connector."""
    _, directory, accounts = parts(dsn, tenants, name)
    pool = await create_pool(dsn, "order_intake", 4)
    await accounts.start()
    builder = RevisionBuilder(ORDERS_TOPIC, "order-intake", InputLimits())
    scheduler = PullScheduler(pool, directory, accounts, RevisionWriter(pool), builder, owner=name, settings=SETTINGS)
    await scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()
        await accounts.stop()
        await pool.close()


@asynccontextmanager
async def intake_api(pool: asyncpg.Pool, dsn: str, tenants: Path, *, max_pages: int = 20) -> AsyncIterator[str]:
    """Intake's gRPC API on a free port, with the accounts SyncNow needs; yields its address."""
    _, _, accounts = parts(dsn, tenants, "api")
    await accounts.start()
    builder = RevisionBuilder(ORDERS_TOPIC, "order-intake", InputLimits())
    servicer = OrderIntakeServicer(
        pool, access_for_tests(), accounts=accounts, builder=builder, max_dry_run_pages=max_pages
    )
    server = GrpcServer([bind(pb, pb_grpc, "OrderIntakeService", servicer)], host="127.0.0.1", port=0)
    await server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        await server.stop(0)
        await accounts.stop()


def with_reference(external_id: str, reference: str):
    event = dispatched(external_id)
    event.provider_reference = reference
    return event


def reported(vendor: Vendor, expected: dict[str, tuple[str, str, str]]):
    """The channel holds exactly these results: token -> (status, reference, failure)."""

    async def check() -> bool:
        held = {t: (r["status"], r["reference"], r["failure"]) for t, r in vendor.results.items()}
        return held == expected

    return check


async def owed(pool: asyncpg.Pool) -> int:
    (row,) = await pulls.list_cursors(pool, TENANT)
    return row["unreported_results_count"]


async def run_cli(monkeypatch, token: str, addr: str, *args: str) -> int:
    monkeypatch.setenv("ORDERSYNC_INTAKE_TOKEN", token)
    return await asyncio.to_thread(cli.main, ["--addr", addr, "--tenant", TENANT, *args])


# ---- sync results ---------------------------------------------------------------------------------


async def test_results_are_reported_accepted_with_the_reference_refused_with_the_reason_and_a_retry_again(
    infra, database, topics, tmp_path
):
    vendor = Vendor(page_size=5)
    vendor.add_orders(3)
    async with (
        setup(database, vendor) as pool,
        dispatch_events(infra, database, topics) as (producer, _),
        poller(database, tenants_file(tmp_path, vendor)),
    ):
        await eventually(lambda: _rows(pool, 3), "every order has its handover row")
        await publish(producer, topics, with_reference("o-1", "VS-1001"), failed("o-2"), dispatched("o-3"))
        await eventually(
            reported(
                vendor,
                {
                    "ack-o-1": ("accepted", "VS-1001", ""),
                    "ack-o-2": ("refused", "", "UNKNOWN_SKU: no"),
                    "ack-o-3": ("accepted", "W-o-3", ""),  # no provider_reference: the order number
                },
            ),
            "each result told",
        )
        # An operator retried o-2 in dispatch, and the provider took it.
        await publish(producer, topics, with_reference("o-2", "VS-1002"))
        await eventually(
            lambda: _true(vendor.results["ack-o-2"]["status"] == "accepted"), "the success told after the refusal"
        )
        assert vendor.results["ack-o-2"] == {
            "token": "ack-o-2",
            "status": "accepted",
            "reference": "VS-1002",
            "failure": "",
        }
        await polls_after(vendor, 3)
        told = [r["token"] for call in vendor.result_calls for r in call]
        assert sorted(told) == ["ack-o-1", "ack-o-2", "ack-o-2", "ack-o-3"]  # each result once
        assert vendor.acks == []  # this channel takes results, not acknowledgements
        assert await owed(pool) == 0
        (cursor,) = await pulls.list_cursors(pool, TENANT)
        assert (cursor["awaiting_handover_count"], cursor["handed_over_unacknowledged_count"]) == (0, 0)


async def _rows(pool: asyncpg.Pool, count: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM handover_acks WHERE report_results") == count


async def test_results_owed_across_a_restart_and_a_lost_answer_are_reported_again_harmlessly(
    infra, database, topics, tmp_path
):
    vendor = Vendor(page_size=5)
    vendor.add_orders(2)
    async with setup(database, vendor) as pool, dispatch_events(infra, database, topics) as (producer, _):
        tenants = tenants_file(tmp_path, vendor)
        async with poller(database, tenants, "replica-a"):
            await eventually(lambda: _rows(pool, 2), "recorded")
        # Intake is down while dispatch answers (as after a kill): the results wait on their rows.
        await publish(producer, topics, with_reference("o-1", "VS-1"), failed("o-2"))
        await eventually(lambda: _owes(pool, 2), "both results owed")
        assert vendor.result_calls == []

        vendor.fail_results = 1  # the channel is down at first
        vendor.lose_result_answers = 1  # then it takes the results but its answer is lost
        async with poller(database, tenants, "replica-b"):
            await eventually(lambda: _owes(pool, 0), "told at last")
            await polls_after(vendor, 3)
        assert len(vendor.result_calls) == 2  # told twice: the second time changed nothing
        assert vendor.result_calls[0] == vendor.result_calls[1]
        assert vendor.results == {
            "ack-o-1": {"token": "ack-o-1", "status": "accepted", "reference": "VS-1", "failure": ""},
            "ack-o-2": {"token": "ack-o-2", "status": "refused", "reference": "", "failure": "UNKNOWN_SKU: no"},
        }
        assert (await pulls.list_cursors(pool, TENANT))[0]["last_error"] == ""


async def _owes(pool: asyncpg.Pool, count: int) -> bool:
    return await owed(pool) == count


async def test_a_failed_report_is_shown_on_the_account_until_it_goes_through(infra, database, topics, tmp_path):
    vendor = Vendor(page_size=5)
    vendor.add_orders(1)
    async with (
        setup(database, vendor) as pool,
        dispatch_events(infra, database, topics) as (producer, _),
        poller(database, tenants_file(tmp_path, vendor)),
    ):
        await eventually(lambda: _rows(pool, 1), "recorded")
        vendor.fail_results = 10**6
        await publish(producer, topics, with_reference("o-1", "VS-1"))

        async def shown() -> bool:
            (row,) = await pulls.list_cursors(pool, TENANT)
            return row["last_error"].startswith("sync results: ") and "503" in row["last_error"]

        await eventually(shown, "the failure shown in last_error")
        assert await owed(pool) == 1
        vendor.fail_results = 0
        await eventually(lambda: _owes(pool, 0), "reported once the channel answers")
        assert vendor.results["ack-o-1"]["reference"] == "VS-1"


# ---- locked after sync ------------------------------------------------------------------------------


def revise(vendor: Vendor, external_id: str, updated: str, **fields: Any) -> None:
    """A newer revision of an order in the channel, served after the cursor."""
    vendor.records.append({"id": external_id, "updated": updated, "placed": None, **fields})


async def test_a_change_after_sync_is_locked_with_its_message_and_shown_never_published(
    infra, database, topics, tmp_path, monkeypatch, capsys
):
    vendor = Vendor(page_size=5)
    for n in (1, 2):
        revise(vendor, f"o-{n}", "2026-11-30T10:00:00Z", total=12000, status="Paid")
    async with setup(database, vendor) as pool, dispatch_events(infra, database, topics) as (producer, _):
        tenants = tenants_file(tmp_path, vendor)
        async with poller(database, tenants):
            await _sync_then_change(pool, vendor, producer, topics)
        await _locked_change_is_shown(pool, database, tenants, monkeypatch, capsys)


async def _sync_then_change(pool, vendor, producer, topics) -> None:
    await eventually(lambda: _rows(pool, 2), "recorded")
    await publish(producer, topics, with_reference("o-1", "VS-1001"))
    await eventually(reported(vendor, {"ack-o-1": ("accepted", "VS-1001", "")}), "o-1 synced")

    # o-1 re-listed with nothing changed, then changed (refunded, cancelled); o-2, not synced
    # yet, changes too and flows as before.
    revise(vendor, "o-1", "2026-11-30T11:00:00Z", total=12000, status="Paid")
    revise(vendor, "o-1", "2026-11-30T12:00:00Z", total=9000, status="Cancelled")
    revise(vendor, "o-2", "2026-11-30T12:00:00Z", total=9000, status="Paid")
    revise(vendor, "o-1", "2026-11-30T12:00:00Z", total=9000, status="Cancelled")  # listed again
    await eventually(lambda: _cursor_is(pool, "6"), "all pages committed")

    outcomes = await pool.fetch(
        "SELECT outcome, detail FROM webhook_receipts WHERE order_id = $1 ORDER BY id", order_id("o-1")
    )
    assert [r["outcome"] for r in outcomes] == ["accepted", "unchanged", "locked_after_sync", "duplicate"]
    message = outcomes[2]["detail"]
    assert message.startswith("Changed in Reservations Fake after sync: total 120.00 → 90.00; status Paid → Cancelled.")
    assert " as VS-1001. " in message and "Synced to warehouse on " in message
    assert "make the change in warehouse by hand; Reservations Fake keeps the order as synced" in message
    # Published: o-1 and o-2 first, and o-2's change; never o-1's locked change.
    counts = await recorded(pool)
    assert counts["outbox"] == 3
    stored = order_pb2.Order.FromString(
        await pool.fetchval("SELECT order_proto FROM orders WHERE order_id = $1", order_id("o-1"))
    )
    assert (stored.totals.total.minor_units, stored.channel_status) == (12000, "Paid")  # as synced


async def _locked_change_is_shown(pool, database, tenants, monkeypatch, capsys) -> None:
    message = await pool.fetchval("SELECT detail FROM webhook_receipts WHERE outcome = 'locked_after_sync'")
    async with intake_api(pool, database, tenants) as addr:
        async with insecure_channel(addr) as channel:
            stub = authorized(pb_grpc.OrderIntakeServiceStub(channel), ACME_READER)
            ref = order_pb2.ChannelOrderRef(channel=CONNECTOR_ID, external_id="o-1")
            record = (await stub.GetOrder(pb.GetOrderRequest(tenant_id=TENANT, channel_ref=ref))).record
            [change] = record.locked_changes
            assert (change.message, change.revision, change.account) == (message, "2026-11-30T12:00:00Z", ACCOUNT)
            assert change.HasField("received_time")
            listing = await stub.ListLockedChanges(pb.ListLockedChangesRequest(tenant_id=TENANT, account=ACCOUNT))
            assert [(c.external_id, c.message) for c in listing.changes] == [("o-1", message)]
            other = await stub.ListLockedChanges(pb.ListLockedChangesRequest(tenant_id=TENANT, account="outlet"))
            assert list(other.changes) == []
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await authorized(pb_grpc.OrderIntakeServiceStub(channel), GLOBEX_OPERATOR).ListLockedChanges(
                    pb.ListLockedChangesRequest(tenant_id=TENANT)
                )
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        capsys.readouterr()
        assert await run_cli(monkeypatch, ACME_READER, addr, "show", CONNECTOR_ID, "o-1") == 0
        shown = capsys.readouterr().out
        assert "locked after sync: 1 change(s) not sent on:" in shown and message in shown
        assert await run_cli(monkeypatch, ACME_READER, addr, "locked", ACCOUNT) == 0
        listed = capsys.readouterr().out
        assert f"{ACCOUNT} ({CONNECTOR_ID}) order O-1" in listed and message in listed
        assert "(1 locked change(s))" in listed


async def _cursor_is(pool: asyncpg.Pool, cursor: str) -> bool:
    row = await pool.fetchrow("SELECT cursor, lease_owner FROM pull_cursors WHERE tenant_id = $1", TENANT)
    return row is not None and row["cursor"] == cursor and row["lease_owner"] is None


# ---- sync now --------------------------------------------------------------------------------------


async def test_sync_now_brings_the_poll_forward_and_says_when_it_was_due(database, tmp_path, monkeypatch, capsys):
    vendor = Vendor()
    async with setup(database, vendor) as pool, intake_api(pool, database, tenants_file(tmp_path, vendor)) as addr:
        await pulls.ensure_rows(pool, [(TENANT, ACCOUNT, CONNECTOR_ID)])
        await pool.execute("UPDATE pull_cursors SET next_poll_at = '2031-01-01T00:00:00Z', failures = 3")
        async with insecure_channel(addr) as channel:
            stub = pb_grpc.OrderIntakeServiceStub(channel)
            answer = await authorized(stub, ACME_OPERATOR).SyncNow(pb.SyncNowRequest(tenant_id=TENANT, account=ACCOUNT))
            assert answer.previous_next_poll_time.ToDatetime().year == 2031 and not answer.polling_now
            assert "will be polled within seconds (it was due 2031-01-01T00:00:00+00:00)" in answer.message
            assert await pool.fetchval("SELECT next_poll_at <= now() FROM pull_cursors") is True

            async def code_of(token: str, request: pb.SyncNowRequest) -> grpc.StatusCode:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await authorized(stub, token).SyncNow(request)
                return refused.value.code()

            unknown = pb.SyncNowRequest(tenant_id=TENANT, account="nowhere")
            assert await code_of(ACME_OPERATOR, unknown) == grpc.StatusCode.NOT_FOUND
            assert await code_of(ACME_OPERATOR, pb.SyncNowRequest(tenant_id=TENANT)) == grpc.StatusCode.INVALID_ARGUMENT
            mine = pb.SyncNowRequest(tenant_id=TENANT, account=ACCOUNT)
            assert await code_of(GLOBEX_OPERATOR, mine) == grpc.StatusCode.PERMISSION_DENIED
            assert await code_of(ACME_READER, mine) == grpc.StatusCode.PERMISSION_DENIED  # a reader only looks
            vendor.fail_fetches = 1  # the channel is down: a dry run cannot say, and says so
            dry = pb.SyncNowRequest(tenant_id=TENANT, account=ACCOUNT, dry_run=True)
            assert await code_of(ACME_READER, dry) == grpc.StatusCode.UNAVAILABLE
        await pool.execute("UPDATE pull_cursors SET next_poll_at = now() + interval '1 hour'")
        capsys.readouterr()
        assert await run_cli(monkeypatch, ACME_OPERATOR, addr, "sync-now", ACCOUNT) == 0
        assert f"{ACCOUNT} will be polled within seconds" in capsys.readouterr().out
        assert await run_cli(monkeypatch, ACME_OPERATOR, addr, "sync-now", "nowhere") == 1


async def test_a_dry_run_lists_what_a_sync_would_do_with_each_record_and_commits_nothing(
    infra, database, topics, tmp_path, monkeypatch, capsys
):
    vendor = Vendor(page_size=3)
    revise(vendor, "o-1", "2026-11-30T10:00:00Z", total=12000, status="Paid")
    revise(vendor, "o-2", "2026-11-30T10:00:00Z", total=5000, status="Paid")
    async with setup(database, vendor) as pool, dispatch_events(infra, database, topics) as (producer, _):
        tenants = tenants_file(tmp_path, vendor)
        async with poller(database, tenants):
            await eventually(lambda: _rows(pool, 2), "recorded")
            await publish(producer, topics, with_reference("o-1", "VS-1001"))
            await eventually(reported(vendor, {"ack-o-1": ("accepted", "VS-1001", "")}), "o-1 synced")
        # The channel now has: o-1 changed after sync, o-2 as recorded, a new one, one failing an
        # import rule, one with bad data, and a note.
        await pool.execute("UPDATE pull_cursors SET cursor = '0'")  # the channel lists them from its start
        vendor.records[:] = [
            {"id": "o-1", "updated": "2026-11-30T12:00:00Z", "placed": None, "total": 9000, "status": "Paid"},
            {"id": "o-2", "updated": "2026-11-30T10:00:00Z", "placed": None, "total": 5000, "status": "Paid"},
            {"id": "o-3", "updated": "2026-11-30T10:00:00Z", "placed": None},
            {"id": "o-4", "updated": "2026-11-30T10:00:00Z", "placed": None, "rule": "not paid"},
            {"id": "o-5", "updated": "2026-11-30T10:00:00Z", "placed": None, "bad": True},
            {"id": "n-1", "updated": "2026-11-30T10:00:00Z", "kind": "note"},
        ]
        before = await _state(pool)
        async with intake_api(pool, database, tenants) as addr:
            async with insecure_channel(addr) as channel:
                stub = authorized(pb_grpc.OrderIntakeServiceStub(channel), ACME_READER)
                answer = await stub.SyncNow(pb.SyncNowRequest(tenant_id=TENANT, account=ACCOUNT, dry_run=True))
            actions = [
                (r.external_id, pb.DryRunAction.Name(r.action).removeprefix("DRY_RUN_ACTION_")) for r in answer.records
            ]
            assert actions == [
                ("o-1", "LOCKED"),
                ("o-2", "UNCHANGED"),
                ("o-3", "WOULD_SEND"),
                ("o-4", "NOT_IMPORTED"),
                ("o-5", "INVALID"),
                ("", "IGNORED"),
            ]
            locked, _, _, rule, bad, note = answer.records
            assert locked.detail.startswith("Changed in Reservations Fake after sync: total 120.00 → 90.00.")
            assert [(f.code, f.sentence) for f in rule.rule_failures] == [("NOT_PAID", "the order is not paid")]
            assert bad.detail == "lines: a line has no SKU" and note.detail == "a note, not an order"
            assert (answer.pages, answer.stopped_early) == (2, False)
            assert answer.message.startswith("dry run of 2 page(s): ")
            capsys.readouterr()
            assert await run_cli(monkeypatch, ACME_READER, addr, "sync-now", ACCOUNT, "--dry-run") == 0
            printed = capsys.readouterr().out
            assert (
                "O-3            would_send" in printed and "    NOT_PAID               the order is not paid" in printed
            )
            assert "nothing was committed or sent" in printed
        async with intake_api(pool, database, tenants, max_pages=1) as addr:
            async with insecure_channel(addr) as channel:
                stub = authorized(pb_grpc.OrderIntakeServiceStub(channel), ACME_READER)
                short = await stub.SyncNow(pb.SyncNowRequest(tenant_id=TENANT, account=ACCOUNT, dry_run=True))
            assert (short.pages, short.stopped_early, len(short.records)) == (1, True, 3)
            assert "stopped after 1 pages with more to fetch" in short.message
        assert await _state(pool) == before  # nothing committed, the cursor where it was


async def _state(pool: asyncpg.Pool) -> dict[str, object]:
    state: dict[str, object] = dict(await recorded(pool))
    for table in ("handover_acks", "import_mails", "processed_events"):
        state[table] = await pool.fetchval(f"SELECT count(*) FROM {table}")
    row = await pool.fetchrow("SELECT cursor, next_poll_at, orders_pulled FROM pull_cursors")
    state["cursor"] = tuple(row) if row else None
    state["orders"] = [
        tuple(r) for r in await pool.fetch("SELECT order_id, latest_revision, status FROM orders ORDER BY 1")
    ]
    return state
