"""ListPullCursors over real gRPC on real Postgres: a tenant's poll state, for its callers only."""

from __future__ import annotations

import grpc
import pytest
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import bind
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, access_for_tests, authorized, serving
from order_intake.api.grpc import OrderIntakeServicer
from order_intake.app import MIGRATIONS
from order_intake.storage import pulls

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


async def test_a_tenants_pull_cursors_are_listed_with_their_state_for_its_callers_only(database):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 2)
    try:
        await pulls.ensure_rows(pool, [("acme", "shop", "pullfake"), ("acme", "outlet", "pullfake")])
        await pulls.ensure_rows(pool, [("globex", "shop", "pullfake")])
        [lease] = await pulls.claim_due(pool, "replica-a", 30, 1, [("acme", "shop", "pullfake")])
        await pulls.release(pool, lease.key, "replica-a", next_poll_in_s=60, failed=True, last_error="UNAVAILABLE: x")
        await pool.execute(
            'UPDATE pull_cursors SET cursor = \'c-9\', unacknowledged = \'[{"order_id": "o", "ack_token": "t"}]\''
            " WHERE tenant_id = 'acme' AND account = 'shop'"
        )
        binding = bind(pb, pb_grpc, "OrderIntakeService", OrderIntakeServicer(pool, access_for_tests()))
        async with serving(binding) as channel:
            stub = pb_grpc.OrderIntakeServiceStub(channel)
            answer = await authorized(stub, ACME_READER).ListPullCursors(pb.ListPullCursorsRequest(tenant_id="acme"))
            assert [c.account for c in answer.cursors] == ["outlet", "shop"]
            shop = answer.cursors[1]
            assert (shop.connector, shop.cursor, shop.failures, shop.last_error) == (
                "pullfake",
                "c-9",
                1,
                "UNAVAILABLE: x",
            )
            assert (shop.lease_owner, shop.HasField("lease_expire_time"), shop.unacknowledged_count) == ("", False, 1)
            assert shop.HasField("next_poll_time") and not shop.HasField("last_poll_time")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await authorized(stub, GLOBEX_OPERATOR).ListPullCursors(pb.ListPullCursorsRequest(tenant_id="acme"))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await stub.ListPullCursors(pb.ListPullCursorsRequest(tenant_id="acme"), timeout=5)
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await pool.close()
