"""ListPullCursors over real gRPC on real Postgres: a tenant's poll state, for its callers only."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import GrpcServer, bind, insecure_channel
from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, access_for_tests, authorized, serving
from order_intake import cli
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


async def test_acknowledgements_awaiting_handover_are_counted_for_operators_over_grpc_and_the_cli(
    database, monkeypatch, capsys
):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 2)
    shop = pulls.AccountKey("acme", "shop")
    try:
        await pulls.ensure_rows(pool, [("acme", "shop", "groupon")])
        async with pool.acquire() as conn:
            acks = [pulls.PendingAck(f"o-{n}", f"t-{n}") for n in range(1, 5)]
            await pulls.await_handover(conn, shop, acks)
            await pulls.handed_over(conn, ["o-1", "o-2"])
        await pulls.handovers_acknowledged(pool, [acks[0]])
        server = GrpcServer(
            [bind(pb, pb_grpc, "OrderIntakeService", OrderIntakeServicer(pool, access_for_tests()))],
            host="127.0.0.1",
            port=0,
        )
        await server.start()
        try:
            async with insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = authorized(pb_grpc.OrderIntakeServiceStub(channel), ACME_READER)
                [cursor] = (await stub.ListPullCursors(pb.ListPullCursorsRequest(tenant_id="acme"))).cursors
            # o-1 told, o-2 handed over and owed to the channel, o-3 and o-4 not at the provider yet
            assert (cursor.awaiting_handover_count, cursor.handed_over_unacknowledged_count) == (2, 1)
            monkeypatch.setenv("ORDERSYNC_INTAKE_TOKEN", ACME_READER)
            argv = ["--addr", f"127.0.0.1:{server.port}", "--tenant", "acme", "accounts"]
            assert await asyncio.to_thread(cli.main, argv) == 0
        finally:
            await server.stop(0)
        printed = capsys.readouterr().out
        assert "shop (groupon)" in printed
        assert "0 committed, 2 awaiting handover, 1 handed over not yet acknowledged" in printed
    finally:
        await pool.close()
