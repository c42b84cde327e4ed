"""A fake batch provider for dispatch's service tests: a ProviderConnector in a test Registry.

The provider is the external system, so its double stands in for the vendor (an in-test object
recording every call and holding the orders it took); everything of ordersync's own (Postgres,
carrier mapping over gRPC) is real. How the vendor answers an order is chosen by the order's
channel number: see `FakeVendor.answer`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ordersync.common.v1 import order_pb2, shipment_pb2

from fulfillment_dispatch.shipments import ShipmentRecorder
from fulfillment_dispatch.storage.dispatches import NewDispatch, enqueue
from libs.connectors.base.contract import (
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
)
from libs.connectors.base.errors import InvalidWebhook, Rejected, Unavailable
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.tenants import Account, Route, Tenant, TenantDirectory

TENANT = "acme"
REFUSED = "refuse"  # an order number the vendor refuses for good
BUSY = "busy"  # ... answers "try again later" for
DOWN = "down"  # ... fails the whole call for
OWN_ID = "own-id"  # ... gives an id of its own for (as VinSuite's OrderID)
NOTICE_TOKEN = "notice-s3cret"  # the 'notices' account's header token


class UnknownProduct(Rejected):
    reason_code = "UNKNOWN_SKU"


@dataclass(frozen=True)
class FakeAccount:
    prefix: str
    notice_token: str = ""  # what the vendor's notices carry in X-Notice-Token


@dataclass
class FakeVendor:
    """The provider's side: the calls it received, the orders it holds, what it cancelled."""

    calls: list[list[Submission]] = field(default_factory=list)
    orders: dict[str, shipment_pb2.Shipment] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    hold: asyncio.Event | None = None  # set: the next call waits for it
    rereads: int = 0  # notices resolved (re-read)
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, item: Submission) -> SubmitResult:
        number = item.order.external_number
        if number.startswith(REFUSED):
            return UnknownProduct("SKU CAB-1999 is not a product of this producer", details=["CAB-1999"])
        if number.startswith(BUSY):
            return Unavailable("the provider answered 503")
        self.orders.setdefault(item.order_number, shipment_pb2.Shipment())
        if number.startswith(OWN_ID):
            return Submitted(f"taken as {item.order_number}", provider_reference=f"V{len(self.orders)}")
        return Submitted(f"taken as {item.order_number}")

    def ship(self, order_number: str, tracking: str) -> None:
        self.orders[order_number] = shipment_pb2.Shipment(
            status=shipment_pb2.SHIPMENT_STATUS_SHIPPED, tracking_numbers=[tracking]
        )


class FakeClient:
    """What open_client returns: the account's way to the vendor."""

    def __init__(self, vendor: FakeVendor):
        self.vendor = vendor

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc) -> None:
        return None


class FakeProvider(ProviderConnector):
    """A provider taking `batch_size` orders a call; read back, cancel and service codes optional."""

    def __init__(
        self,
        connector_id: str,
        vendor: FakeVendor,
        *,
        batch_size: int = 3,
        can_cancel: bool = True,
        needs_service_code: bool = False,
        push_notices: bool = False,
    ):
        label = connector_id.capitalize()
        capabilities = {Capability.SUBMIT, Capability.READ_BACK}
        capabilities |= {Capability.CANCEL} if can_cancel else set()
        capabilities |= {Capability.PUSH_NOTICES} if push_notices else set()
        self.info = ConnectorInfo(
            id=connector_id,
            label=label,
            roles=frozenset({Role.PROVIDER}),
            capabilities=frozenset(capabilities),
            limits=Limits(batch_size=batch_size, concurrency=2),
            status_titles=provider_titles(label),
            needs_service_code=needs_service_code,
        )
        self.vendor = vendor

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> FakeAccount:
        return FakeAccount(section["prefix"])

    def open_client(self, settings: FakeAccount, resources: ClientResources) -> Any:
        return FakeClient(self.vendor)

    def order_number(self, settings: FakeAccount, order: order_pb2.Order) -> str:
        return f"{settings.prefix}-{order.external_number}"

    async def submit(
        self, client: FakeClient, settings: FakeAccount, batch: Sequence[Submission]
    ) -> list[SubmitResult]:
        vendor = client.vendor
        vendor.calls.append(list(batch))
        vendor.entered.set()
        if vendor.hold is not None:
            hold, vendor.hold = vendor.hold, None
            await hold.wait()
        if any(item.order.external_number.startswith(DOWN) for item in batch):
            raise Unavailable("the provider is down for maintenance")
        return [vendor.answer(item) for item in batch]

    async def read_back(self, client: FakeClient, settings: FakeAccount, order_number: str) -> Notice | None:
        shipment = client.vendor.orders.get(order_number)
        return None if shipment is None else Notice(order_number, shipment, "read back")

    # Notices authenticated by a header, with the news in the body: {"order": ..., "tracking": ...},
    # or a batch of labels naming several orders: {"labels": [[order, tracking], ...]}.
    def authenticate_notice(self, settings: FakeAccount, request: PushRequest) -> bool:
        token = request.headers.get("X-Notice-Token", "")
        return bool(settings.notice_token) and hmac.compare_digest(token.encode(), settings.notice_token.encode())

    def parse_notice(self, body: bytes) -> NoticeHead:
        try:
            news = json.loads(body)
            if "labels" in news:
                # A printed batch, as ShipStation's: the same news at every re-read.
                return NoticeHead("", "SHIP_NOTIFY", reference=json.dumps(news["labels"]), same_news_on_reread=True)
            number = news["order"]
        except (ValueError, KeyError, TypeError):
            raise InvalidWebhook("not a notice") from None
        if "tracking" not in news:
            return NoticeHead(number, "PING", ignored_reason="no news", keep=False)
        return NoticeHead(number, "SHIPPED", reference=str(news["tracking"]))

    async def resolve_notice(self, client: FakeClient, settings: FakeAccount, head: NoticeHead) -> list[Notice]:
        vendor = client.vendor
        vendor.rereads += 1
        if vendor.hold is not None:
            hold, vendor.hold = vendor.hold, None
            vendor.entered.set()
            await hold.wait()
        labels = json.loads(head.reference) if head.event == "SHIP_NOTIFY" else [[head.order_number, head.reference]]
        return [Notice(number, shipped(tracking), head.event) for number, tracking in labels]

    async def cancel(self, client: FakeClient, settings: FakeAccount, order_number: str, reason: str) -> None:
        client.vendor.cancelled.append(order_number)
        client.vendor.orders[order_number] = shipment_pb2.Shipment(
            status=shipment_pb2.SHIPMENT_STATUS_CANCELLED, cancel_reason=reason
        )


def shipped(tracking: str) -> shipment_pb2.Shipment:
    return shipment_pb2.Shipment(status=shipment_pb2.SHIPMENT_STATUS_SHIPPED, tracking_numbers=[tracking])


@dataclass
class World:
    """The test tenant's registry, accounts and vendor."""

    vendor: FakeVendor
    registry: Registry
    accounts: AccountClients
    tenant_accounts: dict[str, Account]

    def add_account(self, name: str, connector: str, prefix: str) -> None:
        """The tenant's file gains an account (as a reload would make it)."""
        self.tenant_accounts[name] = Account(name, connector, FakeAccount(prefix))


def world() -> World:
    """Tenant acme: account 'batch' (batchship, 3 a call), 'codes' (codeship, needs service codes),
    'nocancel' (stuckship, cannot cancel), 'notices' (noticeship, pushes notices authenticated
    by a header), and a route to 'batch' with options."""
    vendor = FakeVendor()
    registry = Registry(
        [
            FakeProvider("batchship", vendor),
            FakeProvider("codeship", vendor, needs_service_code=True),
            FakeProvider("stuckship", vendor, batch_size=1, can_cancel=False),
            FakeProvider("noticeship", vendor, push_notices=True),
        ]
    )
    accounts = {
        "batch": Account("batch", "batchship", FakeAccount("B")),
        "codes": Account("codes", "codeship", FakeAccount("C")),
        "nocancel": Account("nocancel", "stuckship", FakeAccount("S")),
        "notices": Account("notices", "noticeship", FakeAccount("N", notice_token=NOTICE_TOKEN)),
    }
    routes = (Route("west", channel="store", provider="batch", options={"warehouse": "W1"}),)
    directory = TenantDirectory({TENANT: Tenant(TENANT, accounts, routes)})
    return World(vendor, registry, AccountClients(directory, registry, ClientResources(max_concurrency=4)), accounts)


def order(number: str, *, code: str = "03", skus: tuple[str, ...] = ()) -> order_pb2.Order:
    result = order_pb2.Order(
        order_id=f"ord-{number}",
        tenant_id=TENANT,
        channel="commerce7",
        channel_account="store",
        external_id=f"c7-{number}",
        external_number=number,
    )
    result.shipping_method.code = code
    for sku in skus:
        result.lines.add(sku=sku, quantity=1)
    return result


async def queue(
    pool,
    *numbers: str,
    account: str = "batch",
    provider: str = "batchship",
    route: str = "",
    skus: tuple[str, ...] = (),
) -> None:
    """Queue orders as the decisions consumer does, numbered by the account's prefix."""
    prefix = {"batch": "B", "codes": "C", "nocancel": "S", "notices": "N"}.get(account, "X")
    rows = [
        NewDispatch(
            order_id=f"ord-{n}",
            tenant_id=TENANT,
            provider=provider,
            provider_order_number=f"{prefix}-{n}",
            order_proto=order(n, skus=skus).SerializeToString(),
            channel="commerce7",
            external_id=f"c7-{n}",
            external_number=n,
            traceparent="",
            provider_account=account,
            route=route,
            channel_account="store",
        )
        for n in numbers
    ]
    async with pool.acquire() as conn:
        await enqueue(conn, rows)


def recorder(pool, registry: Registry) -> ShipmentRecorder:
    return ShipmentRecorder(
        pool, registry, topic="dispatch.shipments.v1", producer="test", check_after=timedelta(hours=1)
    )
