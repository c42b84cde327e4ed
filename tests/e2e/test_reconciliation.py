"""Reconciliation on the whole stack, Commerce7 -> Vinoshipper: a lost order webhook and a lost
shipment notice are found and healed once, and a second run finds nothing and changes nothing.

Dispatch's status checks are slowed to an hour here, so only reconciliation can find what the
lost notice did not say.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2
from ordersync.ops.v1 import reconciliation_pb2 as pb
from ordersync.ops.v1 import reconciliation_pb2_grpc as pb_grpc

from libs.platform.testing import authorized
from tests.e2e.conftest import Driver, tenant, web_order
from tests.system.journey import JourneyReader
from tests.system.stack import READER, REPO, Stack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]

TENANT = "mend-cellars"
SENT = "Sent to Vinoshipper"
HEALED, WOULD_HEAL = pb.FINDING_OUTCOME_HEALED, pb.FINDING_OUTCOME_WOULD_HEAL


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def winery(infra, tmp_path_factory):
    spec = tenant(TENANT, prefix="MEND")
    quiet_checks = {"ORDERSYNC_STATUS_CHECK_S": "3600", "ORDERSYNC_STATUS_CHECK_MAX_S": "3600"}
    async with Stack(
        [spec],
        run_dir=tmp_path_factory.mktemp("reconcile"),
        pg_dsn=infra.pg_dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        service_env=quiet_checks,
    ) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses, stack.token(READER)) as reader:
            driver = Driver(stack, reader, TENANT)
            channels = {
                name: grpc.aio.insecure_channel(stack.grpc_address(name))
                for name in ("order_intake", "fulfillment_dispatch")
            }
            driver.reconcilers = channels
            yield driver
            for channel in channels.values():
                await channel.close()
            await driver.close()


def _stub(driver: Driver, service: str, caller: str | None = "operator"):
    stub = pb_grpc.ReconciliationServiceStub(driver.reconcilers[service])
    if caller is None:
        return stub
    token = driver.stack.token(driver.stack.operator(TENANT) if caller == "operator" else caller)
    return authorized(stub, token)


async def _reconcile(driver: Driver, service: str, *, dry_run: bool = False, **fields) -> list:
    request = pb.ReconcileRequest(tenant_id=TENANT, dry_run=dry_run, **fields)
    response = await _stub(driver, service).Reconcile(request, timeout=60)
    return [finding for run in response.runs for finding in run.findings]


async def _lost_order(driver: Driver) -> dict:
    """An order placed in Commerce7 whose Create webhook never reached intake."""
    response = await driver.stack.http.post(
        f"{driver.c7}/_sim/orders", json={"tenant_id": TENANT, "order": web_order(), "webhook": False}
    )
    response.raise_for_status()
    return response.json()["order"]


async def test_a_lost_order_webhook_is_found_and_the_order_reaches_vinoshipper_once(winery):
    driver = winery
    placed = await _lost_order(driver)

    dry = await _reconcile(driver, "order_intake", dry_run=True)
    assert [(f.kind, f.outcome, f.channel_order_id) for f in dry] == [("lost_order", WOULD_HEAL, placed["id"])]
    assert (await driver.journey(placed["id"])).order_id == ""  # a dry run ingests nothing

    healed = await _reconcile(driver, "order_intake")
    assert [(f.kind, f.outcome, f.order_number) for f in healed] == [("lost_order", HEALED, str(placed["orderNumber"]))]
    shown = await driver.wait_for_status(placed["orderNumber"], SENT)
    at_vinoshipper = await driver.provider_order(shown.sync.provider_order_number)
    assert at_vinoshipper["orderNumber"] == shown.sync.provider_order_number
    assert (await driver.provider_stats())["orders_created"] == 1


async def test_a_lost_shipment_notice_is_found_and_written_back_to_commerce7_once(winery):
    driver = winery
    placed = (await driver.place(web_order()))["order"]
    shown = await driver.wait_for_status(placed["orderNumber"], SENT)
    number = shown.sync.provider_order_number
    await driver.provider(number, "ship", trackingNumbers=["1ZMENDSHIP000001"], webhook=False)

    dry = await _reconcile(driver, "fulfillment_dispatch", dry_run=True)
    assert [(f.kind, f.outcome, f.channel_order_id) for f in dry] == [("unrecorded_shipment", WOULD_HEAL, placed["id"])]
    healed = await _reconcile(driver, "fulfillment_dispatch")
    assert [(f.kind, f.outcome, f.channel_order_id) for f in healed] == [("unrecorded_shipment", HEALED, placed["id"])]

    journey = await driver.wait_for(placed["id"], lambda j: j.written_back == "shipped")
    assert journey.tracking == ("1ZMENDSHIP000001",)
    channel = await driver.channel_order(placed["id"])
    assert [f["shipped"]["trackingNumbers"] for f in channel["fulfillments"]] == [["1ZMENDSHIP000001"]]


async def test_reconciling_again_finds_nothing_and_changes_nothing(winery):
    driver = winery
    created = (await driver.provider_stats())["orders_created"]
    for service in ("order_intake", "fulfillment_dispatch"):
        assert await _reconcile(driver, service) == []
    assert (await driver.provider_stats())["orders_created"] == created
    runs = await _stub(driver, "order_intake").ListReconciliationRuns(
        pb.ListReconciliationRunsRequest(tenant_id=TENANT)
    )
    assert [run.trigger for run in runs.runs][:3] == ["on_demand"] * 3
    assert [len(run.findings) for run in runs.runs][:3] == [0, 1, 1]  # newest first: again, healed, dry run


async def test_the_command_runs_both_services_and_exits_zero_when_nothing_is_found(winery):
    driver = winery
    env = {
        **os.environ,
        "ORDERSYNC_INTAKE_ADDR": driver.stack.grpc_address("order_intake"),
        "ORDERSYNC_ADMIN_ADDR": driver.stack.grpc_address("fulfillment_dispatch"),
        "ORDERSYNC_TOKEN": driver.stack.token(driver.stack.operator(TENANT)),
    }
    command = [sys.executable, "-m", "libs.cli", "reconcile", TENANT, "--window", "2h", "--json"]
    process = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    runs = json.loads(out)
    assert {run["service"] for run in runs} == {"order-intake", "fulfillment-dispatch"}
    assert all(not run.get("findings") for run in runs)


async def _refusal(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def test_reconcile_answers_only_callers_of_the_tenant_and_heals_only_for_operators(winery):
    driver = winery
    request = pb.ReconcileRequest(tenant_id=TENANT)
    for service in ("order_intake", "fulfillment_dispatch"):
        assert await _refusal(_stub(driver, service, caller=None).Reconcile(request)) == grpc.StatusCode.UNAUTHENTICATED
        # The journey reader may read every tenant, yet a run that heals needs the operator role.
        reader = _stub(driver, service, caller=READER)
        assert await _refusal(reader.Reconcile(request)) == grpc.StatusCode.PERMISSION_DENIED
        dry = await reader.Reconcile(pb.ReconcileRequest(tenant_id=TENANT, dry_run=True))
        assert len(dry.runs) == 1
        short = pb.ReconcileRequest(tenant_id=TENANT, window=duration_pb2.Duration(seconds=10))
        assert await _refusal(_stub(driver, service).Reconcile(short)) == grpc.StatusCode.INVALID_ARGUMENT
        unknown = pb.ReconcileRequest(tenant_id=TENANT, account="nowhere")
        assert await _refusal(_stub(driver, service).Reconcile(unknown)) == grpc.StatusCode.NOT_FOUND
