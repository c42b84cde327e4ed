"""The store endpoint a pulling provider calls: `GET|POST /stores/{provider}/{tenant_id}/{account}`.

For a provider account whose routes are in custom_store mode (fulfillment_dispatch.custom_store).
The connector reads what the call asks (`parse_pull`; ShipStation's Custom Store:
`GET ?action=export&start_date=MM/dd/yyyy HH:mm&end_date=...&page=N` and
`POST ?action=shipnotify&order_number=...`):

- an EXPORT answers one page of the account's held and fetched orders that changed in the
  window, as the connector renders it (with how many pages there are); the held ones on it
  become Sent;
- a POST_SHIPMENT takes the provider's shipment notice (the connector parses it; ShipStation's
  refuses DTDs and entities) and applies it through the ShipmentRecorder the webhooks use. The
  body is kept, as webhooks are.

The provider must be registered with PULLED_BY_PROVIDER and the account be one of the tenant's
accounts of it, else 404; the request must carry the account's credentials
(`authenticate_pull`), else 401 with a Basic challenge. Then 400 for a malformed request or
notice, 413 for a notice over MAX_BODY_BYTES, 503 only when the database could not be used (a
retry can succeed). Every refusal is JSON `{"error", "message"}`.
"""

from __future__ import annotations

import logging

from aiohttp import web

from fulfillment_dispatch.api.webhooks import StorageUnavailable
from fulfillment_dispatch.custom_store import Exporter, PageOutOfRange, Window
from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.dispatches import record_webhook
from libs.connectors.base.contract import Capability, PullAction, PulledByProvider, PullRequest, PushRequest
from libs.connectors.base.errors import ConnectorError
from libs.platform.accounts import AccountClients
from libs.platform.tenants import Account
from libs.platform.webhook_http import RefusedBody, json_error, read_bounded_body, storable_text

log = logging.getLogger(__name__)

PATH = "/stores/{provider}/{tenant_id}/{account}"
MAX_BODY_BYTES = 1024 * 1024  # a ShipNotice is a few kilobytes; one with hundreds of items stays far below


class CustomStoreHandler:
    """Serves the store endpoint of every tenant's pull-mode provider accounts."""

    def __init__(self, accounts: AccountClients, exporter: Exporter, recorder: ShipmentRecorder):
        self._accounts = accounts
        self._exporter = exporter
        self._recorder = recorder

    async def handle(self, request: web.Request) -> web.StreamResponse:
        tenant_id = request.match_info["tenant_id"]
        found = self._account(request)
        if found is None:
            log.warning("store call refused: unknown store", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(404, "NOT_FOUND", "no such store endpoint")
        account, connector = found
        if not connector.authenticate_pull(account.settings, PushRequest(headers=request.headers)):
            log.warning("store call refused: bad credentials", extra={"fields": {"tenant_id": tenant_id}})
            challenge = {"WWW-Authenticate": 'Basic realm="ordersync store", charset="UTF-8"'}
            return json_error(401, "UNAUTHORIZED", "the store's user name and password are required", headers=challenge)
        try:
            asked = connector.parse_pull(account.settings, request.method, request.query)
        except ConnectorError as exc:  # the call is malformed
            return json_error(400, exc.reason_code, exc.message)
        try:
            if asked.action is PullAction.EXPORT:
                return await self._export(tenant_id, account, connector, asked)
            return await self._post_shipment(tenant_id, account, connector, asked, request)
        except StorageUnavailable:
            log.exception("store call could not use the database", extra={"fields": {"tenant_id": tenant_id}})
            return json_error(503, "TEMPORARILY_UNAVAILABLE", "could not reach the order store; retry later")

    def _account(self, request: web.Request) -> tuple[Account, PulledByProvider] | None:
        """The tenant's account named in the URL, of a provider that pulls from us, or None."""
        provider = request.match_info["provider"]
        try:
            connector = self._accounts.registry.provider(provider)
            tenant = self._accounts.tenant(request.match_info["tenant_id"])
        except LookupError:  # UnknownConnector, AccountNotConfigured: the same 404 as an unknown account
            return None
        account = tenant.account(request.match_info["account"])
        if account is None or account.connector != provider or not isinstance(connector, PulledByProvider):
            return None
        if not connector.info.can(Capability.PULLED_BY_PROVIDER):
            return None
        return account, connector

    async def _export(
        self, tenant_id: str, account: Account, connector: PulledByProvider, asked: PullRequest
    ) -> web.Response:
        assert asked.start is not None and asked.end is not None  # parse_pull sets them for an export
        try:
            body = await self._exporter.export(
                tenant_id, account, connector, Window(asked.start, asked.end, asked.page)
            )
        except PageOutOfRange as exc:
            return json_error(400, "INVALID_REQUEST", str(exc))
        except (ConnectorError, ValueError) as exc:
            # An account setting the connector cannot render with (e.g. an unmapped status): a
            # retry cannot help until the tenants file is fixed.
            raise RuntimeError(f"could not render the export: {exc}") from exc
        except Exception as exc:  # asyncpg raises several families (and OSError) for a lost database
            raise StorageUnavailable() from exc
        # The one pull protocol served (ShipStation's Custom Store) exports XML.
        return web.Response(body=body, content_type="application/xml", charset="utf-8")

    async def _post_shipment(
        self, tenant_id: str, account: Account, connector: PulledByProvider, asked: PullRequest, request: web.Request
    ) -> web.Response:
        provider = account.connector
        try:
            body = await read_bounded_body(request, MAX_BODY_BYTES)
        except RefusedBody as refused:
            receipt = await self._keep(tenant_id, provider, refused.head, "too_large", refused.message)
            return json_error(413, refused.code, refused.message, receipt_id=receipt)
        try:
            notice = connector.parse_posted_shipment(account.settings, body)
        except ConnectorError as exc:
            receipt = await self._keep(tenant_id, provider, body, "malformed", exc.message)
            return json_error(400, exc.reason_code, exc.message, receipt_id=receipt)
        if asked.order_number and asked.order_number != notice.order_number:
            message = "the order number the call names differs from the notice's"
            receipt = await self._keep(tenant_id, provider, body, "malformed", message)
            return json_error(400, "INVALID_REQUEST", message, receipt_id=receipt)
        try:
            outcome = await self._recorder.apply(tenant_id, provider, notice.order_number, notice.shipment)
        except Exception as exc:  # a lost database, in any of asyncpg's families
            raise StorageUnavailable() from exc
        receipt = await self._keep(tenant_id, provider, body, outcome, notice.event)
        return web.json_response({"status": outcome, "receipt_id": receipt})

    async def _keep(self, tenant_id: str, provider: str, body: bytes, outcome: str, detail: str) -> int:
        try:
            async with self._recorder.pool.acquire() as conn:
                return await record_webhook(conn, tenant_id, provider, body, outcome, storable_text(detail))
        except Exception as exc:
            raise StorageUnavailable() from exc


def add_store_routes(app: web.Application, handler: CustomStoreHandler) -> None:
    """Serve the store endpoint on `app` (dispatch's webhook listener)."""
    app.router.add_get(PATH, handler.handle)
    app.router.add_post(PATH, handler.handle)
