"""Provider webhook endpoint: `POST /webhooks/{provider}/{tenant_id}/{token}` (or without the
token, for providers that authenticate by header); accept only what the provider connector
authenticates, resolve the notice, record it.

The provider is looked up in the registry (it must push notices) and the notice must authenticate
against one of the tenant's accounts of it, e.g. a secret token in the URL for a provider that
signs nothing; anything else is the same 404. The connector parses the body into a head (which
order, which event), and resolves it into the order's shipment state, re-reading the order for
thin notices. Every body that reaches an account's endpoint is kept with what became of it,
except notices the connector marks not worth keeping (they cannot move a shipment). Refusals are
4xx with a JSON reason (415 media type, 413 size, 400 malformed or an unusable read-back); 503
only when a redelivery can succeed: the read-back failed transiently, or the database could not
be reached.

A provider that times out waiting for our answer sends the notice again. Where the connector
says a re-read always brings the same news (`NoticeHead.same_news_on_reread`: ShipStation's
printed batches), a redelivery arriving while the first is handled, or minutes after, shares
the first one's re-read and outcome (RecentNotices) instead of spending the vendor's request
budget on the same read; a redelivery reaching another replica re-reads, which is harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from fulfillment_dispatch.shipments import ShipmentRecorder, apply_notices
from fulfillment_dispatch.storage.dispatches import record_webhook
from libs.connectors.base.contract import Capability, Notice, NoticeHead, PushRequest
from libs.connectors.base.errors import ConnectorError
from libs.platform import metrics
from libs.platform.accounts import AccountClients, OpenAccount
from libs.platform.tenants import Account
from libs.platform.webhook_http import (
    RefusedBody,
    json_error,
    json_errors_middleware,
    read_json_body,
    storable_text,
)

log = logging.getLogger(__name__)

# Provider notices are small: Vinoshipper's are a few hundred bytes.
MAX_BODY_BYTES = 64 * 1024


class StorageUnavailable(Exception):
    """The database could not be reached or used: answer 503, so the provider sends it again.

    A redelivery is harmless: a shipment state already applied is `unchanged` the second time.
    """


class RecentNotices:
    """Resolutions of notices, by key, while in flight and for `window_s` after they succeed.

    `once(key, work)` runs `work` for the first caller of a key and gives every caller within
    the window the same result; a failed or cancelled resolution is forgotten at once, so the
    next delivery tries again. At most `max_entries` are remembered (the oldest go first).
    """

    def __init__(self, window_s: float = 600.0, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._window_s, self._max_entries, self._clock = window_s, max_entries, clock
        self._entries: dict[tuple, tuple[asyncio.Future, float]] = {}

    async def once(self, key: tuple, work: Callable[[], Awaitable[list[str]]]) -> tuple[list[str], bool]:
        """(the outcomes, True when they are a shared earlier resolution's)."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > self._clock():
            return await asyncio.shield(entry[0]), True
        self._forget_expired()
        task = asyncio.ensure_future(work())
        self._entries[key] = (task, float("inf"))
        task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task), False

    def _settle(self, key: tuple, done: asyncio.Future) -> None:
        if done.cancelled() or done.exception() is not None:
            self._entries.pop(key, None)
        else:
            self._entries[key] = (done, self._clock() + self._window_s)

    def _forget_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (_, until) in self._entries.items() if until <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]


class ProviderWebhookHandler:
    """Handles POST /webhooks/{provider}/{tenant_id}/{token} and /webhooks/{provider}/{tenant_id}."""

    def __init__(self, pool, accounts: AccountClients, recorder: ShipmentRecorder, recent: RecentNotices | None = None):
        self._pool = pool
        self._accounts = accounts
        self._recorder = recorder
        self._recent = recent or RecentNotices()

    async def handle(self, request: web.Request) -> web.Response:
        provider, tenant_id = request.match_info["provider"], request.match_info["tenant_id"]
        account = self._authenticated_account(provider, tenant_id, request)
        if account is None:
            metrics.WEBHOOKS.labels(self._known_provider(provider), "unauthenticated").inc()
            log.warning("provider webhook refused: unknown URL", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(404, "NOT_FOUND", "no such webhook endpoint")
        try:
            return await self._handle(tenant_id, account, request)
        except StorageUnavailable:
            metrics.WEBHOOKS.labels(account.connector, "unavailable").inc()
            log.exception("could not store a provider webhook", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(503, "TEMPORARILY_UNAVAILABLE", "could not store the webhook; retry later")

    def _known_provider(self, provider: str) -> str:
        """The path's provider as a metric label only when it is a connector (anyone can write the path)."""
        try:
            return self._accounts.registry.provider(provider).info.id
        except LookupError:
            return "unknown"

    def _authenticated_account(self, provider: str, tenant_id: str, request: web.Request) -> Account | None:
        """The tenant's account of `provider` that the notice authenticates for, or None."""
        try:
            connector = self._accounts.registry.provider(provider)
            tenant = self._accounts.tenant(tenant_id)
        except LookupError:  # UnknownConnector, AccountNotConfigured: the same 404 as a wrong token
            return None
        if not connector.info.can(Capability.PUSH_NOTICES):
            return None
        push = PushRequest(headers=request.headers, path_tail=request.match_info.get("token", ""))
        return next((a for a in tenant.accounts_of(provider) if connector.authenticate_notice(a.settings, push)), None)

    async def _handle(self, tenant_id: str, account: Account, request: web.Request) -> web.Response:
        provider = account.connector
        try:
            body = await read_json_body(request, MAX_BODY_BYTES)
        except RefusedBody as refused:
            outcome = "too_large" if refused.status == 413 else "malformed"
            metrics.WEBHOOKS.labels(provider, outcome).inc()
            receipt = await self._keep(tenant_id, provider, refused.head, outcome, refused.message)
            return json_error(refused.status, refused.code, refused.message, receipt_id=receipt)
        connector = self._accounts.provider_connector(account)
        try:
            head = connector.parse_notice(body)
        except ConnectorError as exc:
            metrics.WEBHOOKS.labels(provider, "malformed").inc()
            receipt = await self._keep(tenant_id, provider, body, "malformed", exc.message)
            return json_error(400, exc.reason_code, exc.message, receipt_id=receipt)
        if head.ignored_reason:
            metrics.WEBHOOKS.labels(provider, "ignored").inc()
            if not head.keep:
                return _status(202, "ignored")  # nothing to read back, nothing to keep
            receipt = await self._keep(tenant_id, provider, body, "ignored", head.ignored_reason)
            return _status(202, "ignored", receipt_id=receipt)

        def work() -> Awaitable[list[str]]:
            return self._resolve_and_apply(tenant_id, account, head)

        try:
            if head.same_news_on_reread:
                key = (tenant_id, account.name, hashlib.sha256(body).digest())
                outcomes, shared = await self._recent.once(key, work)
            else:
                outcomes, shared = await work(), False
        except ConnectorError as exc:
            if exc.retryable:
                metrics.WEBHOOKS.labels(provider, "unavailable").inc()
                return json_error(503, exc.reason_code, "could not read the order back; retry later")
            metrics.WEBHOOKS.labels(provider, "malformed").inc()
            receipt = await self._keep(tenant_id, provider, body, "malformed", exc.message)
            return json_error(400, exc.reason_code, exc.message, receipt_id=receipt)
        outcome = _summary(outcomes)
        detail = f"{head.event} (a redelivery: the first delivery's re-read)" if shared else head.event
        receipt = await self._keep(tenant_id, provider, body, outcome, detail)
        # The receipt's outcome joins the orders' outcomes (unbounded combinations): the metric says accepted.
        metrics.WEBHOOKS.labels(provider, "accepted").inc()
        return _status(200, outcome, receipt_id=receipt)

    async def _resolve_and_apply(self, tenant_id: str, account: Account, head: NoticeHead) -> list[str]:
        """Re-read what the notice names and apply it. A notice may cover several orders (a
        batch of labels): they are applied together, each with its own outcome."""
        opened = await self._accounts.provider(tenant_id, account.name)
        notices = await opened.connector.resolve_notice(opened.client, opened.settings, head)
        return await self._apply(tenant_id, opened, notices)

    async def _apply(self, tenant_id: str, opened: OpenAccount, notices: Sequence[Notice]) -> list[str]:
        try:
            return await apply_notices(self._recorder, opened, tenant_id, notices)
        except Exception as exc:  # asyncpg raises several families (and OSError) for a lost database
            raise StorageUnavailable() from exc

    async def _keep(self, tenant_id: str, provider: str, body: bytes, outcome: str, detail: str) -> int:
        """Keep the body with what became of it; return the receipt's id."""
        try:
            async with self._pool.acquire() as conn:
                return await record_webhook(conn, tenant_id, provider, body, outcome, storable_text(detail))
        except Exception as exc:
            # asyncpg raises several families (and OSError) for a lost database. What is written
            # is made storable first, so a hostile body does not make this permanent.
            raise StorageUnavailable() from exc


def _summary(outcomes: list[str]) -> str:
    """One outcome word for the receipt: the only one, or the distinct ones joined."""
    if not outcomes:
        return "unknown_order"
    return ",".join(dict.fromkeys(outcomes))


def _status(http_status: int, status: str, **extra) -> web.Response:
    # Not `_json(status, status=...)`: the answer's "status" field is not the HTTP status.
    return web.json_response({"status": status, **extra}, status=http_status)


def build_web_app(handler: ProviderWebhookHandler, middlewares) -> web.Application:
    """Return the aiohttp app serving provider webhooks and a liveness probe."""
    app = web.Application(middlewares=[*middlewares, json_errors_middleware], client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/webhooks/{provider}/{tenant_id}/{token}", handler.handle)
    app.router.add_post("/webhooks/{provider}/{tenant_id}", handler.handle)
    return app
