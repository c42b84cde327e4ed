"""Dispatch's reconciliation on real Postgres with the fake batch provider: a sent order missing at
the provider is queued again under its number, a shipment never noticed is recorded with its
ShipmentUpdated, a dry run changes nothing, a second run finds nothing; and ReconciliationService
over real gRPC answers with the usual codes."""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2
from ordersync.common.v1 import shipment_pb2
from ordersync.ops.v1 import reconciliation_pb2 as pb
from ordersync.ops.v1 import reconciliation_pb2_grpc as pb_grpc

from fulfillment_dispatch.reconcile import DispatchReconciler
from libs.platform.auth import bearer
from libs.platform.grpc_server import bind
from libs.platform.reconciliation import (
    HEALED,
    WOULD_HEAL,
    ReconcileSettings,
    ReconciliationServicer,
    RunReport,
    Window,
    reconcile,
)
from libs.platform.tenants import Tenant, TenantDirectory
from libs.platform.testing import ACME_OPERATOR, ACME_READER, GLOBEX_OPERATOR, access_for_tests, serving
from services.fulfillment_dispatch.tests.fake_provider import TENANT, recorder
from services.fulfillment_dispatch.tests.test_status_checks_and_actions import row_of, sent_at_vendor, shipment_events

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def requeued() -> list[bool]:
    return []


@pytest.fixture
def reconciler(pool, hub, requeued) -> DispatchReconciler:
    tenants = TenantDirectory({TENANT: Tenant(TENANT, hub.tenant_accounts, ())})
    return DispatchReconciler(
        pool, tenants, hub.accounts, recorder(pool, hub.registry), on_requeued=lambda: requeued.append(True)
    )


async def run(pool, reconciler, *, dry_run: bool = False) -> RunReport:
    report = RunReport(TENANT, "batch", reconciler.service, "on_demand", dry_run, Window.last(3600))
    return await reconcile(pool, reconciler, report)


async def test_missing_and_unnoticed_orders_are_healed_once_and_a_dry_run_changes_nothing(
    pool, hub, reconciler, requeued
):
    shipped = await sent_at_vendor(pool, hub, "1001")
    hub.vendor.orders[shipped] = shipment_pb2.Shipment(
        status=shipment_pb2.SHIPMENT_STATUS_SHIPPED, tracking_numbers=["1ZREC0001"]
    )
    missing = await sent_at_vendor(pool, hub, "1002")
    del hub.vendor.orders[missing]
    await sent_at_vendor(pool, hub, "1003")  # at the provider, nothing new

    dry = await run(pool, reconciler, dry_run=True)
    assert dry.compared == 3
    assert sorted((f.kind, f.outcome, f.order_number) for f in dry.findings) == [
        ("missing_at_provider", WOULD_HEAL, "1002"),
        ("unrecorded_shipment", WOULD_HEAL, "1001"),
    ]
    assert (await row_of(pool, "1002"))["status"] == "sent" and (await row_of(pool, "1001"))["shipment_status"] == ""
    assert await shipment_events(pool) == [] and requeued == []

    healed = await run(pool, reconciler)
    assert sorted((f.kind, f.outcome, f.order_number) for f in healed.findings) == [
        ("missing_at_provider", HEALED, "1002"),
        ("unrecorded_shipment", HEALED, "1001"),
    ]
    resend = await row_of(pool, "1002")
    assert (resend["status"], resend["provider_order_number"]) == ("sending", missing)  # same number: no twin
    assert requeued == [True]
    assert (await row_of(pool, "1001"))["shipment_status"] == "shipped"
    [event] = await shipment_events(pool)
    assert list(event.shipment.tracking_numbers) == ["1ZREC0001"]

    again = await run(pool, reconciler)
    assert again.findings == []
    assert len(await shipment_events(pool)) == 1
    assert await pool.fetchval("SELECT count(*) FROM reconcile_runs WHERE tenant_id = $1", TENANT) == 3


async def test_an_order_the_provider_cannot_read_back_is_reported(pool, hub, reconciler):
    await sent_at_vendor(pool, hub, "1004")
    hub.tenant_accounts.pop("batch")
    report = await run(pool, reconciler)
    assert [(f.kind, f.outcome) for f in report.findings] == [("unreachable", "reported")]


@pytest_asyncio.fixture
async def stub(pool, reconciler):
    servicer = ReconciliationServicer(pool, reconciler, access_for_tests(), ReconcileSettings())
    async with serving(bind(pb, pb_grpc, "ReconciliationService", servicer)) as channel:
        yield pb_grpc.ReconciliationServiceStub(channel)


async def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code()


async def test_the_service_answers_callers_of_the_tenant_and_heals_only_for_operators(stub, pool, hub):
    await sent_at_vendor(pool, hub, "1005")
    request = pb.ReconcileRequest(tenant_id=TENANT, account="batch")
    response = await stub.Reconcile(request, metadata=bearer(ACME_OPERATOR), timeout=10)
    assert [(run.account, run.compared, len(run.findings)) for run in response.runs] == [("batch", 1, 0)]
    listed = await stub.ListReconciliationRuns(
        pb.ListReconciliationRunsRequest(tenant_id=TENANT), metadata=bearer(ACME_READER), timeout=10
    )
    assert [run.trigger for run in listed.runs] == ["on_demand"]

    assert await _code(stub.Reconcile(request, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
    assert (
        await _code(stub.Reconcile(request, metadata=bearer(ACME_READER), timeout=10))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        await _code(stub.Reconcile(request, metadata=bearer(GLOBEX_OPERATOR), timeout=10))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    dry = pb.ReconcileRequest(tenant_id=TENANT, account="batch", dry_run=True)
    assert len((await stub.Reconcile(dry, metadata=bearer(ACME_READER), timeout=10)).runs) == 1
    for seconds in (10, 90 * 86400):
        bad = pb.ReconcileRequest(tenant_id=TENANT, window=duration_pb2.Duration(seconds=seconds))
        assert (
            await _code(stub.Reconcile(bad, metadata=bearer(ACME_OPERATOR), timeout=10))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
    unknown = pb.ReconcileRequest(tenant_id=TENANT, account="nowhere")
    assert await _code(stub.Reconcile(unknown, metadata=bearer(ACME_OPERATOR), timeout=10)) == grpc.StatusCode.NOT_FOUND
