"""The console's pages: sign-in, the order card and tab, failures with bulk actions, connections,
mapping fixes and embeddable order pages. Each handler asks the backend and renders one template."""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import web
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.carriers.v1 import carriers_service_pb2 as carriers_pb
from prometheus_client import Counter

from operator_console import present
from operator_console.app import (
    BACKEND,
    SETTINGS,
    SIGNER,
    STAFF,
    TEMPLATES,
    render,
    set_pre_session_cookie,
    set_session_cookie,
    signed_in,
)
from operator_console.backend import LIST_LIMIT, ServiceError, since_of
from operator_console.security import PRE_SESSION_COOKIE, SESSION_COOKIE, Session
from operator_console.staff import StaffMember

ACTIONS = Counter(
    "ordersync_console_actions_total",
    "Order actions staff took in the console, by action and outcome.",
    ["action", "outcome"],
)
BULK_ACTIONS = (admin_pb.ORDER_ACTION_RETRY_SEND, admin_pb.ORDER_ACTION_DONT_SEND)
BULK_CONCURRENCY = 4  # actions in flight at once: quick for a page of orders, gentle on dispatch
MAX_REASON = 500
WINDOWS = ("24h", "7d", "30d", "all")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/sign-in", sign_in_form)
    app.router.add_post("/sign-in", sign_in)
    app.router.add_post("/sign-out", signed_in(sign_out))
    app.router.add_get("/orders", signed_in(find_order))
    app.router.add_get("/orders/{order_id}", signed_in(order_tab))
    app.router.add_post("/orders/{order_id}/actions/{action}", signed_in(order_action))
    app.router.add_get("/failures", signed_in(failures))
    app.router.add_post("/failures/bulk", signed_in(bulk_action))
    app.router.add_get("/connections", signed_in(connections))
    app.router.add_get("/mappings/new", signed_in(mapping_form))
    app.router.add_post("/mappings", signed_in(save_mapping))
    app.router.add_get("/embed/orders/{order_id}", embedded_order)


async def home(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/failures")


# ---- signing in -----------------------------------------------------------------------------------


async def sign_in_form(request: web.Request, *, status: int = 200, error: str = "") -> web.StreamResponse:
    signer = request.app[SIGNER]
    pre_id, cookie = signer.new_pre_session()
    response = await render(
        request,
        "sign_in.html",
        status=status,
        member=None,
        csrf=signer.csrf_token(pre_id),
        next=_local_path(request.query.get("next", "")),
        error=error,
    )
    set_pre_session_cookie(response, request.app[SETTINGS], cookie)
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    # scrypt takes tens of milliseconds: off the event loop, so other pages keep answering
    member = await asyncio.to_thread(request.app[STAFF].authenticate, name, password)
    if member is None:
        return await sign_in_form(request, status=401, error="That name and password do not match a staff member.")
    _session, cookie = request.app[SIGNER].new_session(member.name)
    response = web.HTTPSeeOther(_local_path(str(form.get("next", ""))) or "/failures")
    set_session_cookie(response, request.app[SETTINGS], cookie)
    response.del_cookie(PRE_SESSION_COOKIE, path="/sign-in")
    raise response


async def sign_out(_request: web.Request, _member: StaffMember, _session: Session) -> web.StreamResponse:
    response = web.HTTPSeeOther("/sign-in")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def _local_path(path: str) -> str:
    """`path` when it is one of ours ("/orders/..."), else "": never redirect off the console."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else ""


# ---- one order ------------------------------------------------------------------------------------


async def find_order(request: web.Request, member: StaffMember, _session: Session) -> web.StreamResponse:
    number = request.query.get("number", "").strip().lstrip("#")
    if not number:
        raise web.HTTPSeeOther("/failures")
    order_id = await request.app[BACKEND].find_order(member, number)
    raise web.HTTPSeeOther(f"/orders/{order_id}")


async def order_tab(
    request: web.Request, member: StaffMember, session: Session, *, status: int = 200, refusal: str = ""
) -> web.StreamResponse:
    view = await request.app[BACKEND].order(member, request.match_info["order_id"])
    done = present.ACTION_BY_SLUG.get(request.query.get("done", ""))
    return await render(
        request,
        "order.html",
        status=status,
        member=member,
        csrf=request.app[SIGNER].csrf_token(session.session_id),
        view=view,
        done=present.ACTION_WORDS[done][1] if done else "",
        refusal=refusal,
        embedded=False,
    )


async def order_action(request: web.Request, member: StaffMember, session: Session) -> web.StreamResponse:
    order_id = request.match_info["order_id"]
    action = present.ACTION_BY_SLUG.get(request.match_info["action"])
    if action is None:
        raise web.HTTPNotFound(text="no such action")
    name = present.ACTION_WORDS[action][1]
    if not member.is_operator:
        ACTIONS.labels(name, "not_operator").inc()
        return await order_tab(request, member, session, status=403, refusal=_not_operator(member))
    reason = _reason(await request.post())
    if not reason:
        ACTIONS.labels(name, "no_reason").inc()
        return await order_tab(request, member, session, status=400, refusal=f"{name} needs a reason: say why you act.")
    try:
        await request.app[BACKEND].act(member, order_id, action, reason)
    except ServiceError as exc:
        if exc.code.name not in ("FAILED_PRECONDITION", "INVALID_ARGUMENT"):
            raise
        ACTIONS.labels(name, "refused").inc()
        return await order_tab(
            request,
            member,
            session,
            status=409 if exc.code.name == "FAILED_PRECONDITION" else 400,
            refusal=f"{name} was refused: {exc.message}",
        )
    ACTIONS.labels(name, "done").inc()
    raise web.HTTPSeeOther(f"/orders/{order_id}?done={present.ACTION_WORDS[action][0]}")


def _reason(form) -> str:
    return " ".join(str(form.get("reason", "")).split())[:MAX_REASON]


def _not_operator(member: StaffMember) -> str:
    return f"{member.name} may view orders but not act on them: ask an administrator for the operator role."


async def embedded_order(request: web.Request) -> web.StreamResponse:
    """One order's tab (or with view=card, its card alone) for a channel's admin to frame:
    read-only, by embed token only."""
    order_id = request.match_info["order_id"]
    grant = request.app[SIGNER].embed_grant(request.query.get("token"))
    if grant is None or grant.order_id != order_id:
        return await render(
            request,
            "error.html",
            status=401,
            member=None,
            title="This link has expired",
            message="Open the order again from your store's admin to get a fresh link.",
        )
    viewer = StaffMember(f"embed:{grant.tenant_id}", grant.tenant_id)
    view = await request.app[BACKEND].order(viewer, order_id)
    template = "embed_card.html" if request.query.get("view") == "card" else "order.html"
    return await render(request, template, member=None, csrf="", view=view, done="", refusal="", embedded=True)


# ---- failures ------------------------------------------------------------------------------------


async def failures(request: web.Request, member: StaffMember, session: Session) -> web.StreamResponse:
    window = request.query.get("window", "7d")
    window = window if window in WINDOWS else "7d"
    reason_code, connection = request.query.get("reason", ""), request.query.get("connection", "")
    found = await request.app[BACKEND].failures(member, since_of(window))
    orders = [
        sync
        for sync in found.failed_orders
        if (not reason_code or sync.reason_code == reason_code)
        and (not connection or _connection_of(sync) == connection)
    ]
    writebacks = [w for w in found.writebacks if not connection or w.channel_account == connection]
    return await render(
        request,
        "failures.html",
        member=member,
        csrf=request.app[SIGNER].csrf_token(session.session_id),
        failures=found,
        orders=orders,
        writebacks=writebacks,
        reason_codes=sorted(Tally(s.reason_code for s in found.failed_orders if s.reason_code).items()),
        connections=sorted(
            {_connection_of(s) for s in found.failed_orders} | {w.channel_account for w in found.writebacks} - {""}
        ),
        filters={"reason": reason_code, "connection": connection, "window": window},
        windows=WINDOWS,
        limit=LIST_LIMIT,
    )


def _connection_of(sync: admin_pb.OrderSync) -> str:
    return sync.channel_ref.account


async def bulk_action(request: web.Request, member: StaffMember, session: Session) -> web.StreamResponse:
    """Retry or Don't Send the chosen orders, streaming one line per order as each is done, so
    the page shows progress with or without JavaScript."""
    form = await request.post()
    action = present.ACTION_BY_SLUG.get(str(form.get("action", "")))
    order_ids = list(dict.fromkeys(str(v) for v in form.getall("order_id", [])))[:LIST_LIMIT]
    reason = _reason(form)
    problem = _bulk_problem(member, action, order_ids, reason)
    if problem or action is None:
        return await render(
            request,
            "error.html",
            status=403 if not member.is_operator else 400,
            member=member,
            csrf=request.app[SIGNER].csrf_token(session.session_id),
            title="Nothing was done",
            message=problem or "choose Retry or Don't Send",
        )
    response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    await response.prepare(request)
    outcomes: Tally = Tally()
    page = (
        request.app[TEMPLATES]
        .get_template("bulk.html")
        .generate_async(
            member=member,
            csrf=request.app[SIGNER].csrf_token(session.session_id),
            action=present.ACTION_WORDS[action][1],
            total=len(order_ids),
            reason=reason,
            results=_run_bulk(request.app[BACKEND], member, action, order_ids, reason, outcomes),
            outcomes=outcomes,
        )
    )
    async for chunk in page:
        await response.write(chunk.encode())
    await response.write_eof()
    return response


def _bulk_problem(member: StaffMember, action: int | None, order_ids: Sequence[str], reason: str) -> str:
    if not member.is_operator:
        return _not_operator(member)
    if action not in BULK_ACTIONS:
        return "Bulk actions are Retry and Don't Send."
    if not order_ids:
        return "Choose at least one order."
    if not reason:
        return "A bulk action needs a reason: say why you act."
    return ""


async def _run_bulk(backend, member: StaffMember, action: int, order_ids: Sequence[str], reason: str, outcomes: Tally):
    """Yield (position, order id, outcome, words) as each order's action finishes, counting outcomes."""
    gate = asyncio.Semaphore(BULK_CONCURRENCY)
    name = present.ACTION_WORDS[action][1]

    async def one(order_id: str) -> tuple[str, str, str]:
        async with gate:
            try:
                sync = await backend.act(member, order_id, action, reason)
            except ServiceError as exc:
                return order_id, "unavailable" if exc.unavailable else "refused", exc.message
            return order_id, "done", sync.status_title

    for position, finished in enumerate(asyncio.as_completed([one(i) for i in order_ids]), start=1):
        order_id, outcome, words = await finished
        outcomes[outcome] += 1
        ACTIONS.labels(name, outcome).inc()
        yield position, order_id, outcome, words


# ---- connections and mappings --------------------------------------------------------------------


async def connections(request: web.Request, member: StaffMember, session: Session) -> web.StreamResponse:
    found = await request.app[BACKEND].connection_health(member)
    return await render(
        request,
        "connections.html",
        member=member,
        csrf=request.app[SIGNER].csrf_token(session.session_id),
        rows=present.connection_rows(found.views, datetime.now(UTC)),
        saved=request.query.get("saved", "")[:200],
        unreachable=found.unreachable,
    )


MAPPING_KINDS = ("sku", "service-code", "carrier-code")


async def mapping_form(
    request: web.Request, member: StaffMember, session: Session, *, status: int = 200, error: str = "", saved: str = ""
) -> web.StreamResponse:
    kind = request.query.get("kind", "")
    return await render(
        request,
        "mapping.html",
        status=status,
        member=member,
        csrf=request.app[SIGNER].csrf_token(session.session_id),
        kind=kind if kind in MAPPING_KINDS else "service-code",
        connector=request.query.get("connector", ""),
        code=request.query.get("code", ""),
        error=error,
        saved=saved,
    )


async def save_mapping(request: web.Request, member: StaffMember, session: Session) -> web.StreamResponse:
    form = await request.post()
    field = {
        key: " ".join(str(form.get(key, "")).split())
        for key in ("kind", "connector", "code", "carrier", "service", "name", "provider_sku", "quantity")
    }
    if not member.can_write:
        return await _mapping_error(
            request, member, session, 403, f"{member.name} may not change mappings: ask for the write role."
        )
    backend = request.app[BACKEND]
    try:
        if field["kind"] == "sku":
            quantity = int(field["quantity"] or "1")
            await backend.put_product_mapping(member, field["code"], [(field["provider_sku"], quantity)])
        else:
            mapping = carriers_pb.Mapping(
                system=field["connector"],
                code=field["code"],
                name=field["name"] or field["code"],
                carrier=field["carrier"],
                canonical_carrier=field["carrier"].upper(),
                canonical_service=field["service"].upper(),
            )
            await backend.create_carrier_mapping(member, mapping)
    except ValueError:
        return await _mapping_error(request, member, session, 400, "Quantity must be a whole number.")
    except ServiceError as exc:
        if exc.unavailable:
            raise
        return await _mapping_error(
            request, member, session, 400 if exc.code.name == "INVALID_ARGUMENT" else 409, exc.message
        )
    raise web.HTTPSeeOther(f"/connections?saved={quote(field['code'], safe='')}")


async def _mapping_error(request, member, session, status: int, message: str) -> web.StreamResponse:
    return await render(
        request,
        "error.html",
        status=status,
        member=member,
        csrf=request.app[SIGNER].csrf_token(session.session_id),
        title="The mapping was not saved",
        message=message,
    )
