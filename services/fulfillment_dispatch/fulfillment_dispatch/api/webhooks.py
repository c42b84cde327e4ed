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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiohttp import web

from fulfillment_dispatch.shipments import ShipmentRecorder, apply_notices
from fulfillment_dispatch.storage.dispatches import record_webhook
from libs.connectors.base.contract import Capability, Notice, PushRequest
from libs.connectors.base.errors import ConnectorError
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


class ProviderWebhookHandler:
    """Handles POST /webhooks/{provider}/{tenant_id}/{token} and /webhooks/{provider}/{tenant_id}."""

    def __init__(self, pool, accounts: AccountClients, recorder: ShipmentRecorder):
        self._pool = pool
        self._accounts = accounts
        self._recorder = recorder

    async def handle(self, request: web.Request) -> web.Response:
        provider, tenant_id = request.match_info["provider"], request.match_info["tenant_id"]
        account = self._authenticated_account(provider, tenant_id, request)
        if account is None:
            log.warning("provider webhook refused: unknown URL", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(404, "NOT_FOUND", "no such webhook endpoint")
        try:
            return await self._handle(tenant_id, account, request)
        except StorageUnavailable:
            log.exception("could not store a provider webhook", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(503, "TEMPORARILY_UNAVAILABLE", "could not store the webhook; retry later")

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
            receipt = await self._keep(tenant_id, provider, refused.head, outcome, refused.message)
            return json_error(refused.status, refused.code, refused.message, receipt_id=receipt)
        connector = self._accounts.provider_connector(account)
        try:
            head = connector.parse_notice(body)
        except ConnectorError as exc:
            receipt = await self._keep(tenant_id, provider, body, "malformed", exc.message)
            return json_error(400, exc.reason_code, exc.message, receipt_id=receipt)
        if head.ignored_reason:
            if not head.keep:
                return _status(202, "ignored")  # nothing to read back, nothing to keep
            receipt = await self._keep(tenant_id, provider, body, "ignored", head.ignored_reason)
            return _status(202, "ignored", receipt_id=receipt)
        try:
            opened = await self._accounts.provider(tenant_id, account.name)
            notices = await connector.resolve_notice(opened.client, opened.settings, head)
        except ConnectorError as exc:
            if exc.retryable:
                return json_error(503, exc.reason_code, "could not read the order back; retry later")
            receipt = await self._keep(tenant_id, provider, body, "malformed", exc.message)
            return json_error(400, exc.reason_code, exc.message, receipt_id=receipt)
        # A notice may cover several orders (a batch of labels): they are applied together, each
        # with its own outcome; the receipt keeps the distinct outcomes in order.
        outcomes = await self._apply(tenant_id, opened, notices)
        outcome = _summary(outcomes)
        receipt = await self._keep(tenant_id, provider, body, outcome, head.event)
        return _status(200, outcome, receipt_id=receipt)

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
