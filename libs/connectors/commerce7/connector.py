"""The Commerce7 connector: a sales channel that pushes order webhooks and takes fulfilments back.

Webhooks carry HTTP Basic credentials (no signature) and the tenant slug they claim; the
credentials are checked here per account and the slug must be the account's. Writing back,
Commerce7 takes no idempotency key, so the order is read first and a fulfilment with the same
tracking numbers is never posted twice; tracking of a label the provider voided is taken back by
removing its fulfilment. Requests are paced per Commerce7 tenant (100 a minute).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..base.contract import (
    Capability,
    ChannelConnector,
    ChannelUpdate,
    ClientResources,
    ConnectorInfo,
    Ignored,
    Limits,
    OrderPage,
    ParsedOrder,
    PushRequest,
    Role,
    SecretResolver,
    WritebackStep,
)
from ..base.errors import InvalidWebhook, NotFound
from ..base.settings import SectionReader, SettingsError
from .client import BURST, Commerce7Client
from .fulfillments import (
    build_delivered_update,
    build_shipped_fulfillment,
    build_voided_update,
    fulfillments_to_retract,
    order_has_fulfillment_with_tracking,
)
from .orders import parse_order
from .settings import Commerce7Settings
from .webhooks import UnsupportedWebhook, parse_webhook, verify_basic_auth


@dataclass(frozen=True)
class Commerce7Account:
    """One tenant's Commerce7 store: API credentials and the Basic credentials of its webhooks."""

    api: Commerce7Settings
    webhook_user: str
    webhook_password: str = field(repr=False)


class Commerce7Connector(ChannelConnector):
    info = ConnectorInfo(
        id="commerce7",
        label="Commerce7",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset({Capability.PUSH_ORDERS, Capability.WRITE_BACK, Capability.LIST_ORDERS}),
        limits=Limits(batch_size=1, requests_per_minute=100, concurrency=4),
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> Commerce7Account:
        read = SectionReader(section, resolve, where)
        try:
            api = Commerce7Settings(
                tenant_id=read.text("tenant_slug"),
                app_id=read.text("app_id"),
                app_secret=read.secret("app_secret"),
                base_url=read.text("base_url", "https://api.commerce7.com/v1"),
                rate_limit_per_minute=read.positive_int("rate_limit_per_minute", 100),
                timeout_s=read.positive_number("timeout_s", 10.0),
            )
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        account = Commerce7Account(api, read.text("webhook_user"), read.secret("webhook_password"))
        read.finish()
        return account

    def open_client(self, settings: Commerce7Account, resources: ClientResources) -> Commerce7Client:
        limiter = resources.limiter_for(self.info.id, settings.api.rate_limit_per_minute, BURST)
        return Commerce7Client(settings.api, rate_limiter=limiter)

    def authenticate_push(self, settings: Commerce7Account, request: PushRequest) -> bool:
        return verify_basic_auth(request.headers.get("Authorization"), settings.webhook_user, settings.webhook_password)

    def parse_push(self, settings: Commerce7Account, body: bytes, tenant_id: str) -> ParsedOrder | Ignored:
        try:
            webhook = parse_webhook(body)
        except UnsupportedWebhook as exc:
            return Ignored(exc.message)
        if webhook.tenantId != settings.api.tenant_id:
            raise InvalidWebhook(
                f"webhook is for Commerce7 tenant {webhook.tenantId!r}, but this endpoint"
                f" belongs to {settings.api.tenant_id!r}"
            )
        if webhook.action not in ("Create", "Update"):
            return Ignored(f"Order {webhook.action} is not used")
        order, issues = parse_order(webhook.payload, tenant_id=tenant_id)
        return ParsedOrder(order, issues)

    async def list_orders(
        self,
        client: Commerce7Client,
        settings: Commerce7Account,
        since: datetime,
        until: datetime,
        cursor: str,
        tenant_id: str,
    ) -> OrderPage:
        # The list holds the full order, as a webhook's payload does: the same parse, the same
        # revision (updatedAt), so an order listed and pushed dedupes.
        orders, next_cursor = await client.list_orders_page((_iso(since), _iso(until)), cursor)
        parsed = []
        for raw in orders:
            order, issues = parse_order(raw, tenant_id=tenant_id)
            parsed.append(ParsedOrder(order, issues))
        return OrderPage(parsed, next_cursor, more=bool(next_cursor))

    async def write_back(self, client: Commerce7Client, settings: Commerce7Account, update: ChannelUpdate) -> bool:
        # Read the order first: Commerce7 takes no idempotency key, so what is already there
        # decides what to write, and metaData updates must keep the keys other apps wrote.
        order = await client.get_order(update.external_id)
        meta_data = order.get("metaData") or {}
        notified = False
        for step in update.steps:
            if step is WritebackStep.RETRACT:
                order = await _retract(client, order, update)
            elif step is WritebackStep.SHIP:
                notified = await _write_shipped(client, order, update)
            elif step is WritebackStep.DELIVER:
                patch = build_delivered_update(update.shipment, existing_meta_data=meta_data)
                await client.update_order(update.external_id, patch)
            elif step is WritebackStep.VOID:
                await client.update_order(
                    update.external_id, build_voided_update(update.shipment, existing_meta_data=meta_data)
                )
        return notified


async def _retract(client: Commerce7Client, order: dict, update: ChannelUpdate) -> dict:
    """Remove the fulfillments carrying a voided label's tracking; return the order as it is now.

    A fulfillment already gone (a repeat after a lost answer) is not an error.
    """
    retracted = fulfillments_to_retract(order, update.shipment.voided_tracking_numbers)
    if not retracted:
        return order
    for fulfillment_id in retracted:
        try:
            await client.delete_fulfillment(update.external_id, fulfillment_id)
        except NotFound:
            continue
    return await client.get_order(update.external_id)


async def _write_shipped(client: Commerce7Client, order: dict, update: ChannelUpdate) -> bool:
    """Post the shipped fulfilment unless the order already has it; True if the customer is e-mailed."""
    if order_has_fulfillment_with_tracking(order, list(update.shipment.tracking_numbers)):
        return False
    body = build_shipped_fulfillment(update.shipment, notify_customer=True, carrier=update.carrier)
    await client.create_fulfillment_all(update.external_id, body)
    return True


CONNECTOR = Commerce7Connector()


def _iso(moment: datetime) -> str:
    """A filter bound as Commerce7 writes its timestamps: UTC, milliseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
