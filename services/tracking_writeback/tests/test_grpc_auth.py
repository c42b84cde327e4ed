"""The read API over writebacks answers only callers granted the tenant: real gRPC, real Postgres."""

import grpc
import pytest
import pytest_asyncio
from ordersync.tracking.v1 import tracking_service_pb2 as pb
from ordersync.tracking.v1 import tracking_service_pb2_grpc as pb_grpc

from libs.platform.auth import bearer
from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import bind
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, access_for_tests, serving
from tracking_writeback.api.grpc import TrackingWritebackServicer
from tracking_writeback.app import MIGRATIONS

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


@pytest_asyncio.fixture
async def ask(database):
    """Ask GetWriteback for an order of tenant acme with a token (or none)."""
    await migrate(database, "tracking_writeback", MIGRATIONS)
    pool = await create_pool(database, "tracking_writeback", 2)
    servicer = TrackingWritebackServicer(pool, access_for_tests())
    try:
        async with serving(bind(pb, pb_grpc, "TrackingWritebackService", servicer)) as channel:
            stub = pb_grpc.TrackingWritebackServiceStub(channel)
            request = pb.GetWritebackRequest(tenant_id="acme", order_id="ord_1")
            yield lambda token: stub.GetWriteback(request, metadata=bearer(token), timeout=5)
    finally:
        await pool.close()


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_a_call_without_a_known_token_is_unauthenticated(ask):
    for token in (None, "guessed-token"):
        error = await refusal(ask(token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "guessed-token" not in error.details()


async def test_another_tenants_caller_is_refused_naming_the_tenant_not_the_token(ask):
    error = await refusal(ask(GLOBEX_OPERATOR))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'ops@globex.example' is not granted tenant 'acme'"


async def test_a_caller_granted_the_tenant_is_answered(ask):
    error = await refusal(ask(ACME_READER))

    assert error.code() == grpc.StatusCode.NOT_FOUND  # past the check, into storage
