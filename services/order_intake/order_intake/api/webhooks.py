"""Channel webhook endpoint: find the connector and account, authenticate, keep the body, record, answer.

After authentication and reading the body, a webhook's body takes `WebhookIngest.ingest`; an
operator's resubmission of a kept, refused body (api/webhook_receipts.py) takes the same
function, so both are judged and recorded alike.

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
from order_intake.storage.orders import Recorded, Resubmission, RevisionWriter

log = logging.getLogger(__name__)

# Every outcome the writer records (a channel pushing import-rule or locked-after-sync verdicts
# gets them too; a resubmission may meet them), each a success: the body is stored.
_STATUS_BY_OUTCOME = {
    "accepted": 202,
    "invalid": 202,
    "ignored": 202,
    "not_imported": 202,
    "unchanged": 200,
    "duplicate": 200,
    "stale": 200,
    "kept_accepted": 200,
    "locked_after_sync": 200,
}


# Outcomes of a body intake kept but did not take: operators may resubmit these (api/webhook_receipts.py).
REFUSED_OUTCOMES = frozenset({"malformed", "invalid", "too_large"})
UNAVAILABLE = "unavailable"  # nothing could be stored; trying again can succeed


@dataclass(frozen=True)
class Sender:
    """Whose body it is: the tenant's account and its connector (a webhook authenticated as it)."""

    tenant_id: str
    connector: ChannelConnector
    account: Account


@dataclass(frozen=True)
class Ingested:
    """What taking one body did: its receipt's outcome, and the HTTP answer a webhook gets for it."""

    outcome: str  # a Recorded outcome, or UNAVAILABLE
    status: int
    receipt_id: int = 0  # 0 when nothing was stored (UNAVAILABLE, or a dry run)
    order_id: str | None = None
    code: str = ""  # a refusal's reason code
    message: str = ""  # a refusal's message, or an invalid order's reason


class WebhookIngest:
    """The one path of an authenticated body: connector.parse_push, the revision, the event's size,
    the writer; a refused body is kept with its reason. The webhook route and an operator's
    resubmission (`resubmission` set) both take it, so a resubmitted body is judged exactly as a
    webhook's is; `dry_run` says what would be recorded and records nothing."""

    def __init__(self, tenants: TenantDirectory, writer: RevisionWriter, builder: RevisionBuilder):
        self._tenants = tenants
        self._writer = writer
        self._builder = builder
        self.limits = builder.limits

    def configured_sender(self, tenant_id: str, connector: ChannelConnector, account: str) -> Sender | None:
        """The tenant's account of that name and connector as configured now, or None when the
        tenant or account no longer exists (a resubmission has no credentials to check)."""
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            return None
        matches = [a for a in tenant.accounts_of(connector.info.id) if a.name == account]
        return Sender(tenant_id, connector, matches[0]) if matches else None

    async def ingest(
        self, sender: Sender, body: bytes, *, resubmission: Resubmission | None = None, dry_run: bool = False
    ) -> Ingested:
        """Take one body of `sender` (its size already checked) and say what was recorded."""
        connector, account, tenant_id = sender.connector, sender.account, sender.tenant_id
        source = "push" if resubmission is None else "resubmit"
        try:
            parsed = connector.parse_push(account.settings, body, tenant_id)
            revision = self._builder.from_parsed(
                tenant_id,
                connector.info.id,
                account.name,
                parsed,
                body,
                source=source,
                mail_to=account.import_errors_to,
            )
        except ConnectorError as exc:
            return await self.refuse(
                sender, body, "malformed", 400, InvalidWebhook.reason_code, exc.message, resubmission, dry_run
            )
        revision.resubmission = resubmission
        if revision.order_id is not None:
            trace.get_current_span().set_attribute("ordersync.order_id", revision.order_id)
        # Every log line about this order names it (a context manager: one connection's task
        # serves several requests, so nothing bound may outlive this one).
        with structlog.contextvars.bound_contextvars(tenant=tenant_id, order_id=revision.order_id or ""):
            too_large = self._builder.event_too_large(revision)
            if too_large is not None:
                return await self.refuse(
                    sender, body, "too_large", 413, "PAYLOAD_TOO_LARGE", too_large, resubmission, dry_run
                )
            try:
                if dry_run:
                    [recorded] = await self._writer.preview([revision])
                    recorded = Recorded(recorded.outcome, 0, recorded.order_id)
                else:
                    recorded = await self._writer.record(revision)
            except Exception:
                log.exception("could not record webhook", extra={"fields": {"tenant_id": tenant_id}})
                _count(sender, UNAVAILABLE, resubmission)
                return Ingested(UNAVAILABLE, 503)
            _count(sender, recorded.outcome, resubmission)
            message = revision.detail if recorded.outcome == "invalid" else ""
            return Ingested(
                recorded.outcome,
                _STATUS_BY_OUTCOME[recorded.outcome],
                recorded.receipt_id,
                recorded.order_id,
                message=message,
            )

    async def refuse(
        self,
        sender: Sender,
        body: bytes,
        outcome: str,
        status: int,
        code: str,
        message: str,
        resubmission: Resubmission | None = None,
        dry_run: bool = False,
    ) -> Ingested:
        """Keep a refused body with its reason (UNAVAILABLE when it cannot be kept)."""
        _count(sender, outcome, resubmission)
        tenant_id = sender.tenant_id
        if dry_run:
            return Ingested(outcome, status, code=code, message=message)
        log.warning("webhook refused and kept", extra={"fields": {"tenant_id": tenant_id, "error": message}})
        revision = self._builder.receipt(
            tenant_id,
            sender.connector.info.id,
            sender.account.name,
            body,
            outcome,
            message,
            source="push" if resubmission is None else "resubmit",
        )
        revision.resubmission = resubmission
        try:
            recorded = await self._writer.record(revision)
        except Exception:
            log.exception("could not keep a refused webhook", extra={"fields": {"tenant_id": tenant_id}})
            return Ingested(UNAVAILABLE, 503)
        return Ingested(outcome, status, recorded.receipt_id, code=code, message=message)


def _count(sender: Sender, outcome: str, resubmission: Resubmission | None) -> None:
    # The webhooks counter counts what channels sent; an operator's resubmission is not one.
    if resubmission is None:
        metrics.WEBHOOKS.labels(sender.connector.info.id, outcome).inc()


class WebhookHandler:
    """Handles POST /webhooks/{channel}/{tenant_id}[/{account}][/...] for every pushing channel:
    authenticates and reads the body, then hands it to WebhookIngest. Nothing of an
    unauthenticated request is stored."""

    def __init__(self, tenants: TenantDirectory, registry: Registry, writer: RevisionWriter, builder: RevisionBuilder):
        self._tenants = tenants
        self._registry = registry
        self.ingest = WebhookIngest(tenants, writer, builder)
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
            ingested = await self.ingest.refuse(
                sender, refused.head, outcome, refused.status, refused.code, refused.message
            )
        else:
            ingested = await self.ingest.ingest(sender, body)
        return _answer(ingested)

    def _known_channel(self, channel: str) -> str:
        """The path's channel as a metric label only when it is a connector (the path is anyone's to write)."""
        try:
            return self._registry.channel(channel).info.id
        except UnknownConnector:
            return "unknown"

    def _authenticate(
        self, channel: str, tenant_id: str, account: str | None, tail: str, request: web.Request
    ) -> Sender | None:
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
        return Sender(tenant_id, connector, matches[0]) if matches else None


def _answer(ingested: Ingested) -> web.Response:
    if ingested.outcome == UNAVAILABLE:
        return json_error(503, "TEMPORARILY_UNAVAILABLE", "could not store the webhook; retry later")
    if ingested.status >= 400:
        return json_error(ingested.status, ingested.code, ingested.message, receipt_id=ingested.receipt_id)
    payload = {"status": ingested.outcome, "order_id": ingested.order_id, "receipt_id": ingested.receipt_id}
    if ingested.outcome == "invalid":
        payload["reason"] = ingested.message
    return web.json_response(payload, status=ingested.status)


def build_web_app(handler: WebhookHandler, middlewares) -> web.Application:
    """Return the aiohttp app serving the webhook routes."""
    app = web.Application(
        middlewares=[*middlewares, json_errors_middleware], client_max_size=handler.limits.max_body_bytes
    )
    app.router.add_post("/webhooks/{channel}/{tenant_id}", handler.handle)
    app.router.add_post("/webhooks/{channel}/{tenant_id}/{account}", handler.handle)
    app.router.add_post("/webhooks/{channel}/{tenant_id}/{account}/{tail:.+}", handler.handle)
    return app
