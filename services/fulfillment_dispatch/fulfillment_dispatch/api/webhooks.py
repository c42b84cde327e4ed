"""Vinoshipper webhook endpoint: accept only on the tenant's secret URL, re-fetch, record.

Vinoshipper signs nothing and names no producer, so each tenant gets its own URL with a secret
token, and the body is only a pointer (hrefV3) to re-read with the tenant's API key. A read that
fails transiently answers 503, so Vinoshipper delivers the webhook again.
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

log = logging.getLogger(__name__)


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
            return _json(404, error="NOT_FOUND", message="no such webhook endpoint")
        body = await request.read()
        try:
            webhook = parse_webhook(body)
        except ConnectorError as exc:
            receipt = await self._keep(tenant_id, body, "malformed", exc.message)
            return _json(400, error=exc.reason_code, message=exc.message, receipt_id=receipt)
        if not webhook.is_order_event:
            await self._keep(tenant_id, body, "ignored", f"subject {webhook.subject} is not used")
            return _json(202, status="ignored")
        if not webhook.may_change_shipment:
            return _json(202, status="ignored")  # created/approved: nothing to read back, nothing to keep
        try:
            client = await self._providers.for_tenant(tenant_id)
            detail = await client.fetch_href(webhook.hrefV3)
            shipment = parse_order_detail(detail)
        except ConnectorError as exc:
            if exc.retryable:
                return _json(503, error=exc.reason_code, message="could not read the order back; retry later")
            await self._keep(tenant_id, body, "malformed", exc.message)
            return _json(400, error=exc.reason_code, message=exc.message)
        if str(detail.get("orderNumber")) != webhook.identifier:
            # The body is unsigned: the order read back must be the one it names.
            message = "the order read back from hrefV3 is not the webhook's identifier"
            await self._keep(tenant_id, body, "malformed", message)
            return _json(400, error="MALFORMED_WEBHOOK", message=message)
        outcome = await self._recorder.apply(tenant_id, PROVIDER, webhook.identifier, shipment)
        await self._keep(tenant_id, body, outcome, webhook.event)
        return _json(200, status=outcome)

    def _token_matches(self, tenant_id: str, token: str) -> bool:
        tenant = self._tenants.get(tenant_id)
        if tenant is None or tenant.vinoshipper is None:
            return False
        return hmac.compare_digest(token.encode(), tenant.vinoshipper.webhook_token.value.encode())

    async def _keep(self, tenant_id: str, body: bytes, outcome: str, detail: str) -> int:
        async with self._pool.acquire() as conn:
            return await record_webhook(conn, tenant_id, PROVIDER, body, outcome, detail)


def _json(status: int, **payload) -> web.Response:
    return web.json_response(payload, status=status)


def build_web_app(handler: VinoshipperWebhookHandler, middlewares) -> web.Application:
    """Return the aiohttp app serving provider webhooks and a liveness probe."""
    app = web.Application(middlewares=middlewares, client_max_size=256 * 1024)
    app.router.add_post("/webhooks/vinoshipper/{tenant_id}/{token}", handler.handle)
    return app
