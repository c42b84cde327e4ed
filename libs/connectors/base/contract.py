"""The connector contract: what a channel or provider connector offers the services.

A connector is one vendor's adapter, declared in one place (its `connector.py`) and listed in
`libs.connectors.registry`. The services never import a vendor package: they look the connector
up by the `channel` or `provider` named on the order and call the methods below. Everything a
service must know of a vendor is declared here as data (`ConnectorInfo`: capabilities, limits,
the status words an operator sees) or behind a method.

Shapes the contract serves:
- channels that push orders (webhooks) or are polled page by page from a cursor, that want to
  hear which orders were committed (acknowledge), and that take shipments and statuses back;
- providers that take orders in batches (a one-at-a-time provider declares a batch size of 1)
  with per-item results, are read back, cancel, and send notices (webhooks) that may only point
  at the order to re-read; a provider that pulls from us renders what it pulls and takes what it
  posts;
- optional capabilities (rate quotes, a customer directory, a product catalog) a connector
  declares and implements as the matching Protocol.

Methods are pure where they can be (build, parse, authenticate) and take the account's settings
(the connector's own frozen dataclass, parsed from the tenant's account section) explicitly.
Methods doing I/O take the client `open_client` returned. Errors are `ConnectorError`s, each
with `retryable` and `reason_code`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from ordersync.common.v1 import order_pb2, postal_address_pb2, shipment_pb2

from .errors import ConnectorError
from .http import ConnectorClient
from .issues import Issue
from .ratelimit import RateLimiter


class Role(Enum):
    """Which side of the hub a connector serves; a vendor may serve both."""

    CHANNEL = "channel"
    PROVIDER = "provider"


class Capability(Enum):
    """What a connector can do. The services check these; the contract tests hold them true."""

    # channel side
    PUSH_ORDERS = "push_orders"  # posts orders to /webhooks/{channel}/{tenant}
    PULL_ORDERS = "pull_orders"  # polled page by page from a cursor
    ACKNOWLEDGE = "acknowledge"  # wants to be told which pulled orders were committed
    LIST_ORDERS = "list_orders"  # lists the orders changed in a window (reconciliation finds lost webhooks)
    SYNC_RESULTS = "sync_results"  # wants each order's handover result: accepted (with the
    # provider's reference) or refused (with the reason); see `report_sync_results`
    WRITE_BACK = "write_back"  # takes shipments and statuses back
    # provider side
    SUBMIT = "submit"  # takes orders, in batches of Limits.batch_size
    READ_BACK = "read_back"  # returns an order's shipment state on request
    POLL_SHIPMENTS = "poll_shipments"  # lists shipments since a cursor (lost notices recovered)
    CANCEL = "cancel"  # cancels a sent order (Void Sync)
    PUSH_NOTICES = "push_notices"  # posts notices to /webhooks/{provider}/{tenant}/...
    PULLED_BY_PROVIDER = "pulled_by_provider"  # fetches an export from us and posts shipments back
    COMPLIANCE_CHECK = "compliance_check"  # can check an order before it is created
    # optional services
    RATE_QUOTES = "rate_quotes"
    FREIGHT_WRITE = "freight_write"  # channel side: takes the freight chosen from a rate quote
    CUSTOMER_DIRECTORY = "customer_directory"  # provider side: member look-ups and upsert
    PRODUCT_CATALOG = "product_catalog"
    INVITE_LISTS = "invite_lists"  # channel side: lists mirrored from a directory's member types
    CONNECTION_CHECK = "connection_check"  # can say whether the account's credentials work


@dataclass(frozen=True)
class Limits:
    """What the vendor allows: items per submit call, requests a minute, calls in flight.

    `requests_per_minute` is None when the vendor publishes no limit (we still cap concurrency).
    """

    batch_size: int = 1
    requests_per_minute: int | None = None
    concurrency: int = 8


@dataclass(frozen=True)
class ConnectorInfo:
    """A connector's metadata, declared once in its `connector.py`.

    Attributes:
        id: the registry key, also the `channel`/`provider` value on orders and the name
            carrier mapping knows the vendor's codes by, e.g. "commerce7".
        label: the vendor's name as operators read it, e.g. "Commerce7".
        roles: the sides of the hub it serves.
        capabilities: what it can do (see Capability).
        limits: the vendor's limits.
        status_titles: sync status -> the words an operator sees; providers only. Filled from
            the label by `provider_titles` unless the vendor's own words differ.
        needs_service_code: a provider that needs the order's shipping code translated to its
            own (carrier mapping); an order whose code maps to nothing fails as UNMAPPED_CARRIER.
        needs_carrier_code: a channel that takes shipments only with a carrier code of its own
            list (Groupon's approved couriers): a shipment whose carrier maps to none of them is
            *blocked* in writeback, with the fix, and written once the mapping exists.
        maps_products: a provider with SKUs of its own (a warehouse): each order line goes
            through the tenant's product map (an alternative code, or a bundle of components)
            before it is submitted; `Submission.items` holds the result.
        locked_after_handover: a channel whose orders cannot be edited once a provider took
            them (a CellarPass reservation synced to VinSuite): a later change or refund is
            recorded and shown to operators with what changed, never sent on.
    """

    id: str
    label: str
    roles: frozenset[Role]
    capabilities: frozenset[Capability]
    limits: Limits = Limits()
    status_titles: Mapping[str, str] = field(default_factory=dict)
    needs_service_code: bool = False
    needs_carrier_code: bool = False
    maps_products: bool = False
    locked_after_handover: bool = False

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities


def provider_titles(label: str) -> dict[str, str]:
    """The default words for an order's sync status with a provider called `label`."""
    return {
        "sending": f"Sending to {label}",
        "retry_wait": f"Sending to {label} (retrying)",
        "sent": f"Sent to {label}",
        "failed": "Failed to Send",
        "not_required": "Not Required to Send",
        "voided": f"Voided in {label}",
    }


# ---- what connectors receive and return -------------------------------------------------------

SecretResolver = Callable[[str, str], str]
"""resolve(reference, where) -> the secret's value; `reference` is `env:NAME` or `file:PATH`.
Raises ConfigError naming `where`; literal secrets are refused."""


@dataclass(frozen=True)
class ClientResources:
    """What a service lends the clients it opens.

    Attributes:
        max_concurrency: requests in flight per client, at most.
        rate_limiter: makes the limiter pacing one account's requests, given (scope,
            requests per minute, burst); a service shares the budget across its replicas with
            libs.platform.rate_budgets. None: the client paces itself alone.
    """

    max_concurrency: int = 8
    rate_limiter: Callable[[str, int, int], RateLimiter] | None = None

    def limiter_for(self, scope: str, requests_per_minute: int, burst: int) -> RateLimiter | None:
        """The service's limiter for one account's budget, or None (the client paces itself)."""
        return self.rate_limiter(scope, requests_per_minute, burst) if self.rate_limiter is not None else None


@dataclass(frozen=True)
class PushRequest:
    """An incoming webhook as a connector needs it to authenticate: headers and path parts."""

    headers: Mapping[str, str]
    # What follows /webhooks/{connector}/{tenant}/ (and the account, where the URL names one),
    # e.g. a secret token.
    path_tail: str = ""


@dataclass
class ParsedOrder:
    """A channel order normalised to the canonical Order, with what is wrong with it.

    `issues` make the order invalid (bad data: kept, visible, never routed). `rule_failures`
    are the channel's import rules the order does not meet yet (good data, not to be sent now,
    e.g. not yet picked): the order is kept as *not imported* with each rule's code and
    sentence, and its next revision is evaluated again. `ack_token` is what the channel needs
    back to acknowledge it (pull channels), empty otherwise.
    """

    order: order_pb2.Order
    issues: list[Issue] = field(default_factory=list)
    ack_token: str = ""
    rule_failures: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class Ignored:
    """A push or record that is not an order ordersync acts on, and why (it is kept, unused)."""

    reason: str


@dataclass(frozen=True)
class OrderPage:
    """One page pulled from a channel: its orders and the cursor to resume from after commit.

    `more` is True when the channel has further pages now (poll again at once).
    """

    orders: Sequence[ParsedOrder | Ignored]
    next_cursor: str
    more: bool = False


class WritebackStep(Enum):
    """One update to a channel's record of an order."""

    SHIP = "ship"  # shipment with tracking; the channel tells the customer
    DELIVER = "deliver"  # the order was delivered
    VOID = "void"  # the provider voided the order
    RETRACT = "retract"  # tracking written earlier whose label the provider voided: take it back


@dataclass(frozen=True)
class ChannelUpdate:
    """What a channel must learn of one order: the steps from what was written to what is wanted.

    `carrier` is the channel's spelling of the shipment's carrier from carrier mapping, or None
    (the connector spells the canonical carrier itself). For a channel with `needs_carrier_code`
    it is the channel's carrier code (e.g. Groupon's "DPDUK"), never None: without one the write
    is blocked and the connector is not called. `order_lines` are the order's lines as the
    channel gave them (empty when not known), for a channel writing tracking per line: the
    shipment's items must name lines of the order, and an item shipping less than its line's
    quantity is a partial shipment.
    """

    external_id: str
    external_number: str
    steps: Sequence[WritebackStep]
    shipment: shipment_pb2.Shipment
    carrier: str | None = None
    order_lines: Sequence[order_pb2.OrderLine] = ()


@dataclass(frozen=True)
class SubmissionItem:
    """One line as a product-mapping provider must receive it: its SKU there, the quantity, and
    the channel line it comes from (a bundle gives several items of one channel line)."""

    channel_line_id: str
    sku: str
    quantity: int
    title: str = ""


@dataclass(frozen=True)
class Submission:
    """One order to hand a provider.

    Attributes:
        order: the canonical order.
        order_number: the order's number at the provider (from `order_number`), stable.
        idempotency_key: stable across attempts; sent where the vendor takes one.
        service_code: the provider's shipping code from carrier mapping ("" when not needed).
        may_exist: an earlier attempt may have reached the provider (a crash, a timeout):
            read back before creating, so nothing is created twice.
        options: the route's per-route options for this provider (e.g. a warehouse id).
        items: for a provider with `maps_products`, the order's lines through the tenant's
            product map (empty for other providers: they take the order's own lines).
    """

    order: order_pb2.Order
    order_number: str
    idempotency_key: str
    service_code: str = ""
    may_exist: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    items: Sequence[SubmissionItem] = ()


@dataclass(frozen=True)
class Submitted:
    """A provider took the order; `activity` says how, for the order's log. `provider_reference`
    is the id the provider gave the order it created, where that differs from our order number
    (VinSuite's OrderID): dispatch keeps it and tells the channel ("" when there is none)."""

    activity: str
    provider_reference: str = ""


SubmitResult = Submitted | ConnectorError
"""Per item: Submitted, or the ConnectorError that refused it (retryable or not)."""


async def submit_one_by_one(
    batch: Sequence[Submission], submit_one: Callable[[Submission], Awaitable[Submitted]]
) -> list[SubmitResult]:
    """`submit` for a provider taking one order a call (batch size 1): each item in turn, an
    item's ConnectorError its result (the loop keeps the contract for any batch it is given)."""
    results: list[SubmitResult] = []
    for item in batch:
        try:
            results.append(await submit_one(item))
        except ConnectorError as exc:
            results.append(exc)
    return results


@dataclass(frozen=True)
class Notice:
    """A provider's news about one order: its number there and its shipment state (None: no
    shipment yet). `event` is the vendor's word for what happened, for the receipt."""

    order_number: str
    shipment: shipment_pb2.Shipment | None
    event: str = ""
    provider_reference: str = ""  # the provider's own id of the order, where it has one


@dataclass(frozen=True)
class NoticePage:
    """Shipments a provider lists after a cursor (POLL_SHIPMENTS): the notices, one per order,
    and the cursor to resume from once they are applied; `more` is True when a next page is
    ready now."""

    notices: Sequence[Notice]
    next_cursor: str
    more: bool = False


@dataclass(frozen=True)
class NoticeHead:
    """A parsed notice before any read-back: `keep` False for notices not worth a receipt.

    `order_number` is empty for thin notices naming something else to re-read (a batch of
    labels spanning several orders): `reference` says what.
    """

    order_number: str
    event: str
    reference: str = ""  # what to re-read, for thin notices
    ignored_reason: str = ""  # non-empty: not an order event ordersync uses
    keep: bool = True
    # True when re-reading `reference` says the same however often it is read (a printed batch
    # of labels): a redelivery of the same body may share the first delivery's re-read.
    # False (the default) where the same body can announce new news (an order's status).
    same_news_on_reread: bool = False


class AckMoment(Enum):
    """When a channel with Capability.ACKNOWLEDGE is told of an order (per account)."""

    ON_COMMIT = "on_commit"  # once intake committed it
    # once the provider accepted it (dispatch reported it sent): for a channel that stops
    # listing an acknowledged order (CommerceInterface's mark_exported), so an order never
    # vanishes from the channel before it reached the warehouse
    ON_HANDOVER = "on_handover"
    NEVER = "never"  # the account is set not to be told (its orders keep coming back)


@dataclass(frozen=True)
class SyncResult:
    """What became of one handed-over order, for a channel with Capability.SYNC_RESULTS.

    `ack_token` is the order's, from its ParsedOrder. Accepted: `provider_reference` is the
    provider's id of the order it created. Refused: `failure` says why, in a sentence an
    operator acts on (the channel shows it; a later success is reported again).
    """

    ack_token: str
    provider_reference: str = ""
    failure: str = ""

    @property
    def accepted(self) -> bool:
        return not self.failure


# ---- the connector kinds -------------------------------------------------------------------


class Connector(ABC):
    """What every connector has: metadata, its account settings type, and its client."""

    info: ConnectorInfo

    @abstractmethod
    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> Hashable:
        """Parse and validate one account section of the tenants file into the connector's
        settings (a frozen, hashable value); raise ConfigError naming `where` and the field."""

    @abstractmethod
    def open_client(self, settings: Any, resources: ClientResources) -> ConnectorClient:
        """A client for one account (an async context manager keeping its connection pool)."""

    def unique_keys(self, settings: Any) -> Sequence[str]:
        """Values that must differ between every tenant's accounts of this connector (e.g. a
        prefix making order numbers unique at the vendor). None by default."""
        return ()


class ChannelConnector(Connector):
    """A sales channel: orders in (pushed or pulled), shipments and statuses back."""

    # -- push
    def authenticate_push(self, settings: Any, request: PushRequest) -> bool:
        """True when the webhook carries this account's credentials (compare in constant time)."""
        raise NotImplementedError(f"{self.info.id} does not push orders")

    def parse_push(self, settings: Any, body: bytes, tenant_id: str) -> ParsedOrder | Ignored:
        """Normalise one pushed body; raise InvalidWebhook for a malformed one. Pure."""
        raise NotImplementedError(f"{self.info.id} does not push orders")

    # -- pull
    async def fetch_page(self, client: Any, settings: Any, cursor: str, tenant_id: str) -> OrderPage:
        """Fetch the next page of orders after `cursor` ("" = from the account's start)."""
        raise NotImplementedError(f"{self.info.id} is not polled")

    # -- reconciliation
    async def list_orders(
        self, client: Any, settings: Any, since: datetime, until: datetime, cursor: str, tenant_id: str
    ) -> OrderPage:
        """One page of the orders created or changed in [since, until] (Capability.LIST_ORDERS),
        each parsed as its webhook or poll would be, so it dedupes against it by revision;
        `cursor` "" for the first page, then the page's `next_cursor` while `more`.

        A pushed channel lists what its webhooks should have brought; a pulled channel needs it
        less (its cursor moves only after a commit) and may leave it out."""
        raise NotImplementedError(f"{self.info.id} cannot list orders in a window")

    async def acknowledge(self, client: Any, settings: Any, orders: Sequence[ParsedOrder]) -> None:
        """Tell the channel these orders are committed here (only after the commit), or handed
        over (see `acknowledge_when`). Must be safe to repeat."""
        raise NotImplementedError(f"{self.info.id} takes no acknowledgements")

    def acknowledge_when(self, settings: Any) -> AckMoment:
        """When this account's orders are acknowledged (Capability.ACKNOWLEDGE only)."""
        return AckMoment.ON_COMMIT

    async def report_sync_results(self, client: Any, settings: Any, results: Sequence[SyncResult]) -> None:
        """Tell the channel what became of these orders at the provider (Capability.SYNC_RESULTS):
        sent after the provider's answer, never before. Must be safe to repeat."""
        raise NotImplementedError(f"{self.info.id} takes no sync results")

    # -- write back
    async def write_back(self, client: Any, settings: Any, update: ChannelUpdate) -> bool:
        """Apply the update; return True when the channel told the customer (an e-mail).

        Must be safe to repeat: a retry after a lost answer must not write twice.
        """
        raise NotImplementedError(f"{self.info.id} takes no writebacks")


class ProviderConnector(Connector):
    """A fulfilment provider: orders out in batches, shipments back."""

    @abstractmethod
    def order_number(self, settings: Any, order: order_pb2.Order) -> str:
        """The order's number at the provider: stable, unique per tenant. Pure."""

    @abstractmethod
    async def submit(self, client: Any, settings: Any, batch: Sequence[Submission]) -> list[SubmitResult]:
        """Hand over up to `info.limits.batch_size` orders; one result per item, in order.

        An error affecting the whole call may be raised instead; it then applies to every item.
        """

    async def read_back(self, client: Any, settings: Any, order_number: str) -> Notice | None:
        """The order's state at the provider now, or None when the provider has no such order."""
        raise NotImplementedError(f"{self.info.id} cannot be read back")

    async def cancel(self, client: Any, settings: Any, order_number: str, reason: str) -> None:
        """Cancel a sent order at the provider."""
        raise NotImplementedError(f"{self.info.id} cannot cancel")

    async def read_back_since(self, client: Any, settings: Any, cursor: str) -> NoticePage:
        """Shipments created or changed after `cursor` ("" = the account's start), many orders
        a request: how lost notices are recovered without one read-back per order."""
        raise NotImplementedError(f"{self.info.id} cannot list shipments")

    # -- notices (provider webhooks)
    def authenticate_notice(self, settings: Any, request: PushRequest) -> bool:
        """True when the notice reached this account's endpoint (compare in constant time)."""
        raise NotImplementedError(f"{self.info.id} sends no notices")

    def parse_notice(self, body: bytes) -> NoticeHead:
        """Parse a notice body; raise InvalidWebhook for a malformed one. Pure."""
        raise NotImplementedError(f"{self.info.id} sends no notices")

    async def resolve_notice(self, client: Any, settings: Any, head: NoticeHead) -> Sequence[Notice]:
        """The notice's full news, one Notice per order it covers: re-read what thin notices
        name (an order, or a batch of labels spanning several), else parse what came."""
        raise NotImplementedError(f"{self.info.id} sends no notices")


# ---- optional capabilities -----------------------------------------------------------------


@dataclass(frozen=True)
class RateQuote:
    """One price a provider quotes for shipping an order, before any markup.

    Attributes:
        carrier: the canonical carrier, e.g. "USPS".
        carrier_code: the provider's code of the carrier, as `quote_rates` takes it, e.g.
            "stamps_com".
        service: the provider's service code, e.g. "usps_priority_mail" (what carrier mapping
            knows it by).
        service_name: the provider's words for the service, e.g. "USPS Priority Mail - Package".
        amount: the exact price in the currency's major unit, as the provider wrote it; it may
            hold sub-cent parts (ShipStation's `otherCost`), so it is a Decimal, never a float,
            and is not rounded here: any markup applies to it before rounding.
        currency_code: ISO 4217, e.g. "USD".
    """

    carrier: str
    carrier_code: str
    service: str
    service_name: str
    amount: Decimal
    currency_code: str


@runtime_checkable
class RateQuotes(Protocol):
    """Capability.RATE_QUOTES: shipping rates for an order (before any markup), and the markup
    the account's tenant adds to them."""

    async def quote_rates(
        self, client: Any, settings: Any, order: order_pb2.Order, carriers: Sequence[str] = ()
    ) -> list[RateQuote]:
        """Quotes of the given carriers (the provider's carrier codes; empty: the account's own
        carriers); raise InvalidRequest for a carrier the account does not quote with."""
        ...

    def rate_markup_percent(self, settings: Any) -> Decimal:
        """The account's markup on its quotes, in percent (0 when none is configured)."""
        ...


@dataclass(frozen=True)
class Freight:
    """The shipping charge to put on a channel's order: what the customer pays, and its words.

    `amount` is in the currency's major unit, already rounded to its minor unit.
    """

    amount: Decimal
    currency_code: str
    description: str


@runtime_checkable
class FreightWrite(Protocol):
    """Capability.FREIGHT_WRITE: a channel taking the freight chosen from a rate quote onto its
    order (`external_id`, the channel's id). Safe to repeat; raise NotFound for no such order."""

    async def write_freight(self, client: Any, settings: Any, external_id: str, freight: Freight) -> bool:
        """Write `freight`; return False when the order already carried it (nothing written)."""
        ...


@dataclass(frozen=True)
class ClubMembership:
    """One club a member belongs or belonged to; `status` as the directory spells it."""

    club_id: str
    club_name: str
    status: str

    @property
    def active(self) -> bool:
        return self.status.strip().lower() == "active"


@dataclass(frozen=True)
class DirectoryMember:
    """A customer as a directory (VinSuite) knows them: id, names, contact, types and clubs."""

    member_id: str
    first_name: str
    last_name: str
    email: str
    phone: str = ""
    member_types: tuple[str, ...] = ()
    clubs: tuple[ClubMembership, ...] = ()

    @property
    def active_clubs(self) -> tuple[ClubMembership, ...]:
        return tuple(club for club in self.clubs if club.active)

    @property
    def is_club_member(self) -> bool:
        return bool(self.active_clubs)


@dataclass(frozen=True)
class MemberType:
    """A customer type in a directory, as mirrored to a channel's invite lists."""

    type_id: str
    name: str


@dataclass(frozen=True)
class UpsertedMember:
    """The member an upsert matched (`created` False) or created."""

    member_id: str
    created: bool


@runtime_checkable
class CustomerDirectory(Protocol):
    """Capability.CUSTOMER_DIRECTORY: a provider's customers (members), their types and clubs.

    `find_members` matches on e-mail (exact, case-insensitive) or last name; an empty list means
    the directory answered and knows nobody. `upsert_member` matches on e-mail, so a retried
    upsert never creates a second member. Errors raise ConnectorError (Unavailable, Timeout,
    RateLimited: the directory could not answer; never an empty answer).
    """

    async def find_members(
        self, client: Any, settings: Any, *, email: str = "", last_name: str = ""
    ) -> list[DirectoryMember]: ...

    async def upsert_member(
        self,
        client: Any,
        settings: Any,
        customer: order_pb2.Customer,
        address: postal_address_pb2.PostalAddress | None = None,
    ) -> UpsertedMember: ...

    async def member_types(self, client: Any, settings: Any) -> list[MemberType]: ...


@dataclass(frozen=True)
class CatalogProduct:
    """A product in a provider's catalog: its SKU there and its name."""

    sku: str
    name: str


@runtime_checkable
class ProductCatalog(Protocol):
    """Capability.PRODUCT_CATALOG: the provider's products, for SKU checks and product sync.

    `list_products` reads every product (all pages); `create_product` creates one and returns
    False when a product with that SKU already exists (safe to repeat).
    """

    async def list_products(self, client: Any, settings: Any) -> list[CatalogProduct]: ...

    async def create_product(self, client: Any, settings: Any, product: CatalogProduct) -> bool: ...


class ExportStatus(Enum):
    """An exported order's state as the pulling provider must see it (it re-pulls windows)."""

    AWAITING_SHIPMENT = "awaiting_shipment"  # held for the provider, or fetched and not shipped
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ExportedOrder:
    """One order on an export page: its number at the provider (what it posts back), its state,
    and when it last changed here (the provider's LastModified; UTC)."""

    order: order_pb2.Order
    order_number: str
    status: ExportStatus
    modified: datetime


@dataclass(frozen=True)
class ExportPage:
    """One page of the orders a provider pulls for its date window: `page` of `pages` (1-based;
    the provider asks for each page up to `pages`)."""

    orders: Sequence[ExportedOrder]
    page: int = 1
    pages: int = 1


class PullAction(Enum):
    """What a pulling provider's call to our store endpoint asks for."""

    EXPORT = "export"  # a page of the orders changed in a window
    POST_SHIPMENT = "post_shipment"  # take the shipment it posts


@dataclass(frozen=True)
class PullRequest:
    """A pulling provider's call, as its connector reads it: an EXPORT of the orders changed in
    [start, end) (UTC), page `page` (1-based); or a POST_SHIPMENT, `order_number` being the
    order the call names outside the body ("" when it names none)."""

    action: PullAction
    start: datetime | None = None
    end: datetime | None = None
    page: int = 1
    order_number: str = ""


@runtime_checkable
class PulledByProvider(Protocol):
    """Capability.PULLED_BY_PROVIDER: the provider fetches orders from us and posts shipments.

    `authenticate_pull` is True when the provider's request carries this account's credentials
    (compared in constant time; an account without them accepts nothing). `parse_pull` reads
    the call's method and query (pure; raises InvalidRequest for a malformed one).
    `render_export` renders one page (pure; raises ValueError for a page outside 1..pages).
    `parse_posted_shipment` reads what the provider posts back into the order's Notice (raises
    InvalidWebhook for a malformed or unsafe body).
    """

    def authenticate_pull(self, settings: Any, request: PushRequest) -> bool: ...

    def parse_pull(self, settings: Any, method: str, query: Mapping[str, str]) -> PullRequest: ...

    def render_export(self, settings: Any, page: ExportPage) -> bytes: ...

    def parse_posted_shipment(self, settings: Any, body: bytes) -> Notice: ...


@dataclass(frozen=True)
class InviteList:
    """A channel's invite list; `source_id` names the member type it mirrors ("" for lists the
    channel's staff made, which a mirror never touches)."""

    list_id: str
    name: str
    source_id: str = ""


@runtime_checkable
class InviteLists(Protocol):
    """Capability.INVITE_LISTS: a channel's invite lists, mirrored from a directory's types.

    `put_invite_list` creates or renames the list mirroring `source_id` (safe to repeat);
    `remove_invite_list` returns False when the list was already gone.
    """

    async def list_invite_lists(self, client: Any, settings: Any) -> list[InviteList]: ...

    async def put_invite_list(self, client: Any, settings: Any, name: str, source_id: str) -> InviteList: ...

    async def remove_invite_list(self, client: Any, settings: Any, list_id: str) -> bool: ...


class ConnectionProblem(Enum):
    """Why an account's credentials do not work, as an operator fixes it."""

    BAD_CREDENTIALS = "bad_credentials"  # the username/password or key is wrong
    ACCOUNT_INACTIVE = "account_inactive"  # right credentials, the web-service account is off
    UNREACHABLE = "unreachable"  # the vendor did not answer (network, outage, timeout)


@dataclass(frozen=True)
class ConnectionCheck:
    """The outcome of one credentials check: ok, or the problem and the vendor's words."""

    ok: bool
    problem: ConnectionProblem | None = None
    detail: str = ""


@runtime_checkable
class ConnectionChecks(Protocol):
    """Capability.CONNECTION_CHECK: one cheap authenticated call that says if the account works.

    Never raises for a refused or unreachable vendor: the answer says which and why."""

    async def check_connection(self, client: Any, settings: Any) -> ConnectionCheck: ...


OPTIONAL_PROTOCOLS: Mapping[Capability, type] = {
    Capability.RATE_QUOTES: RateQuotes,
    Capability.FREIGHT_WRITE: FreightWrite,
    Capability.CUSTOMER_DIRECTORY: CustomerDirectory,
    Capability.PRODUCT_CATALOG: ProductCatalog,
    Capability.PULLED_BY_PROVIDER: PulledByProvider,
    Capability.INVITE_LISTS: InviteLists,
    Capability.CONNECTION_CHECK: ConnectionChecks,
}
"""A connector declaring one of these capabilities must implement its Protocol."""
