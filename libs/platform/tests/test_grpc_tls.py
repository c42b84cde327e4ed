"""gRPC over TLS and mTLS, configured by files: real servers and channels on loopback, certificates from trustme."""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.platform.config import ConfigError, GrpcClientTls, GrpcServerTls, PlatformSettings
from libs.platform.grpc_server import GrpcServer, client_channel

pytestmark = [pytest.mark.timeout(30)]


@pytest.fixture
def pki(tmp_path):
    """A CA, a server certificate for localhost, and a client certificate, as PEM files."""
    ca = trustme.CA()
    files = {"ca": tmp_path / "ca.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    for name, identity in (("server", "localhost"), ("client", "fulfillment-dispatch.ordersync.test")):
        issued = ca.issue_cert(identity)
        files[f"{name}_cert"] = tmp_path / f"{name}.pem"
        files[f"{name}_key"] = tmp_path / f"{name}-key.pem"
        issued.private_key_pem.write_to_path(files[f"{name}_key"])
        files[f"{name}_cert"].write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    return {name: str(path) for name, path in files.items()}


@pytest_asyncio.fixture
async def server_with(pki):
    servers = []

    async def start(*, mtls: bool) -> str:
        tls = GrpcServerTls(pki["server_cert"], pki["server_key"], pki["ca"] if mtls else None)
        server = GrpcServer([], host="127.0.0.1", port=0, tls=tls)
        await server.start()
        servers.append(server)
        return f"localhost:{server.port}"

    yield start
    for server in servers:
        await server.stop(0)


async def check(target: grpc.aio.Channel) -> int:
    async with target:
        reply = await health_pb2_grpc.HealthStub(target).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return reply.status


@pytest.mark.asyncio
async def test_a_client_trusting_the_ca_is_answered_over_tls(server_with, pki):
    address = await server_with(mtls=False)

    assert await check(client_channel(address, GrpcClientTls(pki["ca"]))) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.asyncio
async def test_a_plaintext_client_is_refused_by_a_tls_server(server_with):
    address = await server_with(mtls=False)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(client_channel(address))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.asyncio
async def test_mtls_refuses_a_client_without_a_certificate_and_answers_one_with(server_with, pki):
    address = await server_with(mtls=True)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await check(client_channel(address, GrpcClientTls(pki["ca"])))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with_cert = GrpcClientTls(pki["ca"], pki["client_cert"], pki["client_key"])
    assert await check(client_channel(address, with_cert)) == health_pb2.HealthCheckResponse.SERVING


def test_tls_settings_come_from_the_environment(monkeypatch, pki):
    for name, value in {
        "ORDERSYNC_PG_DSN": "postgresql://unused/db",
        "ORDERSYNC_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "ORDERSYNC_TENANTS_FILE": "unused.toml",
        "ORDERSYNC_GRPC_TLS_CERT_FILE": pki["server_cert"],
        "ORDERSYNC_GRPC_TLS_KEY_FILE": pki["server_key"],
        "ORDERSYNC_GRPC_TLS_CLIENT_CA_FILE": pki["ca"],
        "ORDERSYNC_GRPC_CA_FILE": pki["ca"],
    }.items():
        monkeypatch.setenv(name, value)

    settings = PlatformSettings.from_env("order-intake", "order_intake", 50051)

    assert settings.grpc_server_tls == GrpcServerTls(pki["server_cert"], pki["server_key"], pki["ca"])
    assert settings.grpc_client_tls == GrpcClientTls(pki["ca"])
    monkeypatch.delenv("ORDERSYNC_GRPC_TLS_KEY_FILE")
    with pytest.raises(ConfigError, match="ORDERSYNC_GRPC_TLS_KEY_FILE"):
        PlatformSettings.from_env("order-intake", "order_intake", 50051)


def test_grpc_is_plaintext_unless_configured(monkeypatch):
    for name, value in {
        "ORDERSYNC_PG_DSN": "postgresql://unused/db",
        "ORDERSYNC_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "ORDERSYNC_TENANTS_FILE": "unused.toml",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("ORDERSYNC_GRPC_TLS_CERT_FILE", "ORDERSYNC_GRPC_TLS_KEY_FILE", "ORDERSYNC_GRPC_CA_FILE"):
        monkeypatch.delenv(name, raising=False)

    settings = PlatformSettings.from_env("order-intake", "order_intake", 50051)

    assert (settings.grpc_server_tls, settings.grpc_client_tls) == (None, None)
