"""Commerce7 webhook endpoint: authenticate per tenant, keep the body, normalise, record, answer.

Commerce7 signs nothing; each webhook definition carries HTTP Basic credentials, checked here per
tenant. Every authenticated body is kept (malformed ones too, for inspection and replay) before
the answer is sent, so an acknowledged webhook is never lost.
"""

from __future__ import annotations

import logging

from aiohttp import web
from opentelemetry import context as otel_context
from opentelemetry import trace
from ordersync.intake.v1 import events_pb2

from libs.connectors.commerce7.orders import parse_order
from libs.connectors.commerce7.webhooks import InvalidWebhook, UnsupportedWebhook, parse_webhook, verify_basic_auth
from libs.platform.events import new_event
from libs.platform.telemetry import current_trace_id
from libs.platform.tenants import TenantDirectory
from order_intake.domain.intake import Validation, order_id_for
from order_intake.storage.orders import Recorded, Revision, RevisionWriter

log = logging.getLogger(__name__)

CHANNEL = "commerce7"
ORDERS_TOPIC = "intake.orders.v1"
_STATUS_BY_OUTCOME = {
    "accepted": 202,
    "invalid": 202,
    "ignored": 202,
    "unchanged": 200,
    "duplicate": 200,
    "stale": 200,
}


class Commerce7WebhookHandler:
    """Handles POST /webhooks/commerce7/{tenant_id}."""

    def __init__(self, tenants: TenantDirectory, writer: RevisionWriter, topic: str, producer_name: str):
        self._tenants = tenants
        self._writer = writer
        self._topic = topic
        self._producer_name = producer_name

    async def handle(self, request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant_id"]
        if not self._authenticated(tenant_id, request.headers.get("Authorization")):
            log.warning("webhook refused: bad credentials", extra={"fields": {"tenant_id": tenant_id}})
            return _error(401, "UNAUTHORIZED", "missing or wrong webhook credentials for this tenant")
        body = await request.read()
        trace.get_current_span().set_attribute("ordersync.tenant_id", tenant_id)
        try:
            revision = self._revision_from(tenant_id, body)
        except UnsupportedWebhook as exc:
            revision = self._base_revision(tenant_id, body, "ignored", exc.message)
        except InvalidWebhook as exc:
            try:
                recorded = await self._keep_malformed(tenant_id, body, exc.message)
            except Exception:
                log.exception("could not keep a malformed webhook", extra={"fields": {"tenant_id": tenant_id}})
                return _error(503, "TEMPORARILY_UNAVAILABLE", "could not store the webhook; retry later")
            return _error(400, exc.reason_code, exc.message, receipt_id=recorded.receipt_id)
        try:
            recorded = await self._writer.record(revision)
        except Exception:
            log.exception("could not record webhook", extra={"fields": {"tenant_id": tenant_id}})
            return _error(503, "TEMPORARILY_UNAVAILABLE", "could not store the webhook; retry later")
        return _answer(recorded, revision.detail)

    def _authenticated(self, tenant_id: str, authorization: str | None) -> bool:
        tenant = self._tenants.get(tenant_id)
        if tenant is None or tenant.commerce7 is None:
            return False  # same answer as bad credentials: do not reveal which tenants exist
        channel = tenant.commerce7
        return verify_basic_auth(authorization, channel.webhook_user, channel.webhook_password.value)

    def _revision_from(self, tenant_id: str, body: bytes) -> Revision:
        webhook = parse_webhook(body)
        tenant = self._tenants.get(tenant_id)
        if webhook.tenantId != tenant.commerce7.tenant_slug:
            raise InvalidWebhook(
                f"webhook is for Commerce7 tenant {webhook.tenantId!r}, but this endpoint"
                f" belongs to {tenant.commerce7.tenant_slug!r}"
            )
        if webhook.action not in ("Create", "Update"):
            return self._base_revision(tenant_id, body, "ignored", f"Order {webhook.action} is not used")
        order, issues = parse_order(webhook.payload, tenant_id=tenant_id)
        order.order_id = order_id_for(tenant_id, CHANNEL, order.external_id)
        validation = Validation.from_issues(issues)
        revision = self._base_revision(
            tenant_id, body, "accepted" if validation.valid else "invalid", validation.reason
        )
        revision.order_id = order.order_id
        revision.external_id = order.external_id
        revision.external_number = order.external_number
        revision.revision = order.revision
        revision.order_proto = order.SerializeToString()
        revision.build_event = lambda first: new_event(
            self._topic,
            events_pb2.OrderAccepted(order=order, first_revision=first),
            aggregate_id=order.order_id,
            tenant_id=tenant_id,
            producer=self._producer_name,
        )
        trace.get_current_span().set_attribute("ordersync.order_id", order.order_id)
        return revision

    def _base_revision(self, tenant_id: str, body: bytes, outcome: str, detail: str) -> Revision:
        return Revision(
            tenant_id=tenant_id,
            channel=CHANNEL,
            body=body,
            trace_id=current_trace_id(),
            outcome_if_new=outcome,
            detail=detail,
            trace_context=otel_context.get_current(),
        )

    async def _keep_malformed(self, tenant_id: str, body: bytes, message: str) -> Recorded:
        log.warning("malformed webhook kept", extra={"fields": {"tenant_id": tenant_id, "error": message}})
        return await self._writer.record(self._base_revision(tenant_id, body, "malformed", message))


def _answer(recorded: Recorded, detail: str) -> web.Response:
    payload = {"status": recorded.outcome, "order_id": recorded.order_id, "receipt_id": recorded.receipt_id}
    if recorded.outcome == "invalid":
        payload["reason"] = detail
    return web.json_response(payload, status=_STATUS_BY_OUTCOME[recorded.outcome])


def _error(status: int, code: str, message: str, **extra) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="ordersync"'} if status == 401 else None
    return web.json_response({"error": code, "message": message, **extra}, status=status, headers=headers)


def build_web_app(handler: Commerce7WebhookHandler, middlewares) -> web.Application:
    """Return the aiohttp app serving the webhook route and a liveness probe."""
    app = web.Application(middlewares=middlewares, client_max_size=2 * 1024 * 1024)
    app.router.add_post("/webhooks/commerce7/{tenant_id}", handler.handle)
    return app
