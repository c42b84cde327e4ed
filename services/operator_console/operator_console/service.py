"""The console process: its web server, metrics, and readiness (dispatch answering)."""

from __future__ import annotations

import logging

from libs.platform.health import HealthMonitor, Probe
from libs.platform.http_server import HttpServer
from libs.platform.metrics import MetricsServer
from libs.platform.service import ComponentGroup, run_until_signalled
from libs.platform.telemetry import setup_logging, setup_telemetry
from operator_console.app import build_app
from operator_console.backend import Backend
from operator_console.config import ConsoleSettings
from operator_console.staff import load_staff

log = logging.getLogger(__name__)


async def _dispatch_ready(backend: Backend) -> None:
    if not await backend.ready():
        raise ConnectionError("fulfillment-dispatch is not serving")


def build(settings: ConsoleSettings) -> ComponentGroup:
    """The console's components, not yet started; ConfigError if the staff file is wrong."""
    staff = load_staff(settings.staff_file)
    backend = Backend(settings.addresses, settings.grpc_token.value, settings.grpc_client_tls)
    health = HealthMonitor([Probe("fulfillment-dispatch", lambda: _dispatch_ready(backend))])
    app = build_app(settings, staff, backend)
    log.info("staff loaded", extra={"fields": {"members": len(staff)}})
    return ComponentGroup(
        [MetricsServer(port=settings.metrics_port), health, HttpServer(app, port=settings.http_port, health=health)]
    )


async def serve() -> None:
    settings = ConsoleSettings.from_env()
    setup_logging(settings.service_name)
    setup_telemetry(settings)
    await run_until_signalled(build(settings))
