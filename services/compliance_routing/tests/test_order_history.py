"""Routing's OrderHistoryService over real gRPC on real Postgres: the decision as a step (no route a
failing one with what to do), an order it never saw as no steps; UNAUTHENTICATED, PERMISSION_DENIED."""

from __future__ import annotations

import grpc
import pytest
from ordersync.ops.v1 import order_history_pb2 as pb
from ordersync.ops.v1 import order_history_pb2_grpc as pb_grpc

from compliance_routing.app import MIGRATIONS
from compliance_routing.history import RoutingHistory
from libs.platform.db import create_pool, migrate
from libs.platform.order_history import history_binding
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, access_for_tests, authorized, serving

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


async def test_the_decision_is_a_step_and_other_callers_are_refused(database):
    await migrate(database, "compliance_routing", MIGRATIONS)
    pool = await create_pool(database, "compliance_routing", 2)
    try:
        await pool.execute(
            "INSERT INTO decisions (order_id, tenant_id, outcome, provider, reason_code, reason, revision, route, rule,"
            " provider_account) VALUES"
            " ('ord_1', 'acme', 'route', 'vinoshipper', 'ROUTED', 'CA ships from Napa', 'r1', 'west', 'ship_to_states',"
            "  'vs-main'),"
            " ('ord_2', 'acme', 'not_required', '', 'NO_PROVIDER', 'no route matches', 'r1', '', 'no_route', '')"
        )
        async with serving(history_binding(pool, RoutingHistory(), access_for_tests())) as channel:
            stub = pb_grpc.OrderHistoryServiceStub(channel)
            reader = authorized(stub, ACME_READER)
            routed = await reader.GetOrderHistory(pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1"))
            [step] = routed.steps
            assert (step.kind, step.status, step.reason_code, step.failed) == (
                "routing_decision",
                "route",
                "ROUTED",
                False,
            )
            assert "vinoshipper account vs-main by route west (rule ship_to_states)" in step.message
            unrouted = await reader.GetOrderHistory(pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_2"))
            assert unrouted.steps[0].failed and "route" in unrouted.steps[0].action
            never = await reader.GetOrderHistory(pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_9"))
            assert (never.order_id, list(never.steps)) == ("", [])
            other = await authorized(stub, GLOBEX_OPERATOR).GetOrderHistory(
                pb.GetOrderHistoryRequest(tenant_id="globex", order="ord_1")
            )
            assert list(other.steps) == []  # acme's decision is not globex's
            request = pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1")
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await stub.GetOrderHistory(request, timeout=5)
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await authorized(stub, GLOBEX_OPERATOR).GetOrderHistory(request)
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await pool.close()
