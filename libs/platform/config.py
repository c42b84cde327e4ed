"""Typed settings from the environment; the only module that reads os.environ."""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(Exception):
    """A required setting is missing or malformed; the message names the variable."""


def env_str(name: str, default: str | None = None) -> str:
    """Return variable `name`, or `default`; raise ConfigError when neither exists."""
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"environment variable {name} is required but not set")
    return value


def env_int(name: str, default: int | None = None) -> int:
    """Return variable `name` as an int; raise ConfigError naming it when malformed or missing."""
    raw = env_str(name, None if default is None else str(default))
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    """Return variable `name` as a float; raise ConfigError naming it when malformed."""
    raw = env_str(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None


def env_optional(name: str) -> str | None:
    """Return variable `name`, or None when it is unset or empty."""
    return os.environ.get(name) or None


@dataclass(frozen=True)
class PlatformSettings:
    """Settings every service needs: where Postgres and Kafka are, and how to name things."""

    service_name: str
    pg_dsn: str
    db_schema: str
    kafka_bootstrap: str
    topic_prefix: str
    tenants_file: str
    tenants_reload_s: float
    grpc_port: int
    trace_file: str | None
    otlp_endpoint: str | None
    pg_pool_size: int
    migrate_on_start: bool
    # Optional TLS for gRPC (off when unset): this service's server side, and its client channels.
    grpc_server_tls: GrpcServerTls | None = None
    grpc_client_tls: GrpcClientTls | None = None
    # Prometheus /metrics port (ORDERSYNC_METRICS_PORT) and how often DB-read gauges are sampled.
    metrics_port: int = 9100
    metrics_sample_s: float = 15.0

    def topic(self, name: str) -> str:
        """Return the full topic name; tests isolate themselves with ORDERSYNC_TOPIC_PREFIX."""
        return f"{self.topic_prefix}{name}"

    @property
    def consumer_group(self) -> str:
        """Kafka consumer group of this service (kebab-case, as the style guide names it)."""
        return f"{self.topic_prefix}{self.service_name}"

    @classmethod
    def from_env(cls, service_name: str, default_schema: str, default_grpc_port: int) -> PlatformSettings:
        """Read the shared settings; fail fast, naming the first missing variable."""
        return cls(
            service_name=service_name,
            pg_dsn=env_str("ORDERSYNC_PG_DSN"),
            db_schema=env_str("ORDERSYNC_DB_SCHEMA", default_schema),
            kafka_bootstrap=env_str("ORDERSYNC_KAFKA_BOOTSTRAP"),
            topic_prefix=os.environ.get("ORDERSYNC_TOPIC_PREFIX", ""),
            tenants_file=env_str("ORDERSYNC_TENANTS_FILE"),
            tenants_reload_s=env_float("ORDERSYNC_TENANTS_RELOAD_S", 10.0),
            grpc_port=env_int("ORDERSYNC_GRPC_PORT", default_grpc_port),
            trace_file=env_optional("ORDERSYNC_TRACE_FILE"),
            otlp_endpoint=env_optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            pg_pool_size=env_int("ORDERSYNC_PG_POOL_SIZE", 8),
            # on: apply migrations at start (local runs); off: only check them (Kubernetes, where a
            # Job runs `python -m libs.platform.migrate up` as the migration role first).
            migrate_on_start=env_on_off("ORDERSYNC_MIGRATE", True),
            grpc_server_tls=grpc_server_tls_from_env(),
            grpc_client_tls=grpc_client_tls_from_env(),
            metrics_port=metrics_port_from_env(service_name),
            metrics_sample_s=env_float("ORDERSYNC_METRICS_SAMPLE_S", 15.0),
        )


# One default port per service, so all five can run on one host; 0 (any port) is refused, since
# Prometheus could not find it.
DEFAULT_METRICS_PORTS = {
    "order-intake": 9101,
    "compliance-routing": 9102,
    "fulfillment-dispatch": 9103,
    "tracking-writeback": 9104,
    "carrier-mapping": 9105,
}


def metrics_port_from_env(service_name: str) -> int:
    """ORDERSYNC_METRICS_PORT, else the service's default; raise ConfigError unless 1..65535."""
    port = env_int("ORDERSYNC_METRICS_PORT", DEFAULT_METRICS_PORTS.get(service_name, 9100))
    if not 1 <= port <= 65535:
        raise ConfigError(f"environment variable ORDERSYNC_METRICS_PORT must be a port (1-65535), got {port}")
    return port


def env_on_off(name: str, default: bool) -> bool:
    """Return variable `name` (on or off) as a bool; raise ConfigError naming it when it is anything else."""
    raw = os.environ.get(name) or ("on" if default else "off")
    if raw not in ("on", "off"):
        raise ConfigError(f"environment variable {name} must be on or off, got {raw!r}")
    return raw == "on"


@dataclass(frozen=True)
class GrpcServerTls:
    """PEM files of a gRPC server's certificate chain and key; with `client_ca_file`, every
    client must present a certificate that CA signed (mTLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


@dataclass(frozen=True)
class GrpcClientTls:
    """PEM files a gRPC client trusts servers by (`ca_file`) and, for mTLS, presents itself with."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None


def grpc_server_tls_from_env() -> GrpcServerTls | None:
    """TLS on the gRPC server when ORDERSYNC_GRPC_TLS_CERT_FILE is set; None (plaintext) otherwise."""
    cert, key = env_optional("ORDERSYNC_GRPC_TLS_CERT_FILE"), env_optional("ORDERSYNC_GRPC_TLS_KEY_FILE")
    client_ca = env_optional("ORDERSYNC_GRPC_TLS_CLIENT_CA_FILE")
    if cert is None and key is None and client_ca is None:
        return None
    if cert is None or key is None:
        raise ConfigError(
            "environment variables ORDERSYNC_GRPC_TLS_CERT_FILE and ORDERSYNC_GRPC_TLS_KEY_FILE go together"
        )
    return GrpcServerTls(cert, key, client_ca)


def grpc_client_tls_from_env() -> GrpcClientTls | None:
    """TLS on gRPC client channels when ORDERSYNC_GRPC_CA_FILE is set; None (plaintext) otherwise."""
    ca = env_optional("ORDERSYNC_GRPC_CA_FILE")
    cert, key = env_optional("ORDERSYNC_GRPC_CLIENT_CERT_FILE"), env_optional("ORDERSYNC_GRPC_CLIENT_KEY_FILE")
    if (cert is None) != (key is None):
        raise ConfigError(
            "environment variables ORDERSYNC_GRPC_CLIENT_CERT_FILE and ORDERSYNC_GRPC_CLIENT_KEY_FILE go together"
        )
    if ca is None:
        if cert is not None:
            raise ConfigError("ORDERSYNC_GRPC_CLIENT_CERT_FILE needs ORDERSYNC_GRPC_CA_FILE (the servers' CA)")
        return None
    return GrpcClientTls(ca, cert, key)
