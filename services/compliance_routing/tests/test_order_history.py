"""Routing's OrderHistoryService over real gRPC on real Postgres: the decision as a step (no route a
failing one with what to do), an order it never saw as no steps; UNAUTHENTICATED, PERMISSION_DENIED."""

from __future__ import annotations

import grpc
import pytest
from ordersync.ops.v1 import order_history_pb2 as pb

from compliance_routing.app import MIGRATIONS
from compliance_routing.history import RoutingHistory
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, authorized, refusals, serving_history

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


async def test_the_decision_is_a_step_and_other_callers_are_refused(database):
    async with serving_history(database, "compliance_routing", MIGRATIONS, RoutingHistory()) as (pool, stub):
        await pool.execute(
            "INSERT INTO decisions (order_id, tenant_id, outcome, provider, reason_code, reason, revision, route, rule,"
            " provider_account) VALUES"
            " ('ord_1', 'acme', 'route', 'vinoshipper', 'ROUTED', 'CA ships from Napa', 'r1', 'west', 'ship_to_states',"
            "  'vs-main'),"
            " ('ord_2', 'acme', 'not_required', '', 'NO_PROVIDER', 'no route matches', 'r1', '', 'no_route', '')"
        )
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
        assert await refusals(stub, "GetOrderHistory", request) == (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
