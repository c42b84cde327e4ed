"""Console settings from the environment (the variables are listed in docs/console.md)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from libs.cli.connect import ADDRESSES
from libs.platform.config import ConfigError, GrpcClientTls, env_int, env_optional, env_str, grpc_client_tls_from_env
from libs.platform.secrets import Secret, resolve_secret

SERVICE_NAME = "operator-console"
DEFAULT_HTTP_PORT = 8090
DEFAULT_METRICS_PORT = 9106
# An origin as CSP's frame-ancestors takes it: a scheme, a host (a leading "*." allowed) and an optional port.
_ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the console listens, whom it signs in, the secrets it signs with, and the services it asks."""

    http_port: int
    metrics_port: int
    staff_file: Path
    session_secret: Secret = field(repr=False)
    embed_secret: Secret = field(repr=False)
    grpc_token: Secret = field(repr=False)
    # origins allowed to frame /embed/ pages (a channel's admin); none when empty
    frame_ancestors: tuple[str, ...] = ()
    cookie_secure: bool = True
    addresses: dict[str, str] = field(default_factory=dict)  # service name -> host:port
    grpc_client_tls: GrpcClientTls | None = None
    otlp_endpoint: str | None = None
    trace_file: str | None = None
    service_name: str = SERVICE_NAME

    @classmethod
    def from_env(cls) -> ConsoleSettings:
        """Read the settings; raise ConfigError naming the first missing or malformed variable."""
        token = env_optional("ORDERSYNC_CONSOLE_GRPC_TOKEN")
        if not token:
            raise ConfigError(
                "environment variable ORDERSYNC_CONSOLE_GRPC_TOKEN (the console's bearer token) is required"
            )
        return cls(
            http_port=env_int("ORDERSYNC_HTTP_PORT", DEFAULT_HTTP_PORT),
            metrics_port=env_int("ORDERSYNC_METRICS_PORT", DEFAULT_METRICS_PORT),
            staff_file=Path(env_str("ORDERSYNC_CONSOLE_STAFF_FILE")),
            session_secret=_signing_secret("ORDERSYNC_CONSOLE_SESSION_SECRET"),
            embed_secret=_signing_secret("ORDERSYNC_CONSOLE_EMBED_SECRET"),
            grpc_token=Secret(token),
            frame_ancestors=frame_ancestors(os.environ.get("ORDERSYNC_CONSOLE_FRAME_ANCESTORS", "")),
            cookie_secure=_true_false("ORDERSYNC_CONSOLE_COOKIE_SECURE", True),
            addresses={
                service: os.environ.get(variable, default) for service, (variable, default) in ADDRESSES.items()
            },
            grpc_client_tls=grpc_client_tls_from_env(),
            otlp_endpoint=env_optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            trace_file=env_optional("ORDERSYNC_TRACE_FILE"),
        )


def frame_ancestors(raw: str) -> tuple[str, ...]:
    """The origins of ORDERSYNC_CONSOLE_FRAME_ANCESTORS; ConfigError on anything but an origin,
    since a stray keyword or path would widen or break the embed pages' CSP."""
    origins = tuple(raw.split())
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ConfigError(
                f"ORDERSYNC_CONSOLE_FRAME_ANCESTORS: {origin!r} is not an origin such as https://admin.example.com"
            )
    return origins


def _signing_secret(variable: str) -> Secret:
    secret = resolve_secret(env_str(variable), variable)
    # HMAC keys shorter than this are guessable offline from one signed cookie.
    if len(secret.value) < 32:
        raise ConfigError(f"{variable}: the secret must be at least 32 characters long")
    return secret


def _true_false(variable: str, default: bool) -> bool:
    raw = os.environ.get(variable) or ("true" if default else "false")
    if raw not in ("true", "false"):
        raise ConfigError(f"environment variable {variable} must be true or false, got {raw!r}")
    return raw == "true"
