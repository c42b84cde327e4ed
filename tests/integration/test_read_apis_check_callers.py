"""Every service's read API answers only callers granted the tenant: real gRPC, real Postgres.

One suite over intake's (customer details), routing's and writeback's read APIs, each served
with the callers of libs.platform.testing; dispatch's APIs, whose admin actions also need the
operator role, have their own suite beside the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from ordersync.compliance.v1 import compliance_service_pb2, compliance_service_pb2_grpc
from ordersync.intake.v1 import intake_service_pb2, intake_service_pb2_grpc
from ordersync.tracking.v1 import tracking_service_pb2, tracking_service_pb2_grpc

import compliance_routing.app
import order_intake.app
import tracking_writeback.app
from compliance_routing.api.grpc import ComplianceRoutingServicer
from libs.platform.auth import bearer
from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import bind
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, access_for_tests, serving
from order_intake.api.grpc import OrderIntakeServicer
from tracking_writeback.api.grpc import TrackingWritebackServicer

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


@dataclass(frozen=True)
class ReadApi:
    """One read API: its schema, how to serve it, and one call per method for tenant acme."""

    schema: str
    migrations: Path
    pb: object
    pb_grpc: object
    service: str
    servicer: Callable
    requests: dict[str, object]  # method name -> request for tenant "acme"
    answered: Callable  # (method, answer or refusal) -> bool: the call got past the check


def _not_found(_method, outcome) -> bool:
    return isinstance(outcome, grpc.aio.AioRpcError) and outcome.code() == grpc.StatusCode.NOT_FOUND


def _intake_answered(method, outcome) -> bool:
    if method == "ListOrders":
        return not isinstance(outcome, Exception) and list(outcome.records) == []
    return _not_found(method, outcome)


APIS = {
    "intake": ReadApi(
        "order_intake",
        order_intake.app.MIGRATIONS,
        intake_service_pb2,
        intake_service_pb2_grpc,
        "OrderIntakeService",
        OrderIntakeServicer,
        {
            "GetOrder": intake_service_pb2.GetOrderRequest(tenant_id="acme", order_id="ord_1"),
            "ListOrders": intake_service_pb2.ListOrdersRequest(tenant_id="acme"),
        },
        _intake_answered,
    ),
    "routing": ReadApi(
        "compliance_routing",
        compliance_routing.app.MIGRATIONS,
        compliance_service_pb2,
        compliance_service_pb2_grpc,
        "ComplianceRoutingService",
        ComplianceRoutingServicer,
        {"GetRoutingDecision": compliance_service_pb2.GetRoutingDecisionRequest(tenant_id="acme", order_id="ord_1")},
        _not_found,
    ),
    "writeback": ReadApi(
        "tracking_writeback",
        tracking_writeback.app.MIGRATIONS,
        tracking_service_pb2,
        tracking_service_pb2_grpc,
        "TrackingWritebackService",
        TrackingWritebackServicer,
        {"GetWriteback": tracking_service_pb2.GetWritebackRequest(tenant_id="acme", order_id="ord_1")},
        _not_found,
    ),
}


@pytest_asyncio.fixture(params=list(APIS))
async def served(request, database):
    """(api, call): `call(method, token)` calls one method of the served API with a token (or none)."""
    api = APIS[request.param]
    await migrate(database, api.schema, api.migrations)
    pool = await create_pool(database, api.schema, 2)
    try:
        binding = bind(api.pb, api.pb_grpc, api.service, api.servicer(pool, access_for_tests()))
        async with serving(binding) as channel:
            stub = getattr(api.pb_grpc, f"{api.service}Stub")(channel)

            def call(method: str, token: str | None):
                return getattr(stub, method)(api.requests[method], metadata=bearer(token), timeout=5)

            yield api, call
    finally:
        await pool.close()


async def outcome_of(call):
    """The answer, or the gRPC error the call ended with."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        return error


async def test_a_call_without_a_known_token_is_unauthenticated(served):
    api, call = served
    for method in api.requests:
        for token in (None, "guessed-token"):
            error = await outcome_of(call(method, token))
            assert isinstance(error, grpc.aio.AioRpcError), method
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED, method
            assert "guessed-token" not in error.details()


async def test_another_tenants_caller_is_refused_naming_the_tenant_not_the_token(served):
    api, call = served
    for method in api.requests:
        error = await outcome_of(call(method, GLOBEX_OPERATOR))
        assert isinstance(error, grpc.aio.AioRpcError), method
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, method
        assert error.details() == "caller 'ops@globex.example' is not granted tenant 'acme'"


async def test_a_caller_granted_the_tenant_is_answered(served):
    api, call = served
    for method in api.requests:
        assert api.answered(method, await outcome_of(call(method, ACME_READER))), method  # past the check
