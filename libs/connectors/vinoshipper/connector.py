"""The Vinoshipper connector: a compliance and fulfilment provider taking one order per call.

Orders are created by PUT keyed by our order number, so a repeated attempt (an earlier one still
under way there, or answered too slowly for us) leaves one order; an attempt that may already
have reached Vinoshipper is read back first. A producer account may ask for Vinoshipper's
compliance check before each create: problems fail the order and nothing is created there.
Webhooks are thin and unsigned: they reach a per-account URL with a secret token and only say
which order to read back.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ordersync.common.v1 import order_pb2

from ..base.contract import (
    Capability,
    ClientResources,
    ConnectorInfo,
    Limits,
    Notice,
    NoticeHead,
    ProviderConnector,
    PushRequest,
    Role,
    SecretResolver,
    Submission,
    SubmitResult,
    Submitted,
    provider_titles,
    submit_one_by_one,
)
from ..base.errors import ConnectorError, InvalidWebhook, NotFound, Rejected
from ..base.settings import SectionReader, SettingsError
from .client import VinoshipperClient
from .orders import build_create_order_request, parse_compliance_response, provider_order_number
from .settings import VinoshipperSettings
from .shipments import parse_order_detail
from .webhooks import parse_webhook


@dataclass(frozen=True)
class VinoshipperAccount:
    """One producer account: API credentials, its webhooks' secret token, the pre-check choice."""

    api: VinoshipperSettings
    webhook_token: str = field(repr=False)
    compliance_precheck: bool = False


class CompliancePrecheckFailed(Rejected):
    """Vinoshipper's compliance check found problems; nothing was created there."""

    reason_code = "COMPLIANCE_PRECHECK_FAILED"


class VinoshipperConnector(ProviderConnector):
    info = ConnectorInfo(
        id="vinoshipper",
        label="Vinoshipper",
        roles=frozenset({Role.PROVIDER}),
        capabilities=frozenset(
            {
                Capability.SUBMIT,
                Capability.READ_BACK,
                Capability.CANCEL,
                Capability.PUSH_NOTICES,
                Capability.COMPLIANCE_CHECK,
            }
        ),
        # Vinoshipper publishes no rate limit and has no bulk create: one order a call, a
        # modest number in flight.
        limits=Limits(batch_size=1, requests_per_minute=None, concurrency=16),
        status_titles=provider_titles("Vinoshipper"),
        needs_service_code=True,  # the UPS rate code, from carrier mapping
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> VinoshipperAccount:
        read = SectionReader(section, resolve, where)
        try:
            api = VinoshipperSettings(
                api_key=read.text("api_key"),
                api_secret=read.secret("api_secret"),
                base_url=read.text("base_url", "https://vinoshipper.com"),
                order_number_prefix=read.text("order_number_prefix"),
                timeout_s=read.positive_number("timeout_s", 10.0),
            )
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        account = VinoshipperAccount(api, read.secret("webhook_token"), read.boolean("compliance_precheck", False))
        read.finish()
        return account

    def unique_keys(self, settings: VinoshipperAccount) -> Sequence[str]:
        # Vinoshipper order numbers are global: two tenants with one prefix would collide there.
        return (f"order_number_prefix {settings.api.order_number_prefix!r}",)

    def open_client(self, settings: VinoshipperAccount, resources: ClientResources) -> VinoshipperClient:
        return VinoshipperClient(dataclasses.replace(settings.api, max_concurrency=resources.max_concurrency))

    def order_number(self, settings: VinoshipperAccount, order: order_pb2.Order) -> str:
        return provider_order_number(settings.api.order_number_prefix, order)

    async def submit(
        self, client: VinoshipperClient, settings: VinoshipperAccount, batch: Sequence[Submission]
    ) -> list[SubmitResult]:
        return await submit_one_by_one(batch, lambda item: self._submit_one(client, settings, item))

    async def _submit_one(self, client: VinoshipperClient, settings: VinoshipperAccount, item: Submission) -> Submitted:
        number = item.order_number
        if item.may_exist and await _exists(client, number):
            return Submitted(f"found at the provider as {number} after an interrupted attempt; not sent again")
        body = build_create_order_request(item.order, order_number=number, rate_code=item.service_code)
        if settings.compliance_precheck:
            problems = parse_compliance_response(await client.check_compliance(body))
            if problems:
                raise CompliancePrecheckFailed(
                    "Vinoshipper's compliance check found problems; nothing was created there", details=problems
                )
        try:
            # Created by PUT, keyed by the order number: should an earlier attempt still be
            # under way at the provider (it answered too slowly for us), the two requests
            # leave one order, where a POST would be refused as a duplicate submission.
            created = await client.create_order(body)
        except ConnectorError as exc:
            if exc.reason_code == "ORDER_ALREADY_EXISTS" and await _exists(client, number):
                return Submitted(f"already at the provider as {number}; not sent again")
            raise
        if not created.created:
            return Submitted(f"already at the provider as {number} from an earlier attempt; not created again")
        return Submitted(f"sent to the provider as {number} (UPS rate code {item.service_code})")

    async def read_back(
        self, client: VinoshipperClient, settings: VinoshipperAccount, order_number: str
    ) -> Notice | None:
        detail = await client.get_order(order_number)
        if detail is None:
            return None
        return Notice(order_number, parse_order_detail(detail), "read back")

    async def cancel(
        self, client: VinoshipperClient, settings: VinoshipperAccount, order_number: str, reason: str
    ) -> None:
        await client.cancel_order(order_number, reason)

    def authenticate_notice(self, settings: VinoshipperAccount, request: PushRequest) -> bool:
        token = request.path_tail.encode(errors="replace")
        return bool(request.path_tail) and hmac.compare_digest(token, settings.webhook_token.encode())

    def parse_notice(self, body: bytes) -> NoticeHead:
        webhook = parse_webhook(body)
        if not webhook.is_order_event:
            return NoticeHead(
                webhook.identifier, webhook.event, ignored_reason=f"subject {webhook.subject[:40]!r} is not used"
            )
        if not webhook.may_change_shipment:
            # created/approved: nothing to read back, nothing to keep
            return NoticeHead(webhook.identifier, webhook.event, ignored_reason="no shipment news", keep=False)
        return NoticeHead(webhook.identifier, webhook.event, reference=webhook.hrefV3 or "")

    async def resolve_notice(
        self, client: VinoshipperClient, settings: VinoshipperAccount, head: NoticeHead
    ) -> list[Notice]:
        detail = await client.fetch_href(head.reference)
        shipment = parse_order_detail(detail)
        if str(detail.get("orderNumber")) != head.order_number:
            # The body is unsigned: the order read back must be the one it names.
            raise InvalidWebhook("the order read back from hrefV3 is not the webhook's identifier")
        return [Notice(head.order_number, shipment, head.event)]


async def _exists(client: VinoshipperClient, order_number: str) -> bool:
    try:
        return await client.get_order(order_number) is not None
    except NotFound:
        return False


CONNECTOR = VinoshipperConnector()
