"""Intake's read API (customer details) answers only callers granted the tenant: real gRPC, real Postgres."""

import grpc
import pytest
import pytest_asyncio
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.platform.auth import bearer
from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import bind
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, access_for_tests, serving
from order_intake.api.grpc import OrderIntakeServicer
from order_intake.app import MIGRATIONS

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


@pytest_asyncio.fixture
async def stub(database):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 2)
    servicer = OrderIntakeServicer(pool, access_for_tests())
    try:
        async with serving(bind(pb, pb_grpc, "OrderIntakeService", servicer)) as channel:
            yield pb_grpc.OrderIntakeServiceStub(channel)
    finally:
        await pool.close()


def calls(stub):
    return {
        "GetOrder": lambda token: stub.GetOrder(
            pb.GetOrderRequest(tenant_id="acme", order_id="ord_1"), metadata=bearer(token), timeout=5
        ),
        "ListOrders": lambda token: stub.ListOrders(
            pb.ListOrdersRequest(tenant_id="acme"), metadata=bearer(token), timeout=5
        ),
    }


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


@pytest.mark.parametrize("method", ["GetOrder", "ListOrders"])
async def test_a_call_without_a_known_token_is_unauthenticated(stub, method):
    for token in (None, "guessed-token"):
        error = await refusal(calls(stub)[method](token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "guessed-token" not in error.details()


@pytest.mark.parametrize("method", ["GetOrder", "ListOrders"])
async def test_another_tenants_caller_is_refused_naming_the_tenant_not_the_token(stub, method):
    error = await refusal(calls(stub)[method](GLOBEX_OPERATOR))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'ops@globex.example' is not granted tenant 'acme'"


async def test_a_caller_granted_the_tenant_is_answered(stub):
    missing = await refusal(calls(stub)["GetOrder"](ACME_READER))
    listed = await calls(stub)["ListOrders"](ACME_READER)

    assert missing.code() == grpc.StatusCode.NOT_FOUND  # past the check, into storage
    assert list(listed.records) == []
