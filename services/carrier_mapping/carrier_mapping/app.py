"""Carrier mapping wiring: schema, pool, the refreshed code-table snapshot, and gRPC."""

from __future__ import annotations

from pathlib import Path

from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from carrier_mapping.api.grpc import CarrierMappingServicer
from carrier_mapping.config import CarrierMappingSettings
from carrier_mapping.storage.codes import CodeTableSnapshot
from libs.platform.grpc_server import GrpcServer, bind
from libs.platform.runtime import PoolComponent, prepare
from libs.platform.service import ComponentGroup, LazyComponent

MIGRATIONS = Path(__file__).parent / "migrations"


class CarrierMappingApp(ComponentGroup):
    """The service's components in start order: pool, code-table snapshot, gRPC server.

    Names the snapshot and the server so callers (tests, benchmarks) can force a refresh and
    find the port the OS assigned when ORDERSYNC_GRPC_PORT is 0.
    """

    def __init__(self, pool: PoolComponent, codes: LazyComponent, grpc_server: LazyComponent):
        super().__init__([pool, codes, grpc_server])
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


async def build(settings: CarrierMappingSettings) -> CarrierMappingApp:
    """Migrate the schema and return the service's components, not yet started."""
    platform = settings.platform
    await prepare(platform, MIGRATIONS)
    pool = PoolComponent(platform)
    codes = LazyComponent(lambda: CodeTableSnapshot(pool.pool, refresh_s=settings.refresh_s))

    def grpc_server() -> GrpcServer:
        binding = bind(pb, pb_grpc, "CarrierMappingService", CarrierMappingServicer(codes.component))
        return GrpcServer([binding], port=platform.grpc_port)

    return CarrierMappingApp(pool, codes, LazyComponent(grpc_server))
