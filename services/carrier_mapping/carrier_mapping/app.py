"""Carrier mapping wiring: schema, pool, the code-table snapshot and its change feed, and gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from carrier_mapping.api.grpc import CarrierMappingServicer
from carrier_mapping.config import CarrierMappingSettings
from carrier_mapping.storage.codes import CodeTableSnapshot
from carrier_mapping.storage.mappings import MappingStore
from libs.platform import metrics
from libs.platform.grpc_server import GrpcServer, bind
from libs.platform.health import HealthMonitor
from libs.platform.runtime import PoolComponent, prepare, readiness
from libs.platform.service import Component, ComponentGroup, LazyComponent

MIGRATIONS = Path(__file__).parent / "migrations"


class CarrierMappingApp(ComponentGroup):
    """The service's components in start order: pool, code-table snapshot, gRPC server.

    Names the snapshot and the server so callers (tests, benchmarks) can force a refresh and
    find the port the OS assigned when ORDERSYNC_GRPC_PORT is 0.
    """

    def __init__(
        self,
        pool: PoolComponent,
        health: HealthMonitor,
        codes: LazyComponent[CodeTableSnapshot],
        grpc_server: LazyComponent[GrpcServer],
        observed: Sequence[Component] = (),
    ):
        super().__init__([pool, *observed, health, codes, grpc_server])
        self.codes = codes
        self.grpc_server = grpc_server

    @property
    def snapshot(self) -> CodeTableSnapshot:
        """The running code-table snapshot; only while started."""
        return self.codes.component

    @property
    def grpc_port(self) -> int:
        """The port gRPC listens on; only while started."""
        return self.grpc_server.component.port

    async def stop(self) -> None:
        # End WatchChanges streams first: the server's graceful stop would otherwise wait its
        # whole grace period for streams that never end by themselves.
        if self.codes.started:
            self.codes.component.feed.close()
        await super().stop()


async def build(settings: CarrierMappingSettings) -> CarrierMappingApp:
    """Migrate the schema and return the service's components, not yet started."""
    platform = settings.platform
    # No server-side gRPC spans: the OpenTelemetry interceptor cost a third of the unary
    # throughput (docs/benchmarks.md). Callers' client spans still time every call, and
    # Postgres work (writes, reloads) is still traced.
    await prepare(platform, MIGRATIONS, grpc_server_spans=False)
    pool = PoolComponent(platform)
    health = readiness(pool)
    # Writers NOTIFY on a channel named after the schema, so services (and tests) sharing a
    # database in different schemas never hear each other's changes.
    channel = platform.db_schema
    codes = LazyComponent(lambda: CodeTableSnapshot(pool.pool, refresh_s=settings.refresh_s, channel=channel))

    def grpc_server() -> GrpcServer:
        servicer = CarrierMappingServicer(codes.component, MappingStore(pool.pool, channel), settings.callers)
        binding = bind(pb, pb_grpc, "CarrierMappingService", servicer)
        return GrpcServer([binding], port=platform.grpc_port, health=health, tls=platform.grpc_server_tls)

    return CarrierMappingApp(
        pool, health, codes, LazyComponent(grpc_server), observed=metrics.metrics_components(platform, pool)
    )
