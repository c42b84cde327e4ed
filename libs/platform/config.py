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
        )


def env_on_off(name: str, default: bool) -> bool:
    """Return variable `name` (on or off) as a bool; raise ConfigError naming it when it is anything else."""
    raw = os.environ.get(name) or ("on" if default else "off")
    if raw not in ("on", "off"):
        raise ConfigError(f"environment variable {name} must be on or off, got {raw!r}")
    return raw == "on"
