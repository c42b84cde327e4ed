"""ConnectionHealthService's servicer over a source that records what it was asked: the caller
and tenant checks, the window (24 hours by default, 0 to 30 days), the rows as protos, and the
answer code of every path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg
import grpc
import pytest
from google.protobuf import duration_pb2
from ordersync.ops.v1 import connection_health_pb2 as pb
from ordersync.ops.v1 import connection_health_pb2_grpc as pb_grpc

from libs.platform.connection_health import SKU, ConnectionHealth, Unmapped, health_binding
from libs.platform.testing import ACME_READER, access_for_tests, authorized, refusals, refused, serving

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]
NO_POOL = cast(asyncpg.Pool, None)  # the source under test reads no database
SEEN = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Recording:
    """A HealthSource answering two accounts, keeping each (tenant, since) it was asked for."""

    def __init__(self):
        self.asked: list[tuple[str, datetime]] = []

    async def connection_health(self, pool, tenant_id: str, since: datetime) -> list[ConnectionHealth]:
        self.asked.append((tenant_id, since))
        few = Unmapped(SKU, "ROSE-6", 1, SEEN - timedelta(hours=1), "ord_9", "vinoshipper")
        many = Unmapped(SKU, "WINE-12", 3, SEEN, "ord_1", "vinoshipper")
        return [
            ConnectionHealth("west", "shipstation"),
            ConnectionHealth(
                "vs", "vinoshipper", oldest_unsent=SEEN, unsent_count=2, attempts=5, failures=4, unmapped=[few, many]
            ),
        ]


def window(**kwargs) -> duration_pb2.Duration:
    span = duration_pb2.Duration()
    span.FromTimedelta(timedelta(**kwargs))
    return span


async def test_a_granted_caller_gets_the_sources_accounts_over_the_window_it_asks():
    source = Recording()
    async with serving(health_binding(NO_POOL, source, access_for_tests(), service="fulfillment-dispatch")) as channel:
        stub = authorized(pb_grpc.ConnectionHealthServiceStub(channel), ACME_READER)
        before = datetime.now(UTC)
        answer = await stub.GetConnectionHealth(pb.GetConnectionHealthRequest(tenant_id="acme"))
        await stub.GetConnectionHealth(pb.GetConnectionHealthRequest(tenant_id="acme", window=window(hours=2)))
        await stub.GetConnectionHealth(pb.GetConnectionHealthRequest(tenant_id="acme", window=window(days=30)))

    assert answer.service == "fulfillment-dispatch"
    assert [c.account for c in answer.connections] == ["vs", "west"]
    vs, west = answer.connections
    assert (vs.unsent_count, vs.attempts, vs.failures) == (2, 5, 4)
    assert vs.oldest_unsent_time.ToDatetime(tzinfo=UTC) == SEEN
    assert [(u.code, u.orders) for u in vs.unmapped] == [("WINE-12", 3), ("ROSE-6", 1)]  # most orders first
    assert not west.HasField("oldest_unsent_time") and not west.HasField("last_poll_time")
    (tenant, default), (_, two_hours), (_, month) = source.asked
    assert tenant == "acme"
    for since, span in [(default, timedelta(hours=24)), (two_hours, timedelta(hours=2)), (month, timedelta(days=30))]:
        assert abs(before - since - span) < timedelta(seconds=30)


async def test_strangers_a_missing_tenant_and_windows_out_of_range_are_refused_before_the_source_is_asked():
    source = Recording()
    async with serving(health_binding(NO_POOL, source, access_for_tests(), service="order-intake")) as channel:
        stub = pb_grpc.ConnectionHealthServiceStub(channel)
        reader = authorized(stub, ACME_READER)
        request = pb.GetConnectionHealthRequest(tenant_id="acme")
        assert await refusals(stub, "GetConnectionHealth", request) == (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
        for bad in (
            pb.GetConnectionHealthRequest(),
            pb.GetConnectionHealthRequest(tenant_id="acme", window=window(seconds=-1)),
            pb.GetConnectionHealthRequest(tenant_id="acme", window=window(days=30, seconds=1)),
        ):
            assert await refused(reader.GetConnectionHealth(bad)) == grpc.StatusCode.INVALID_ARGUMENT
    assert source.asked == []
