"""The console's web app: routes, the sign-in and CSRF checks, security headers, error pages.

Pages are rendered on the server with Jinja2 and work without JavaScript; console.js only adds
conveniences (select all, a live progress bar for bulk actions). Every page but the sign-in form
and embed pages needs a signed-in member (`signed_in`), and every POST a CSRF token of its session
(`csrf_middleware`), checked before any handler runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import grpc
import jinja2
from aiohttp import web
from prometheus_client import Counter

from libs.platform.http_server import tracing_middleware
from operator_console import present
from operator_console.backend import Backend, ServiceError
from operator_console.config import ConsoleSettings
from operator_console.security import (
    CSRF_FIELD,
    PRE_SESSION_COOKIE,
    PRE_SESSION_MAX_AGE_S,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    Session,
    Signer,
)
from operator_console.staff import StaffDirectory, StaffMember

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
REQUESTS = Counter(
    "ordersync_console_requests_total", "Console pages and actions answered, by route and status.", ["route", "status"]
)
BACKEND = web.AppKey("backend", Backend)
STAFF = web.AppKey("staff", StaffDirectory)
SIGNER = web.AppKey("signer", Signer)
SETTINGS = web.AppKey("settings", ConsoleSettings)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
# The status a service's refusal is answered with: the page then shows the service's own message.
HTTP_STATUS = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 503,
}
# Pages: only our own scripts, styles and forms; never framed (embed pages set their own ancestors).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MemberHandler = Callable[[web.Request, StaffMember, Session], Awaitable[web.StreamResponse]]


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the page (and its test), not shows blank
        trim_blocks=True,
        lstrip_blocks=True,
        # async rendering: the bulk page streams its rows while an async loop in it yields them
        enable_async=True,
    )
    env.globals.update(present=present, CSRF_FIELD=CSRF_FIELD)
    return env


async def render(request: web.Request, template: str, status: int = 200, **context) -> web.Response:
    html = await request.app[TEMPLATES].get_template(template).render_async(**context)
    return web.Response(text=html, content_type="text/html", status=status)


def build_app(settings: ConsoleSettings, staff: StaffDirectory, backend: Backend) -> web.Application:
    """The aiohttp application with every route; `backend` is closed with it."""
    from operator_console import pages  # the handlers; imported here as they import this module

    app = web.Application(
        middlewares=[tracing_middleware, error_middleware, csrf_middleware], client_max_size=64 * 1024
    )
    app[SETTINGS] = settings
    app[STAFF] = staff
    app[BACKEND] = backend
    app[SIGNER] = Signer(settings.session_secret.value, settings.embed_secret.value)
    app[TEMPLATES] = templates()
    app.on_response_prepare.append(_security_headers)
    pages.add_routes(app)
    app.router.add_static("/static", HERE / "static", append_version=True)

    async def close_backend(_app: web.Application) -> None:
        await backend.close()

    app.on_cleanup.append(close_backend)
    return app


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, streamed ones included (headers go out when a stream is prepared)."""
    embed = request.path.startswith("/embed/")
    ancestors = " ".join(request.app[SETTINGS].frame_ancestors) if embed else ""
    response.headers["Content-Security-Policy"] = CSP.format(ancestors=ancestors or "'none'")
    if not embed:
        response.headers["X-Frame-Options"] = "DENY"  # for browsers older than frame-ancestors
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Never send our URLs (an embed token among them) to another site.
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    route = request.match_info.route.resource
    REQUESTS.labels(route.canonical if route is not None else "unmatched", str(response.status)).inc()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A service's refusal becomes a page with its message and the matching status."""
    try:
        return await handler(request)
    except ServiceError as exc:
        status = HTTP_STATUS.get(exc.code, 500)
        log.warning(
            "service refused a console call",
            extra={"fields": {"service": exc.service, "code": exc.code.name, "route": request.path}},
        )
        return await render(
            request, "error.html", status=status, title=_error_title(exc), message=exc.message, member=None
        )


def _error_title(exc: ServiceError) -> str:
    if exc.code is grpc.StatusCode.NOT_FOUND:
        return "Not found in your account"
    if exc.unavailable:
        return f"{exc.service} is not answering; try again in a moment"
    if exc.code is grpc.StatusCode.UNAUTHENTICATED:
        return "The console's own credentials were refused; ask your platform team"
    return "Refused"


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse (403) any POST whose form lacks its session's CSRF token, before it is handled."""
    if request.method != "POST":
        return await handler(request)
    signer = request.app[SIGNER]
    form = await request.post()
    token = form.get(CSRF_FIELD)
    token = token if isinstance(token, str) else None
    if request.path == "/sign-in":
        bound = signer.pre_session(request.cookies.get(PRE_SESSION_COOKIE))
    else:
        session = signer.session(request.cookies.get(SESSION_COOKIE))
        bound = session.session_id if session else None
    if bound is None or not signer.csrf_valid(bound, token):
        log.warning("form refused: CSRF token missing or wrong", extra={"fields": {"route": request.path}})
        return await render(
            request,
            "error.html",
            status=403,
            title="This form has expired",
            message="The form's security token is missing or wrong, so nothing was done. Reload the page and try again.",
            member=None,
        )
    return await handler(request)


def signed_in(handler: MemberHandler) -> Handler:
    """Run `handler` with the signed-in member; send anyone else to the sign-in page."""

    async def checked(request: web.Request) -> web.StreamResponse:
        session = request.app[SIGNER].session(request.cookies.get(SESSION_COOKIE))
        member = request.app[STAFF].find(session.staff) if session else None
        if session is None or member is None:
            if request.method == "GET":
                raise web.HTTPSeeOther(f"/sign-in?next={quote(request.path_qs, safe='')}")
            raise web.HTTPUnauthorized(text="sign in first")
        return await handler(request, member, session)

    return checked


def set_session_cookie(response: web.StreamResponse, settings: ConsoleSettings, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
        path="/",
    )


def set_pre_session_cookie(response: web.StreamResponse, settings: ConsoleSettings, value: str) -> None:
    response.set_cookie(
        PRE_SESSION_COOKIE,
        value,
        max_age=PRE_SESSION_MAX_AGE_S,
        httponly=True,
        samesite="Strict",
        secure=settings.cookie_secure,
        path="/sign-in",
    )
