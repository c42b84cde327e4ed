"""gRPC bootstrap: an aio server with standard health checking and reflection, and client channels,
both in plaintext or, configured by files, TLS (mTLS when the server names a client CA).

Health answers SERVING only while the service's HealthMonitor (libs/platform/health.py) finds its
dependencies reachable, for Check and Watch alike; without a monitor it is SERVING while up. The
health service name LIVENESS is SERVING from start to shutdown whatever the dependencies: a
liveness probe asks it, since restarting a process whose database is down would not help.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import grpc
from grpc_health.v1 import health as health_servicer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from libs.platform.config import ConfigError, GrpcClientTls, GrpcServerTls

if TYPE_CHECKING:  # a type only: the `ordersync` command imports this module, not the probes
    from libs.platform.health import HealthMonitor

log = logging.getLogger(__name__)

LIVENESS = "liveness"  # the health service name that only says the process answers


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer and the generated function that registers it, plus its full service name."""

    add_to_server: Callable[[object, grpc.aio.Server], None]
    servicer: object
    full_name: str


def bind(pb2_module, pb2_grpc_module, service_name: str, servicer: object) -> ServiceBinding:
    """Bind `servicer` as `service_name` of the generated modules (e.g. intake_service_pb2, ..._pb2_grpc)."""
    return ServiceBinding(
        getattr(pb2_grpc_module, f"add_{service_name}Servicer_to_server"),
        servicer,
        pb2_module.DESCRIPTOR.services_by_name[service_name].full_name,
    )


class GrpcServer:
    """Serves bindings on `host:port`; start() and stop() it. Port 0 picks a free port (see .port)."""

    def __init__(
        self,
        bindings: Sequence[ServiceBinding],
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        health: HealthMonitor | None = None,
        tls: GrpcServerTls | None = None,
    ):
        self._bindings = bindings
        self._tls = tls
        self._address = f"{host}:{port}"
        self._server: grpc.aio.Server | None = None
        self._health = health_servicer.aio.HealthServicer()
        self._monitor = health
        self.port = port

    async def start(self) -> None:
        if self._server is not None:
            return
        server = grpc.aio.server()
        for binding in self._bindings:
            binding.add_to_server(binding.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        names = [b.full_name for b in self._bindings]
        reflection.enable_server_reflection([*names, health_servicer.SERVICE_NAME, reflection.SERVICE_NAME], server)
        if self._tls is None:
            self.port = server.add_insecure_port(self._address)
        else:
            self.port = server.add_secure_port(self._address, _server_credentials(self._tls))
        await server.start()
        self._server = server
        await self._health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        if self._monitor is None:
            await self._set_health(True)
        else:
            self._monitor.subscribe(self._set_health)
            await self._set_health(self._monitor.serving)
        log.info("gRPC serving", extra={"fields": {"port": self.port, "services": names}})

    async def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for `grace_s`. Safe twice."""
        server, self._server = self._server, None
        if server is not None:
            if self._monitor is not None:
                self._monitor.unsubscribe(self._set_health)
            await self._health.enter_graceful_shutdown()
            await server.stop(grace_s)

    async def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *(b.full_name for b in self._bindings)]:
            await self._health.set(name, status)


async def abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    """End the call with status `code` and `details`.

    `context.abort` always raises; grpc ships no type information, so a function that ends in it
    would look to the type checker as if it could fall through and return None. This one says so.
    """
    await context.abort(code, details)
    raise AssertionError("grpc ServicerContext.abort returned")


def insecure_channel(address: str) -> grpc.aio.Channel:
    """Return a plaintext client channel to `address` (see `client_channel`)."""
    return client_channel(address)


def client_channel(address: str, tls: GrpcClientTls | None = None) -> grpc.aio.Channel:
    """Return a client channel to `address` with keepalive suited to long-lived services; over
    TLS when `tls` is given, else plaintext. Raise ConfigError when a TLS file cannot be read."""
    options = [("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)]
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, channel_credentials(tls), options=options)


def channel_credentials(tls: GrpcClientTls) -> grpc.ChannelCredentials:
    """Credentials of a TLS client channel: the CA to trust and, for mTLS, the client's certificate."""
    key = _read(tls.key_file) if tls.key_file else None
    return grpc.ssl_channel_credentials(_read(tls.ca_file), key, _read(tls.cert_file) if tls.cert_file else None)


def _server_credentials(tls: GrpcServerTls) -> grpc.ServerCredentials:
    client_ca = _read(tls.client_ca_file) if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(tls.key_file), _read(tls.cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise ConfigError(f"cannot read TLS file {path}: {exc.strerror}") from None
