"""The Mintsoft connector: a warehouse OMS taking one order per call, with its own SKUs.

Orders go to `PUT /api/Order` with our order number as `OrderNumber` and the idempotency key as
`ExternalOrderReference`; Mintsoft refuses a second order with either, and that refusal is read
as "already there". The answer is per row (`Success`), whatever the HTTP status. Each order's
lines arrive through the tenant's product map (`Submission.items`); the channel line ids and
their channel quantities are kept with the order (an OrderNameValues entry) and come back with
its tracking. Despatch and cancellation arrive as Connect Action callbacks, registered per
order after the create, on a URL ending in the account's secret token; callbacks are unsigned,
so the order is re-read before it is believed. Polling `Order/List` since a LastUpdated
watermark recovers any callback that was lost or never registered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from ordersync.common.v1 import order_pb2

from ..base.contract import (
    Capability,
    CatalogProduct,
    ClientResources,
    ConnectorInfo,
    Limits,
    Notice,
    NoticeHead,
    NoticePage,
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
from ..base.errors import Conflict, ConnectorError, InvalidRequest, InvalidWebhook, NotFound, Rejected
from ..base.settings import SectionReader, SettingsError
from . import codes, schemas
from .client import BURST, PAGE_SIZE, MintsoftClient
from .errors import is_duplicate, message_of, refusal
from .orders import OrderDefaults, build_order, parse_create_response, provider_order_number, submission_items
from .settings import DEFAULT_BASE_URL, MintsoftSettings
from .shipments import (
    cursor_text,
    last_updated,
    parse_callback,
    parse_mintsoft_time,
    parse_order,
    query_since,
    shipment_from_order,
    status_name,
    validate_rows,
)

# Where an empty polling cursor starts: before any order an account can hold.
START_OF_TIME = "2000-01-01T00:00:00"
MAX_PRODUCT_PAGES = 1000
_OPTIONAL_TEXT = frozenset({"order_number_prefix", "channel", "callback_base_url"})


@dataclass(frozen=True)
class MintsoftAccount:
    """One Mintsoft account as a tenant configures it (see the README for each key)."""

    api: MintsoftSettings
    warehouse_id: int | None = None
    courier_service: str = "AUTO"
    channel: str = ""
    order_number_prefix: str = ""
    callback_base_url: str = ""
    callback_token: str = field(default="", repr=False)

    def callback_url(self, tenant_id: str) -> str:
        """Dispatch's notice URL for this account: `{callback_base_url}/webhooks/mintsoft/{tenant}/{token}`."""
        base = self.callback_base_url.rstrip("/")
        return f"{base}/webhooks/mintsoft/{quote(tenant_id, safe='')}/{quote(self.callback_token, safe='')}"


class MintsoftConnector(ProviderConnector):
    info = ConnectorInfo(
        id="mintsoft",
        label="Mintsoft",
        roles=frozenset({Role.PROVIDER}),
        capabilities=frozenset(
            {
                Capability.SUBMIT,
                Capability.READ_BACK,
                Capability.POLL_SHIPMENTS,
                Capability.CANCEL,
                Capability.PUSH_NOTICES,
                Capability.PRODUCT_CATALOG,
            }
        ),
        # PUT /api/Order takes one order. Mintsoft publishes no rate limit: two requests a
        # second and four in flight is a pace a shared OMS tolerates (see the README).
        limits=Limits(batch_size=1, requests_per_minute=120, concurrency=4),
        status_titles=provider_titles("Mintsoft"),
        needs_service_code=False,  # "AUTO": Mintsoft's courier rules pick the service
        maps_products=True,
    )

    # -- settings and client

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> MintsoftAccount:
        # An optional text key written out empty means "none", as leaving it out does.
        section = {k: v for k, v in section.items() if not (k in _OPTIONAL_TEXT and v == "")}
        read = SectionReader(section, resolve, where)
        username = read.text("username")
        password = read.secret("password")
        client_id = read.positive_int("client_id", 1) if "client_id" in section else None
        warehouse_id = read.positive_int("warehouse_id", 1) if "warehouse_id" in section else None
        try:
            api = MintsoftSettings(
                username,
                password,
                base_url=read.text("base_url", DEFAULT_BASE_URL),
                client_id=client_id,
                requests_per_minute=read.positive_int("requests_per_minute", 120),
                timeout_s=read.positive_number("timeout_s", 30.0),
            )
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
        channel = read.text("channel") if "channel" in section else ""
        prefix = read.text("order_number_prefix") if "order_number_prefix" in section else ""
        callback_base_url = read.text("callback_base_url") if "callback_base_url" in section else ""
        if callback_base_url and urlsplit(callback_base_url).scheme not in ("http", "https"):
            raise read.error("callback_base_url", "must be an http(s) URL")
        token = ""
        if callback_base_url or "callback_token" in section:
            token = read.secret("callback_token")
        account = MintsoftAccount(
            api,
            warehouse_id=warehouse_id,
            courier_service=read.text("courier_service", "AUTO"),
            channel=channel,
            order_number_prefix=prefix,
            callback_base_url=callback_base_url,
            callback_token=token,
        )
        read.finish()
        return account

    def unique_keys(self, settings: MintsoftAccount) -> Sequence[str]:
        # OrderNumber is unique per Mintsoft client: two tenants on one client with one prefix
        # would refuse each other's orders as duplicates. A callback token names one tenant's
        # endpoint; it is compared by digest, so no token appears in a config error.
        who = hashlib.sha256(f"{settings.api.base_url}|{settings.api.username}".encode()).hexdigest()[:12]
        keys = [f"client {who}/{settings.api.client_id or '-'} order_number_prefix {settings.order_number_prefix!r}"]
        if settings.callback_token:
            keys.append(f"callback_token #{hashlib.sha256(settings.callback_token.encode()).hexdigest()[:12]}")
        return tuple(keys)

    def open_client(self, settings: MintsoftAccount, resources: ClientResources) -> MintsoftClient:
        api = dataclasses.replace(
            settings.api, max_concurrency=min(resources.max_concurrency, self.info.limits.concurrency)
        )
        limiter = resources.limiter_for(self.info.id, api.requests_per_minute, BURST)
        return MintsoftClient(api, rate_limiter=limiter)

    # -- submit

    def order_number(self, settings: MintsoftAccount, order: order_pb2.Order) -> str:
        return provider_order_number(settings.order_number_prefix, order)

    async def submit(
        self, client: MintsoftClient, settings: MintsoftAccount, batch: Sequence[Submission]
    ) -> list[SubmitResult]:
        return await submit_one_by_one(batch, lambda item: self._submit_one(client, settings, item))

    async def _submit_one(self, client: MintsoftClient, settings: MintsoftAccount, item: Submission) -> Submitted:
        number = item.order_number
        if item.may_exist:
            found = await _find(client, number)
            if found is not None:
                note = await self._register_callbacks(client, settings, item.order, found.ID)
                return Submitted(
                    f"found in Mintsoft as {number} (order id {found.ID}) after an interrupted attempt;"
                    f" not sent again{note}"
                )
        items = submission_items(item.order, item.items)
        body = build_order(
            item.order,
            order_number=number,
            reference=item.idempotency_key,
            items=items,
            defaults=_defaults(settings, item.options),
        )
        _, answer = await client.create_order(body)
        outcome = parse_create_response(answer, number)
        if outcome.success:
            order_id = outcome.order_id
            if order_id is None:
                found = await _find(client, number)
                order_id = found.ID if found is not None else None
            note = await self._register_callbacks(client, settings, item.order, order_id)
            return Submitted(f"sent to Mintsoft as {number} (order id {order_id}){note}")
        if is_duplicate(outcome.message):
            found = await _find(client, number)
            if found is not None:
                note = await self._register_callbacks(client, settings, item.order, found.ID)
                return Submitted(f"already in Mintsoft as {number} (order id {found.ID}); not sent again{note}")
            # The reference (or another order with the number in a way Search does not show)
            # is taken: nothing of ours is there to point at, so it is refused, not assumed.
        raise refusal(number, outcome.message, [i.sku for i in items])

    async def _register_callbacks(
        self, client: MintsoftClient, settings: MintsoftAccount, order: order_pb2.Order, order_id: int | None
    ) -> str:
        """Register the despatch and cancel callbacks; the words to add to the activity.

        A failure does not fail the submit: the order is in Mintsoft, and polling finds its news.
        """
        if not settings.callback_base_url:
            return "; no callback URL configured: its despatch is found by polling"
        if order_id is None:
            return "; its callbacks could not be registered (no order id): its despatch is found by polling"
        url = settings.callback_url(order.tenant_id)
        action = schemas.NewConnectAction(
            SourceOrderId=order.external_id or order.external_number, ExtraCode1=url, ExtraCode2=url
        )
        try:
            result = schemas.ToolkitResult.model_validate(
                await client.put_connect_actions(order_id, action.to_json_dict())
            )
        except (ConnectorError, ValueError) as exc:
            reason = exc.reason_code if isinstance(exc, ConnectorError) else "INVALID_RESPONSE"
            return f"; its callbacks could not be registered ({reason}): its despatch is found by polling"
        if not result.Success:
            return "; Mintsoft refused its callbacks: its despatch is found by polling"
        return "; despatch and cancel callbacks registered"

    # -- read back, poll, cancel

    async def read_back(self, client: MintsoftClient, settings: MintsoftAccount, order_number: str) -> Notice | None:
        found = await _find(client, order_number)
        if found is None:
            return None
        detail = await client.get_order(found.ID)
        if detail is None:
            return None
        order = parse_order(detail)
        statuses = await client.order_statuses()
        name = status_name(order, statuses) or "unknown status"
        return Notice(order_number, shipment_from_order(order, statuses), f"read back: {name[:30]}")

    async def read_back_since(self, client: MintsoftClient, settings: MintsoftAccount, cursor: str) -> NoticePage:
        """Orders changed since the cursor's LastUpdated watermark, a page of 100 at a time.

        The cursor is `watermark|page|newest`: `watermark` the LastUpdated the run started from
        (Mintsoft's text, whole seconds; "" = from the start), `page` the PageNo to ask for,
        `newest` the latest LastUpdated seen in this run. Each request asks from a second
        before the watermark, so orders updated in its own second come again rather than being
        skipped. A full page sorted by LastUpdated whose last row is past the watermark moves
        the watermark there and starts again at page 1, so rows shifting between pages while
        others change cannot be skipped; a page of ties (or unsorted) is followed by the next
        PageNo. Only despatched and cancelled orders give notices.
        """
        watermark, page_no, newest = _read_cursor(cursor)
        rows = validate_rows(await client.list_orders(query_since(watermark or START_OF_TIME), page_no, PAGE_SIZE))
        statuses = await client.order_statuses() if rows else {}
        notices = []
        for order in rows:
            shipment = shipment_from_order(order, statuses)
            if shipment is not None and order.OrderNumber:
                notices.append(Notice(order.OrderNumber, shipment, "polled"))
        times = [t for t in (last_updated(o) for o in rows) if t is not None]
        newest = _latest(newest, *(cursor_text(t) for t in times))
        if len(rows) < PAGE_SIZE:
            # Never behind the watermark: the rows re-read from its last second must not
            # move it back a second on every poll.
            return NoticePage(notices, _write_cursor(_latest(watermark, newest), 1, ""), more=False)
        start = parse_mintsoft_time(watermark)
        sorted_rows = len(times) == len(rows) and times == sorted(times)
        if sorted_rows and (start is None or cursor_text(times[-1]) > cursor_text(start)):
            return NoticePage(notices, _write_cursor(cursor_text(times[-1]), 1, newest), more=True)
        return NoticePage(notices, _write_cursor(watermark, page_no + 1, newest), more=True)

    async def cancel(self, client: MintsoftClient, settings: MintsoftAccount, order_number: str, reason: str) -> None:
        found = await _find(client, order_number)
        if found is None:
            raise NotFound(f"mintsoft cancel: no order {order_number} in Mintsoft")
        statuses = await client.order_statuses()
        if status_name(found, statuses) in codes.CANCELLED_STATUSES:
            return  # cancelling converges: done already
        result = schemas.ToolkitResult.model_validate(await client.cancel_order(found.ID))
        if not result.Success:
            raise Conflict(f"Mintsoft did not cancel order {order_number}: {result.Message or 'no reason given'}")

    # -- notices (Connect Action callbacks)

    def authenticate_notice(self, settings: MintsoftAccount, request: PushRequest) -> bool:
        if not settings.callback_token or not request.path_tail:
            return False
        return hmac.compare_digest(request.path_tail.encode(errors="replace"), settings.callback_token.encode())

    def parse_notice(self, body: bytes) -> NoticeHead:
        order = parse_callback(body)
        return NoticeHead(order.OrderNumber, "callback", reference=str(order.ID))

    async def resolve_notice(self, client: MintsoftClient, settings: MintsoftAccount, head: NoticeHead) -> list[Notice]:
        """Re-read the order the callback names: the body is unsigned, so only Mintsoft's own
        answer is believed, and it must be the order (and client) the callback names."""
        if not head.reference.isdigit():
            raise InvalidWebhook("mintsoft callback: the order ID is not a number")
        detail = await client.get_order(int(head.reference))
        if detail is None:
            raise InvalidWebhook("mintsoft callback: Mintsoft has no order with the callback's ID")
        order = parse_order(detail)
        if order.OrderNumber != head.order_number:
            raise InvalidWebhook("mintsoft callback: the order read back is not the callback's OrderNumber")
        client_id = settings.api.client_id
        if client_id is not None and order.ClientId is not None and order.ClientId != client_id:
            raise InvalidWebhook("mintsoft callback: the order belongs to another Mintsoft client")
        statuses = await client.order_statuses()
        return [Notice(order.OrderNumber, shipment_from_order(order, statuses), head.event)]

    # -- product catalog (ProductCatalog)

    async def list_products(self, client: MintsoftClient, settings: MintsoftAccount) -> list[CatalogProduct]:
        products: list[CatalogProduct] = []
        for page_no in range(1, MAX_PRODUCT_PAGES + 1):
            rows = await client.list_products(page_no, PAGE_SIZE)
            products.extend(
                CatalogProduct(str(row["SKU"]), str(row.get("Name") or "")) for row in rows if row.get("SKU")
            )
            if len(rows) < PAGE_SIZE:
                return products
        raise InvalidRequest(f"mintsoft list_products: more than {MAX_PRODUCT_PAGES} pages; stopped")

    async def create_product(self, client: MintsoftClient, settings: MintsoftAccount, product: CatalogProduct) -> bool:
        body = schemas.NewProduct(SKU=product.sku, Name=product.name or product.sku).to_json_dict()
        status, answer = await client.create_product(body)
        row = answer[0] if isinstance(answer, list) and answer else answer
        success = isinstance(row, dict) and row.get("Success") is not False and status < 400
        if success:
            return True
        message = message_of(row)
        if is_duplicate(message):
            return False
        raise Rejected(f"Mintsoft refused product {product.sku}: {message or f'HTTP {status}'}")


def _defaults(settings: MintsoftAccount, options: Mapping[str, Any]) -> OrderDefaults:
    """The account's defaults, with the route's `warehouse_id` and `courier_service` over them."""
    warehouse = options.get("warehouse_id", settings.warehouse_id)
    if warehouse is not None:
        try:
            warehouse = int(warehouse)
        except (TypeError, ValueError):
            raise InvalidRequest("mintsoft: the route's warehouse_id is not a whole number") from None
    return OrderDefaults(
        client_id=settings.api.client_id,
        warehouse_id=warehouse,
        courier_service=str(options.get("courier_service") or settings.courier_service),
        channel=settings.channel,
    )


async def _find(client: MintsoftClient, order_number: str) -> schemas.Order | None:
    """The order with exactly this OrderNumber, or None."""
    for row in await client.search_orders(order_number):
        order = parse_order(row, what="search_orders row")
        if order.OrderNumber == order_number:
            return order
    return None


def _read_cursor(cursor: str) -> tuple[str, int, str]:
    if not cursor:
        return "", 1, ""
    watermark, _, rest = cursor.partition("|")
    page, _, newest = rest.partition("|")
    try:
        page_no = max(1, int(page or 1))
    except ValueError:
        page_no = 1
    return watermark, page_no, newest


def _latest(*watermarks: str) -> str:
    """The latest of some watermarks ("" for none); they share one fixed-width format."""
    return max((w for w in watermarks if parse_mintsoft_time(w) is not None), default="")


def _write_cursor(watermark: str, page_no: int, newest: str) -> str:
    return f"{watermark}|{page_no}|{newest}"


CONNECTOR = MintsoftConnector()
