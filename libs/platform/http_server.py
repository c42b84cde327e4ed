"""aiohttp serving with spans named by route template (never by raw path, which may hold secrets).

Every server also answers the orchestrator's probes: GET /livez (the process answers) and
GET /readyz (200 while the service's HealthMonitor finds its dependencies reachable, else 503:
the same truth as gRPC health).
"""

from __future__ import annotations

import logging

from aiohttp import web
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from libs.platform.health import HealthMonitor

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
PROBE_PATHS = ("/livez", "/readyz")


@web.middleware
async def tracing_middleware(request: web.Request, handler):
    """Start a SERVER span per request, continuing the caller's trace, named by route template."""
    if request.path in PROBE_PATHS:  # probes every few seconds would only be noise in traces
        return await handler(request)
    route = request.match_info.route.resource
    template = route.canonical if route is not None else "unmatched"
    parent = propagate.extract(dict(request.headers))
    with _tracer.start_as_current_span(f"{request.method} {template}", context=parent, kind=SpanKind.SERVER) as span:
        span.set_attribute("http.request.method", request.method)
        span.set_attribute("http.route", template)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            span.set_attribute("http.response.status_code", exc.status)
            raise
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response


class HttpServer:
    """Runs an aiohttp app on host:port; start() and stop() it. Port 0 picks a free port (see .port)."""

    def __init__(
        self, app: web.Application, *, host: str = "0.0.0.0", port: int = 0, health: HealthMonitor | None = None
    ):
        self._app = app
        self._host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._health = health
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)

    async def _livez(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self._health is None or self._health.serving:
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "unavailable"}, status=503)

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self.port, backlog=1024)
        await site.start()
        self.port = runner.addresses[0][1]  # the OS-assigned port when 0
        self._runner = runner
        log.info("HTTP serving", extra={"fields": {"port": self.port}})

    async def stop(self) -> None:
        """Stop accepting requests and finish those in flight. Safe twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
