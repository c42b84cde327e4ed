"""Intake's reconciliation on real Postgres against the Commerce7 simulator over real HTTP: orders
whose webhooks were lost are found by listing the window and taken through the webhook's writer
once; a lost newer revision that changes the order is taken too; a dry run takes nothing; a second
run finds nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from libs.connectors.base.contract import ClientResources
from libs.connectors.registry import load
from libs.platform.accounts import AccountClients
from libs.platform.db import create_pool, migrate
from libs.platform.reconciliation import (
    HEALED,
    WOULD_HEAL,
    ReconcileScheduler,
    ReconcileSettings,
    RunReport,
    Window,
    ensure_rows,
    reconcile,
)
from libs.platform.tenants import TenantDirectory
from order_intake.app import MIGRATIONS
from order_intake.domain.intake import InputLimits
from order_intake.reconcile import IntakeReconciler
from order_intake.revisions import ORDERS_TOPIC, RevisionBuilder
from order_intake.storage.orders import RevisionWriter
from tests.e2e.conftest import web_order
from tests.simulators.commerce7 import Commerce7Config, create_app
from tests.simulators.common import SimulatorServer

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

TENANT, SLUG = "acme", "acme-store"
TENANTS_TOML = """
[tenants.acme.accounts.store]
connector = "commerce7"
tenant_slug = "acme-store"
app_id = "app"
app_secret = "file:{folder}/secret"
webhook_user = "hook"
webhook_password = "file:{folder}/secret"
base_url = "{base_url}/v1"
"""


@pytest_asyncio.fixture
async def world(database):
    """(reconciler, pool, simulator URL): a Commerce7 store with no webhook URL, so every order's
    webhook is lost."""
    config = Commerce7Config.from_dict({"tenants": [{"tenant_id": SLUG, "app_id": "app", "app_secret": "s3cret"}]})
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 4)
    writer = RevisionWriter(pool, max_batch=50)
    await writer.start()
    registry = load()
    async with SimulatorServer(create_app(config)) as server:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "secret").write_text("s3cret")
            toml = Path(folder) / "tenants.toml"
            toml.write_text(TENANTS_TOML.format(folder=folder, base_url=server.base_url))
            tenants = TenantDirectory.load(toml, registry)
            accounts = AccountClients(tenants, registry, ClientResources())
            builder = RevisionBuilder(ORDERS_TOPIC, "order-intake", InputLimits())
            try:
                yield IntakeReconciler(pool, tenants, accounts, writer, builder), pool, server.base_url
            finally:
                await accounts.stop()
                await writer.stop()
                await pool.close()


async def run(world, *, dry_run: bool = False) -> RunReport:
    reconciler, pool, _ = world
    report = RunReport(TENANT, "store", reconciler.service, "on_demand", dry_run, Window.last(3600))
    return await reconcile(pool, reconciler, report)


async def place(base_url: str, **changes) -> dict:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.post(f"{base_url}/_sim/orders", json={"tenant_id": SLUG, "order": web_order(**changes)})
        response.raise_for_status()
        return response.json()["order"]


async def test_lost_orders_are_taken_once_through_the_webhooks_writer(world):
    reconciler, pool, base_url = world
    assert reconciler.accounts(TENANT) == ["store"]
    placed = [await place(base_url) for _ in range(3)]

    dry = await run(world, dry_run=True)
    assert dry.compared == 3
    assert [(f.kind, f.outcome) for f in dry.findings] == [("lost_order", WOULD_HEAL)] * 3
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0

    healed = await run(world)
    assert sorted(f.channel_order_id for f in healed.findings) == sorted(p["id"] for p in placed)
    assert {(f.kind, f.outcome) for f in healed.findings} == {("lost_order", HEALED)}
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE status = 'accepted'") == 3
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 3
    sources = await pool.fetch("SELECT DISTINCT source, outcome FROM webhook_receipts")
    assert [(r["source"], r["outcome"]) for r in sources] == [("reconcile", "accepted")]

    again = await run(world)
    assert again.compared == 3 and again.findings == []
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 3


async def test_a_lost_revision_that_changes_the_order_is_taken(world):
    _, pool, base_url = world
    placed = await place(base_url)
    await run(world)
    async with httpx.AsyncClient(trust_env=False) as http:
        address = {**placed["shipTo"], "address": "12 Vine Rd"}
        patch = {"order": {"shipTo": address}, "webhook": False}
        (await http.patch(f"{base_url}/_sim/orders/{placed['id']}", json=patch)).raise_for_status()

    report = await run(world)
    assert [(f.kind, f.outcome) for f in report.findings] == [("lost_revision", HEALED)]
    assert await pool.fetchval("SELECT revision_count FROM orders") == 2
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2


async def test_an_unreachable_channel_is_reported(world):
    _, _, base_url = world
    async with httpx.AsyncClient(trust_env=False) as http:
        fault = {"route": "list_orders", "status": 401, "count": 1}
        await http.post(f"{base_url}/_sim/faults", json=fault)
    report = await run(world)
    assert [(f.kind, f.outcome) for f in report.findings] == [("unreachable", "reported")]


async def test_an_account_not_configured_is_reported_without_listing(world):
    reconciler, pool, _ = world
    report = RunReport(TENANT, "gone", reconciler.service, "on_demand", False, Window.last(3600))
    await reconcile(pool, reconciler, report)
    assert [(f.kind, f.outcome) for f in report.findings] == [("unreachable", "reported")]
    assert report.findings[0].reason.startswith("account not configured:") and report.compared == 0


async def test_the_schedule_runs_each_account_once_per_interval_on_one_replica(world):
    reconciler, pool, base_url = world
    await place(base_url)
    settings = ReconcileSettings(interval_s=3600, window_s=3600)
    first, second = (ReconcileScheduler(pool, reconciler, owner=o, settings=settings) for o in ("r1", "r2"))
    await ensure_rows(pool, reconciler.schedule(), 0)  # due now
    # Another replica holds the lease: nobody else runs it.
    await pool.execute("UPDATE reconcile_schedules SET lease_owner = 'r0', lease_until = now() + interval '1 minute'")
    await first.run_once()
    assert await pool.fetchval("SELECT count(*) FROM reconcile_runs") == 0

    await pool.execute("UPDATE reconcile_schedules SET lease_until = now() - interval '1 second'")  # r0 died
    await first.run_once()
    await second.run_once()
    runs = await pool.fetch("SELECT trigger, findings FROM reconcile_runs")
    assert [r["trigger"] for r in runs] == ["scheduled"]
    assert json.loads(runs[0]["findings"])[0]["kind"] == "lost_order"
    row = await pool.fetchrow("SELECT lease_owner, next_run_at - now() AS due_in FROM reconcile_schedules")
    assert row["lease_owner"] is None and row["due_in"].total_seconds() > 3500
