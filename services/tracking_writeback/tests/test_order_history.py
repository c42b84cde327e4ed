"""Writeback's OrderHistoryService over real gRPC on real Postgres: each writeback log line a step
(a failed one with what to do), the journey complete once delivered is written back; the answer codes."""

from __future__ import annotations

import grpc
import pytest
from ordersync.ops.v1 import order_history_pb2 as pb

from libs.platform.testing import ACME_READER, authorized, refusals, refused, serving_history
from tracking_writeback.app import MIGRATIONS
from tracking_writeback.history import WritebackHistory

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


async def test_writeback_steps_and_completion_for_the_tenants_callers_only(database):
    async with serving_history(database, "tracking_writeback", MIGRATIONS, WritebackHistory()) as (pool, stub):
        await pool.execute(
            "INSERT INTO writebacks (order_id, tenant_id, channel, external_id, external_number, target_status,"
            " written_status, shipment_proto, status, channel_account, traceparent) VALUES"
            " ('ord_1', 'acme', 'commerce7', 'c7-1', '1042', 'delivered', 'delivered', '', 'written', 'store',"
            "  '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'),"
            " ('ord_2', 'acme', 'commerce7', 'c7-2', '1043', 'shipped', '', '', 'failed', 'store', '')"
        )
        for order_id, kind in [("ord_1", "wanted"), ("ord_1", "written"), ("ord_2", "wanted"), ("ord_2", "failed")]:
            await pool.execute(
                "INSERT INTO writeback_activity (order_id, tenant_id, kind, message) VALUES ($1, 'acme', $2, $3)",
                order_id,
                kind,
                f"{kind} for {order_id}",
            )
        reader = authorized(stub, ACME_READER)
        done = await reader.GetOrderHistory(pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1"))
        assert [(s.kind, s.status, s.failed) for s in done.steps] == [
            ("writeback", "wanted", False),
            ("writeback", "written", False),
        ]
        assert done.complete and done.steps[0].trace_id == "0af7651916cd43dd8448eb211c80319c"
        failed = await reader.GetOrderHistory(pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_2"))
        assert not failed.complete and failed.steps[-1].failed and "ordersync reconcile acme" in failed.steps[-1].action
        request = pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1")
        assert await refusals(stub, "GetOrderHistory", request) == (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
        empty = pb.GetOrderHistoryRequest(tenant_id="acme", order=" ")
        assert await refused(reader.GetOrderHistory(empty)) == grpc.StatusCode.INVALID_ARGUMENT
