"""Vinoshipper webhook endpoint: accept only on the tenant's secret URL, re-fetch, record.

Vinoshipper signs nothing and names no producer, so each tenant gets its own URL with a secret
token, and the body is only a pointer (hrefV3) to re-read with the tenant's API key. Every body
that reaches the secret URL is kept with what became of it, except created/approved events,
which cannot move a shipment. Refusals are 4xx with a JSON reason (415 media type, 413 size,
400 malformed or an unusable read-back); 503 only when a redelivery can succeed: the read-back
failed transiently, or the database could not be reached.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from fulfillment_dispatch.providers import PROVIDER, ProviderClients
from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.dispatches import record_webhook
from libs.connectors.base.errors import ConnectorError
from libs.connectors.vinoshipper.shipments import parse_order_detail
from libs.connectors.vinoshipper.webhooks import parse_webhook
from libs.platform.tenants import TenantDirectory
from libs.platform.webhook_http import (
    RefusedBody,
    json_error,
    json_errors_middleware,
    read_json_body,
    storable_text,
)

log = logging.getLogger(__name__)

# Vinoshipper's webhooks are a few hundred bytes: {identifier, subject, event, href, hrefV3}.
MAX_BODY_BYTES = 64 * 1024


class StorageUnavailable(Exception):
    """The database could not be reached or used: answer 503, so Vinoshipper sends the webhook again.

    A redelivery is harmless: a shipment state already applied is `unchanged` the second time.
    """


class VinoshipperWebhookHandler:
    """Handles POST /webhooks/vinoshipper/{tenant_id}/{token}."""

    def __init__(self, pool, tenants: TenantDirectory, providers: ProviderClients, recorder: ShipmentRecorder):
        self._pool = pool
        self._tenants = tenants
        self._providers = providers
        self._recorder = recorder

    async def handle(self, request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant_id"]
        if not self._token_matches(tenant_id, request.match_info["token"]):
            log.warning("provider webhook refused: unknown URL", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(404, "NOT_FOUND", "no such webhook endpoint")
        try:
            return await self._handle(tenant_id, request)
        except StorageUnavailable:
            log.exception("could not store a provider webhook", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(503, "TEMPORARILY_UNAVAILABLE", "could not store the webhook; retry later")

    async def _handle(self, tenant_id: str, request: web.Request) -> web.Response:
        try:
            body = await read_json_body(request, MAX_BODY_BYTES)
        except RefusedBody as refused:
            outcome = "too_large" if refused.status == 413 else "malformed"
            receipt = await self._keep(tenant_id, refused.head, outcome, refused.message)
            return json_error(refused.status, refused.code, refused.message, receipt_id=receipt)
        try:
            webhook = parse_webhook(body)
        except ConnectorError as exc:
            receipt = await self._keep(tenant_id, body, "malformed", exc.message)
            return json_error(400, exc.reason_code, exc.message, receipt_id=receipt)
        if not webhook.is_order_event:
            receipt = await self._keep(tenant_id, body, "ignored", f"subject {webhook.subject[:40]!r} is not used")
            return _status(202, "ignored", receipt_id=receipt)
        if not webhook.may_change_shipment:
            return _status(202, "ignored")  # created/approved: nothing to read back, nothing to keep
        try:
            client = await self._providers.for_tenant(tenant_id)
            detail = await client.fetch_href(webhook.hrefV3 or "")
            shipment = parse_order_detail(detail)
        except ConnectorError as exc:
            if exc.retryable:
                return json_error(503, exc.reason_code, "could not read the order back; retry later")
            receipt = await self._keep(tenant_id, body, "malformed", exc.message)
            return json_error(400, exc.reason_code, exc.message, receipt_id=receipt)
        if str(detail.get("orderNumber")) != webhook.identifier:
            # The body is unsigned: the order read back must be the one it names.
            message = "the order read back from hrefV3 is not the webhook's identifier"
            receipt = await self._keep(tenant_id, body, "malformed", message)
            return json_error(400, "MALFORMED_WEBHOOK", message, receipt_id=receipt)
        outcome = await self._apply(tenant_id, webhook.identifier, shipment)
        receipt = await self._keep(tenant_id, body, outcome, webhook.event)
        return _status(200, outcome, receipt_id=receipt)

    def _token_matches(self, tenant_id: str, token: str) -> bool:
        tenant = self._tenants.get(tenant_id)
        if tenant is None or tenant.vinoshipper is None:
            return False
        return hmac.compare_digest(token.encode(errors="replace"), tenant.vinoshipper.webhook_token.value.encode())

    async def _apply(self, tenant_id: str, provider_order_number: str, shipment) -> str:
        try:
            return await self._recorder.apply(tenant_id, PROVIDER, provider_order_number, shipment)
        except Exception as exc:  # asyncpg raises several families (and OSError) for a lost database
            raise StorageUnavailable() from exc

    async def _keep(self, tenant_id: str, body: bytes, outcome: str, detail: str) -> int:
        """Keep the body with what became of it; return the receipt's id."""
        try:
            async with self._pool.acquire() as conn:
                return await record_webhook(conn, tenant_id, PROVIDER, body, outcome, storable_text(detail))
        except Exception as exc:
            # asyncpg raises several families (and OSError) for a lost database. What is written
            # is made storable first, so a hostile body does not make this permanent.
            raise StorageUnavailable() from exc


def _status(http_status: int, status: str, **extra) -> web.Response:
    # Not `_json(status, status=...)`: the answer's "status" field is not the HTTP status.
    return web.json_response({"status": status, **extra}, status=http_status)


def build_web_app(handler: VinoshipperWebhookHandler, middlewares) -> web.Application:
    """Return the aiohttp app serving provider webhooks and a liveness probe."""
    app = web.Application(middlewares=[*middlewares, json_errors_middleware], client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/webhooks/vinoshipper/{tenant_id}/{token}", handler.handle)
    return app
