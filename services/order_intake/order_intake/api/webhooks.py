"""Channel webhook endpoint: find the connector and account, authenticate, keep the body, record, answer.

One route shape serves every channel that pushes orders: `POST /webhooks/{channel}/{tenant_id}`,
where `channel` is a connector id of the registry. A tenant with several accounts of one
connector names the account: `/webhooks/{channel}/{tenant_id}/{account}`; without it, each of
the tenant's accounts of that connector is tried. Whatever follows the account is the
`path_tail` the connector authenticates with, e.g. a secret token. The connector checks the
credentials and parses the body; the revision is built in `order_intake.revisions`, as for
pulled orders.

Every authenticated body is kept before the answer is sent (refused ones too, for inspection and
replay), so an acknowledged webhook is never lost and a refused one can be found. An unknown
connector, tenant or account gets the same 401 as wrong credentials, so nobody learns which
exist. Refusals are 4xx with a JSON reason (415 media type, 413 size, 400 malformed); 503 only
when the body could not be stored, which a redelivery can fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import structlog
from aiohttp import web
from opentelemetry import trace

from libs.connectors.base.contract import Capability, ChannelConnector, PushRequest
from libs.connectors.base.errors import ConnectorError, InvalidWebhook
from libs.connectors.registry import Registry, UnknownConnector
from libs.platform import metrics
from libs.platform.tenants import Account, TenantDirectory
from libs.platform.webhook_http import RefusedBody, json_error, json_errors_middleware, read_json_body
from order_intake.revisions import RevisionBuilder
from order_intake.storage.orders import Recorded, RevisionWriter

log = logging.getLogger(__name__)

_STATUS_BY_OUTCOME = {
    "accepted": 202,
    "invalid": 202,
    "ignored": 202,
    "unchanged": 200,
    "duplicate": 200,
    "stale": 200,
}


@dataclass(frozen=True)
class _Sender:
    """Who a webhook authenticated as: the tenant's account and its connector."""

    tenant_id: str
    connector: ChannelConnector
    account: Account


class WebhookHandler:
    """Handles POST /webhooks/{channel}/{tenant_id}[/{account}][/...] for every pushing channel."""

    def __init__(self, tenants: TenantDirectory, registry: Registry, writer: RevisionWriter, builder: RevisionBuilder):
        self._tenants = tenants
        self._registry = registry
        self._writer = writer
        self._builder = builder
        self.limits = builder.limits

    async def handle(self, request: web.Request) -> web.Response:
        tenant_id = request.match_info["tenant_id"]
        sender = self._authenticate(
            request.match_info["channel"],
            tenant_id,
            request.match_info.get("account"),
            request.match_info.get("tail", ""),
            request,
        )
        if sender is None:
            metrics.WEBHOOKS.labels(self._known_channel(request.match_info["channel"]), "unauthenticated").inc()
            log.warning("webhook refused: bad credentials", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(
                401,
                "UNAUTHORIZED",
                "missing or wrong webhook credentials for this tenant",
                headers={"WWW-Authenticate": 'Basic realm="ordersync"'},
            )
        trace.get_current_span().set_attribute("ordersync.tenant_id", tenant_id)
        try:
            body = await read_json_body(request, self.limits.max_body_bytes)
        except RefusedBody as refused:
            outcome = "too_large" if refused.status == 413 else "malformed"
            return await self._refuse(sender, refused.head, outcome, refused.status, refused.code, refused.message)
        connector, account = sender.connector, sender.account
        try:
            parsed = connector.parse_push(account.settings, body, tenant_id)
            revision = self._builder.from_parsed(
                tenant_id, connector.info.id, account.name, parsed, body, mail_to=account.import_errors_to
            )
        except ConnectorError as exc:
            return await self._refuse(sender, body, "malformed", 400, InvalidWebhook.reason_code, exc.message)
        if revision.order_id is not None:
            trace.get_current_span().set_attribute("ordersync.order_id", revision.order_id)
        # Every log line about this order names it (a context manager: one connection's task
        # serves several requests, so nothing bound may outlive this one).
        with structlog.contextvars.bound_contextvars(tenant=tenant_id, order_id=revision.order_id or ""):
            too_large = self._builder.event_too_large(revision)
            if too_large is not None:
                return await self._refuse(sender, body, "too_large", 413, "PAYLOAD_TOO_LARGE", too_large)
            try:
                recorded = await self._writer.record(revision)
            except Exception:
                log.exception("could not record webhook", extra={"fields": {"tenant_id": tenant_id}})
                metrics.WEBHOOKS.labels(connector.info.id, "unavailable").inc()
                return _unavailable()
            metrics.WEBHOOKS.labels(connector.info.id, recorded.outcome).inc()
            return _answer(recorded, revision.detail)

    def _known_channel(self, channel: str) -> str:
        """The path's channel as a metric label only when it is a connector (the path is anyone's to write)."""
        try:
            return self._registry.channel(channel).info.id
        except UnknownConnector:
            return "unknown"

    def _authenticate(
        self, channel: str, tenant_id: str, account: str | None, tail: str, request: web.Request
    ) -> _Sender | None:
        """The account whose credentials the webhook carries, or None (unknown or wrong alike)."""
        try:
            connector = self._registry.channel(channel)
        except UnknownConnector:
            return None
        tenant = self._tenants.get(tenant_id)
        if tenant is None or not connector.info.can(Capability.PUSH_ORDERS):
            return None
        candidates = tenant.accounts_of(channel)
        if account is not None:
            candidates = [a for a in candidates if a.name == account]
        push = PushRequest(headers=request.headers, path_tail=tail)
        # Every candidate is checked (each in constant time), so timing tells nothing either.
        matches = [a for a in candidates if connector.authenticate_push(a.settings, push)]
        return _Sender(tenant_id, connector, matches[0]) if matches else None

    async def _refuse(
        self, sender: _Sender, body: bytes, outcome: str, status: int, code: str, message: str
    ) -> web.Response:
        """Keep a refused body with its reason, then answer the 4xx (or 503 when it cannot be kept)."""
        metrics.WEBHOOKS.labels(sender.connector.info.id, outcome).inc()
        tenant_id = sender.tenant_id
        log.warning("webhook refused and kept", extra={"fields": {"tenant_id": tenant_id, "error": message}})
        revision = self._builder.receipt(
            tenant_id, sender.connector.info.id, sender.account.name, body, outcome, message
        )
        try:
            recorded = await self._writer.record(revision)
        except Exception:
            log.exception("could not keep a refused webhook", extra={"fields": {"tenant_id": tenant_id}})
            return _unavailable()
        return json_error(status, code, message, receipt_id=recorded.receipt_id)


def _answer(recorded: Recorded, detail: str) -> web.Response:
    payload = {"status": recorded.outcome, "order_id": recorded.order_id, "receipt_id": recorded.receipt_id}
    if recorded.outcome == "invalid":
        payload["reason"] = detail
    return web.json_response(payload, status=_STATUS_BY_OUTCOME[recorded.outcome])


def _unavailable() -> web.Response:
    return json_error(503, "TEMPORARILY_UNAVAILABLE", "could not store the webhook; retry later")


def build_web_app(handler: WebhookHandler, middlewares) -> web.Application:
    """Return the aiohttp app serving the webhook routes."""
    app = web.Application(
        middlewares=[*middlewares, json_errors_middleware], client_max_size=handler.limits.max_body_bytes
    )
    app.router.add_post("/webhooks/{channel}/{tenant_id}", handler.handle)
    app.router.add_post("/webhooks/{channel}/{tenant_id}/{account}", handler.handle)
    app.router.add_post("/webhooks/{channel}/{tenant_id}/{account}/{tail:.+}", handler.handle)
    return app
