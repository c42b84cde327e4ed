"""The ShipStation connector: a label-printing provider taking up to 100 orders a call.

Push mode: orders go to `POST /orders/createorders` keyed by `orderKey` (our idempotency key),
so a repeated call updates instead of duplicating; the 200 answer says per order whether it was
taken. Shipments come back as thin SHIP_NOTIFY webhooks (a `resource_url` re-read with the
account's credentials) on a per-account URL ending in a secret token, by read-back, and by
listing `/shipments` after a watermark (POLL_SHIPMENTS: how a lost SHIP_NOTIFY is recovered,
500 labels a request). A voided label is no shipment: its tracking number is carried as voided,
never as tracking. Each order goes in the ShipStation status its channel status maps to by the
account's status mapping; an unmapped status fails that order alone (UNMAPPED_STATUS). Pull mode (Custom Store): ShipStation fetches our export XML and
posts ShipNotice XML; `render_export` and `parse_posted_shipment` are the pure halves of that.
Rate quotes come from `POST /shipments/getrates`, one call per carrier of the account.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ordersync.common.v1 import order_pb2, shipment_pb2

from ..base.contract import (
    Capability,
    ClientResources,
    ConnectorInfo,
    ExportPage,
    ExportStatus,
    Limits,
    Notice,
    NoticeHead,
    NoticePage,
    ProviderConnector,
    PullRequest,
    PushRequest,
    RateQuote,
    Role,
    SecretResolver,
    Submission,
    SubmitResult,
    Submitted,
    provider_titles,
)
from ..base.errors import ConnectorError, InvalidRequest, NotFound
from ..base.settings import SectionReader, SettingsError
from . import codes, customstore
from .client import BURST, ShipStationClient
from .errors import OrderRejected
from .orders import build_order, parse_create_orders_response, provider_order_number
from .rates import build_rates_request, parse_markup_percent, parse_rates
from .settings import ShipStationSettings
from .shipments import parse_shipments, shipments_page
from .webhooks import SHIPMENT_EVENTS, parse_webhook

DEFAULT_RATE_CARRIERS = ("stamps_com", "ups", "fedex")


@dataclass(frozen=True)
class ShipStationAccount:
    """One ShipStation account as a tenant configures it.

    Attributes:
        api: the API key pair and limits.
        webhook_token: the secret ending our SHIP_NOTIFY target URL.
        order_number_prefix: put before the channel's order number ("" by default).
        store_user / store_password: the HTTP Basic credentials ShipStation uses on our Custom
            Store endpoint (pull mode); empty when the account is not connected as a store.
        status_mapping: ShipStation status -> channel status, validated (codes).
        rate_carriers: ShipStation carrier codes to quote with.
        from_postal_code: the postal code rates are quoted from.
        rate_markup_percent: the tenant's markup on quotes, in percent (exact; 0: none).
    """

    api: ShipStationSettings
    webhook_token: str = field(repr=False)
    order_number_prefix: str = ""
    store_user: str = ""
    store_password: str = field(default="", repr=False)
    status_mapping: tuple[tuple[str, str], ...] = tuple(codes.DEFAULT_STATUS_MAPPING.items())
    rate_carriers: tuple[str, ...] = DEFAULT_RATE_CARRIERS
    from_postal_code: str = ""
    rate_markup_percent: Decimal = Decimal(0)

    @property
    def statuses(self) -> Mapping[str, str]:
        return dict(self.status_mapping)


class ShipStationConnector(ProviderConnector):
    info = ConnectorInfo(
        id="shipstation",
        label="ShipStation",
        roles=frozenset({Role.PROVIDER}),
        capabilities=frozenset(
            {
                Capability.SUBMIT,
                Capability.READ_BACK,
                Capability.POLL_SHIPMENTS,
                Capability.CANCEL,
                Capability.PUSH_NOTICES,
                Capability.PULLED_BY_PROVIDER,
                Capability.RATE_QUOTES,
            }
        ),
        # createorders takes 100 orders; the key pair has 40 requests a minute.
        limits=Limits(batch_size=100, requests_per_minute=40, concurrency=2),
        status_titles={**provider_titles("ShipStation"), "awaiting_pull": "Waiting for ShipStation to fetch"},
        needs_service_code=False,  # the shipper picks the service in ShipStation; a code is only a hint
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> ShipStationAccount:
        read = SectionReader(section, resolve, where)
        try:
            api = ShipStationSettings(
                api_key=read.text("api_key"),
                api_secret=read.secret("api_secret"),
                base_url=read.text("base_url", "https://ssapi.shipstation.com"),
                requests_per_minute=read.positive_int("requests_per_minute", 40),
                timeout_s=read.positive_number("timeout_s", 30.0),
            )
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        token = read.secret("webhook_token")
        prefix = section.get("order_number_prefix", "")
        if prefix:
            prefix = read.text("order_number_prefix")
        store_user = store_password = ""
        if "store_user" in section or "store_password" in section:
            store_user, store_password = read.text("store_user"), read.secret("store_password")
        # One key per status (`status_awaiting_shipment = "Fully Picked"`), so each is checked
        # by name; `status_on_hold` is refused as unsupported.
        mapping = {
            key.removeprefix("status_"): read.text(key)
            for key in section
            if isinstance(key, str) and key.startswith("status_")
        }
        try:
            statuses = codes.validate_status_mapping(mapping)
        except ValueError as exc:
            raise SettingsError(f"{where} {exc}") from None
        carriers = read.text("rate_carriers", ",".join(DEFAULT_RATE_CARRIERS))
        from_postal = read.text("from_postal_code") if "from_postal_code" in section else ""
        try:
            markup = parse_markup_percent(read.text("rate_markup_percent", "0"))
        except ValueError as exc:
            raise read.error("rate_markup_percent", str(exc)) from None
        read.finish()
        return ShipStationAccount(
            api,
            token,
            order_number_prefix=prefix,
            store_user=store_user,
            store_password=store_password,
            status_mapping=tuple(statuses.items()),
            rate_carriers=tuple(c.strip() for c in carriers.split(",") if c.strip()),
            from_postal_code=from_postal,
            rate_markup_percent=markup,
        )

    def open_client(self, settings: ShipStationAccount, resources: ClientResources) -> ShipStationClient:
        api = dataclasses.replace(
            settings.api, max_concurrency=min(resources.max_concurrency, self.info.limits.concurrency)
        )
        limiter = resources.limiter_for(self.info.id, api.requests_per_minute, BURST)
        return ShipStationClient(api, rate_limiter=limiter)

    def order_number(self, settings: ShipStationAccount, order: order_pb2.Order) -> str:
        return provider_order_number(settings.order_number_prefix, order)

    async def submit(
        self, client: ShipStationClient, settings: ShipStationAccount, batch: Sequence[Submission]
    ) -> list[SubmitResult]:
        results: list[SubmitResult | None] = [None] * len(batch)
        bodies: list[dict[str, Any]] = []
        positions: list[int] = []
        for index, item in enumerate(batch):
            try:
                bodies.append(
                    build_order(
                        item.order,
                        order_number=item.order_number,
                        order_key=item.idempotency_key,
                        order_status=order_status(settings, item.order),
                        service_code=item.service_code,
                        options=item.options,
                    )
                )
                positions.append(index)
            except ConnectorError as exc:
                results[index] = exc  # this order alone is wrong; the others still go
        if bodies:
            # One call for the batch; an error of the whole call (5xx, timeout, 401) is raised.
            answer = await client.create_orders(bodies)
            for position, result in zip(positions, parse_create_orders_response(answer, bodies), strict=True):
                item = batch[position]
                if result.success:
                    results[position] = Submitted(
                        f"sent to ShipStation as {result.order_number} (orderId {result.order_id})"
                    )
                elif item.may_exist and await _exists(client, item.order_number):
                    # An earlier attempt created it and it has moved on (e.g. shipped), so the
                    # upsert was refused: it is there, not lost.
                    results[position] = Submitted(f"already at ShipStation as {item.order_number}; not updated")
                else:
                    results[position] = OrderRejected(
                        f"ShipStation refused order {item.order_number}: {result.error_message}"
                    )
        return [r for r in results if r is not None]

    async def read_back(
        self, client: ShipStationClient, settings: ShipStationAccount, order_number: str
    ) -> Notice | None:
        shipment = parse_shipments(await client.list_shipments(order_number))
        if shipment is not None and shipment.tracking_numbers:
            return Notice(order_number, shipment, "read back")
        orders = await client.list_orders(order_number)
        if not orders:
            return None
        status = str(orders[-1].get("orderStatus"))
        voided = list(shipment.voided_tracking_numbers) if shipment is not None else []
        if status == codes.CANCELLED:
            cancelled = shipment_pb2.Shipment(
                status=shipment_pb2.SHIPMENT_STATUS_CANCELLED,
                cancel_reason="cancelled in ShipStation",
                voided_tracking_numbers=voided,
            )
            return Notice(order_number, cancelled, "read back: cancelled")
        # No live label: the order waits (every label voided: with their numbers, to take back).
        return Notice(order_number, shipment, f"read back: {status[:30]}")

    async def read_back_since(self, client: ShipStationClient, settings: ShipStationAccount, cursor: str) -> NoticePage:
        """Labels created at or after the watermark `cursor` (ShipStation's own `createDate`
        text; "" = every label), oldest first, one page of 500: one Notice per order of the
        page, and the page's newest createDate as the next watermark. Labels at the watermark
        itself come again (harmless: applying a notice twice changes nothing), so none created
        in the same instant as the last one seen is skipped."""
        answer = await client.shipments_created_since(cursor)
        page = shipments_page(answer, cursor)
        notices = [Notice(number, parse_shipments(labels), "polled") for number, labels in page.by_order.items()]
        return NoticePage(notices, page.watermark, more=page.more)

    async def cancel(
        self, client: ShipStationClient, settings: ShipStationAccount, order_number: str, reason: str
    ) -> None:
        orders = await client.list_orders(order_number)
        if not orders:
            raise NotFound(f"shipstation cancel: no order {order_number} at ShipStation")
        for order in orders:
            if order.get("orderStatus") == codes.CANCELLED:
                continue  # cancelling converges: done already
            # v1 has no cancel call: an upsert by orderKey setting orderStatus does it.
            await client.create_order({**order, "orderStatus": codes.CANCELLED})

    def authenticate_notice(self, settings: ShipStationAccount, request: PushRequest) -> bool:
        token = request.path_tail.encode(errors="replace")
        return bool(request.path_tail) and hmac.compare_digest(token, settings.webhook_token.encode())

    def parse_notice(self, body: bytes) -> NoticeHead:
        hook = parse_webhook(body)
        # The notice names an order only when its URL selects one by number; a batch of labels
        # (the usual case) may span several orders, known once resolve_notice has read it.
        number = hook.selector.removeprefix("orderNumber=") if hook.selector.startswith("orderNumber=") else ""
        if hook.resource_type not in SHIPMENT_EVENTS:
            return NoticeHead(number, hook.resource_type, ignored_reason=f"{hook.resource_type[:30]} is not used")
        # A batch's labels are fixed once printed (a void sends no notice): a redelivered notice
        # carries no news the first delivery's re-read did not.
        return NoticeHead(number, hook.resource_type, reference=hook.resource_url, same_news_on_reread=True)

    async def resolve_notice(
        self, client: ShipStationClient, settings: ShipStationAccount, head: NoticeHead
    ) -> list[Notice]:
        """Every order a (batch) notice covers, each with its shipment state from the re-read:
        a SHIP_NOTIFY resource_url names a batch of labels, which may span several orders."""
        shipments = await client.fetch_shipments(head.reference)
        by_order: dict[str, list[dict[str, Any]]] = {}
        for shipment in shipments:
            by_order.setdefault(str(shipment.get("orderNumber") or ""), []).append(shipment)
        by_order.pop("", None)
        return [Notice(number, parse_shipments(found), head.event) for number, found in by_order.items()]

    # -- rate quotes (RateQuotes)
    async def quote_rates(
        self,
        client: ShipStationClient,
        settings: ShipStationAccount,
        order: order_pb2.Order,
        carriers: Sequence[str] = (),
    ) -> list[RateQuote]:
        """Exact quotes, one getrates call per carrier (ShipStation quotes one carrier a call)."""
        unknown = sorted(set(carriers) - set(settings.rate_carriers))
        if unknown:
            raise InvalidRequest(
                f"shipstation getrates: carrier(s) {', '.join(c[:30] for c in unknown[:5])} are not among the"
                f" account's rate_carriers ({', '.join(settings.rate_carriers)})"
            )
        quotes: list[RateQuote] = []
        for carrier in dict.fromkeys(carriers) or settings.rate_carriers:
            body = build_rates_request(order, carrier_code=carrier, from_postal_code=settings.from_postal_code)
            quotes.extend(parse_rates(carrier, await client.get_rates(body)))
        return quotes

    def rate_markup_percent(self, settings: ShipStationAccount) -> Decimal:
        return settings.rate_markup_percent

    # -- Custom Store (PulledByProvider)
    def authenticate_pull(self, settings: ShipStationAccount, request: PushRequest) -> bool:
        """True when ShipStation's call to our Custom Store carries the account's Basic
        credentials (`store_user`, `store_password`), compared in constant time."""
        return verify_basic(request.headers.get("Authorization"), settings.store_user, settings.store_password)

    def parse_pull(self, settings: ShipStationAccount, method: str, query: Mapping[str, str]) -> PullRequest:
        return customstore.parse_store_request(method, query)

    def render_export(self, settings: ShipStationAccount, page: ExportPage) -> bytes:
        """One `?action=export` page; each order's OrderStatus is the account's store word for
        its ShipStation status (e.g. awaiting shipment -> "Fully Picked"), which the ShipStation
        user maps back in the store's settings."""
        statuses = [codes.channel_status(settings.statuses, _EXPORT_STATUS[o.status]) for o in page.orders]
        return customstore.render_export(
            [o.order for o in page.orders],
            [o.order_number for o in page.orders],
            statuses=statuses,
            page=page.page,
            pages=page.pages,
            last_modified=[o.modified for o in page.orders],
        )

    def parse_posted_shipment(self, settings: ShipStationAccount, body: bytes) -> Notice:
        return customstore.parse_shipnotify(body)


_EXPORT_STATUS = {
    ExportStatus.AWAITING_SHIPMENT: codes.AWAITING_SHIPMENT,
    ExportStatus.SHIPPED: codes.SHIPPED,
    ExportStatus.CANCELLED: codes.CANCELLED,
}


def order_status(settings: ShipStationAccount, order: order_pb2.Order) -> str:
    """The ShipStation orderStatus for the order's channel status, by the account's mapping;
    an order whose channel gives no status awaits shipment (it was routed to be shipped).

    Raises:
        UnmappedStatus: the channel status is in no entry of the mapping (or is On Hold).
    """
    if not order.channel_status.strip():
        return codes.AWAITING_SHIPMENT
    return codes.shipstation_status(settings.statuses, order.channel_status)


def verify_basic(header: str | None, user: str, password: str) -> bool:
    """A `Basic` header carrying exactly these credentials, compared in constant time; an
    unconfigured (empty) user or password accepts nothing."""
    if not header or not user or not password:
        return False
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, f"{user}:{password}".encode())


async def _exists(client: ShipStationClient, order_number: str) -> bool:
    return bool(await client.list_orders(order_number))


CONNECTOR = ShipStationConnector()
