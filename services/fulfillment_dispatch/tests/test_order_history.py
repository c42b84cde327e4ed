"""Dispatch's OrderHistoryService over real gRPC on real Postgres: each activity line a step (an
attempt, a shipment change, an operator's action), the current status's reason code and the
order's trace id on them, a refused send failing with the retry command; the answer codes."""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio
from ordersync.ops.v1 import order_history_pb2 as pb

from fulfillment_dispatch.app import MIGRATIONS
from fulfillment_dispatch.history import DispatchHistory
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, authorized, refusals, serving_history

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest_asyncio.fixture
async def history(database):
    """(pool, stub): dispatch's schema and its OrderHistoryService."""
    async with serving_history(database, "fulfillment_dispatch", MIGRATIONS, DispatchHistory()) as served:
        yield served


async def _seed(pool, status: str, reason_code: str, activity: list[tuple[str, str, str]]) -> None:
    await pool.execute(
        "INSERT INTO dispatches (order_id, tenant_id, provider, status, reason_code, reason, provider_order_number,"
        " order_proto, channel, external_id, external_number, traceparent)"
        " VALUES ('ord_1', 'acme', 'vinoshipper', $1, $2, 'refused', 'VS-1042', '', 'commerce7', 'c7-1', '1042', $3)",
        status,
        reason_code,
        TRACEPARENT,
    )
    for kind, actor, message in activity:
        await pool.execute(
            "INSERT INTO dispatch_activity (order_id, tenant_id, kind, actor, message) VALUES ('ord_1', 'acme', $1, $2, $3)",
            kind,
            actor,
            message,
        )


async def test_a_refused_send_is_a_failing_step_with_the_retry_command(history):
    pool, stub = history
    await _seed(
        pool,
        "failed",
        "INVALID_ADDRESS",
        [
            ("queued", "ordersync", "routed to provider; queued for sending"),
            ("retry_wait", "ordersync", "attempt 1: provider unavailable"),
            ("failed", "ordersync", "attempt 2: refused: invalid address"),
        ],
    )
    answer = await authorized(stub, ACME_READER).GetOrderHistory(
        pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1")
    )
    assert [(s.kind, s.status, s.reason_code, s.failed) for s in answer.steps] == [
        ("provider_attempt", "queued", "", False),
        ("provider_attempt", "retry_wait", "", False),
        ("provider_attempt", "failed", "INVALID_ADDRESS", True),
    ]
    assert {s.trace_id for s in answer.steps} == {"0af7651916cd43dd8448eb211c80319c"}
    assert "ordersync orders --tenant acme --token-env ORDERSYNC_TOKEN retry ord_1 --reason" in answer.steps[2].action
    request = pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1")
    assert await refusals(stub, "GetOrderHistory", request) == (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    other = await authorized(stub, GLOBEX_OPERATOR).GetOrderHistory(
        pb.GetOrderHistoryRequest(tenant_id="globex", order="ord_1")
    )
    assert list(other.steps) == []


async def test_shipments_and_operator_actions_are_their_own_steps_and_an_unmapped_carrier_names_mapping(history):
    pool, stub = history
    await _seed(
        pool,
        "failed",
        "UNMAPPED_CARRIER",
        [
            ("failed", "ordersync", "refused: carrier code FEDX unknown"),
            ("operator_retry", "jane@acme.example", "mapped FEDX"),
            ("sent", "ordersync", "sent as VS-1042"),
            ("shipment_shipped", "ordersync", "shipped with UPS 1Z"),
            ("failed", "ordersync", "refused again: carrier code FEDX unknown"),
        ],
    )
    answer = await authorized(stub, ACME_READER).GetOrderHistory(
        pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1")
    )
    assert [(s.kind, s.status) for s in answer.steps] == [
        ("provider_attempt", "failed"),
        ("operator_action", "operator_retry"),
        ("provider_attempt", "sent"),
        ("shipment", "shipped"),
        ("provider_attempt", "failed"),
    ]
    assert "jane@acme.example" in answer.steps[1].message
    # the current status's reason code is the latest failure's, not the first's
    assert (answer.steps[0].reason_code, answer.steps[4].reason_code) == ("", "UNMAPPED_CARRIER")
    assert "ordersync mapping add acme" in answer.steps[4].action
