"""ShipStation v1 HTTP client: transport only (Basic auth, the key pair's rate budget, safe retries).

The rate budget is ShipStation's 40 requests a minute per API key pair, counted by ShipStation
across every caller; GETs are reads, served after any create waiting for the same key pair. Two things keep us inside it: a limiter keyed by the key pair (shared by the
service's replicas when ClientResources lends one) paces every attempt, and every answer's
`X-Rate-Limit-Remaining` / `X-Rate-Limit-Reset` correct it: when ShipStation says no request is
left in its window, everyone on the key pauses until the window resets, so the pacing never
collects a 429 of its own. A 429 itself pauses the key for its Retry-After (HttpTransport).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx

from ..base.errors import InvalidRequest, InvalidResponse
from ..base.http import ConnectorClient, HttpTransport, RetryPolicy, Sleep, default_timeout, same_site_link
from ..base.ratelimit import KeyedRateLimiter, Priority, RateLimiter
from .errors import error_from_response
from .settings import ShipStationSettings

CONNECTOR = "shipstation"
# Requests a key pair may send back to back before pacing; small, because ShipStation counts in
# fixed windows and a large burst at a window's end plus the next window's budget would be a 429.
BURST = 2
PAGE_SIZE = 500  # ShipStation's maximum pageSize
MAX_PAGES = 20  # an order has a handful of shipments; more pages than this is a broken answer
# Paths a webhook's resource_url may name: the lists SHIP_NOTIFY and ORDER_NOTIFY point at.
RESOURCE_PATHS = ("/shipments", "/orders")
_SAFE_PARAM = re.compile(r"^[A-Za-z0-9._~ :-]{0,100}$")


def rate_limit_key(api_key: str) -> str:
    """The key the budget is counted under: a digest of the API key, so the key itself appears
    in no rate-budget table or log."""
    return "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:24]


def window_exhausted_for(headers: Mapping[str, str]) -> float | None:
    """Seconds to pause when an answer says the window has no request left, else None.

    Reads `X-Rate-Limit-Remaining` (requests left in the window) and `X-Rate-Limit-Reset`
    (seconds until it resets); unreadable or absent headers pause nothing.
    """
    try:
        remaining = int(headers.get("X-Rate-Limit-Remaining", ""))
    except ValueError:
        return None
    if remaining > 0:
        return None
    try:
        reset = float(headers.get("X-Rate-Limit-Reset", ""))
    except ValueError:
        return None
    return max(0.0, reset)


class ShipStationClient(ConnectorClient):
    """Async client for one ShipStation API key pair. Use `async with` or start()/stop().

    Args:
        settings: the key pair and limits.
        transport: httpx transport instead of the network (tests: httpx.MockTransport).
        rate_limiter: limiter keyed by `rate_limit_key(api_key)`; a service with replicas passes
            one whose budget they all share (built with burst=BURST). By default the client
            makes its own, which holds within this process only.
        retry: retry policy; default 4 attempts.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        settings: ShipStationSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.rate_limiter: RateLimiter = rate_limiter or KeyedRateLimiter(
            settings.requests_per_minute, burst=BURST, sleep=sleep
        )
        self.rate_key = rate_limit_key(settings.api_key)
        self._base = httpx.URL(settings.base_url)
        self._http = HttpTransport(
            connector=CONNECTOR,
            base_url=settings.base_url,
            auth=httpx.BasicAuth(settings.api_key, settings.api_secret),
            timeout=default_timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=settings.max_concurrency),
            max_concurrency=settings.max_concurrency,
            retry=retry,
            rate_limiter=self.rate_limiter,
            rate_limit_key=self.rate_key,
            transport=transport,
            sleep=sleep,
        )

    async def create_orders(self, orders: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Create or update up to 100 orders (`POST /orders/createorders`).

        Every order carries its `orderKey`, so ShipStation updates the order an earlier attempt
        created instead of creating a second one: the call is safe to repeat and is retried
        like a PUT. The answer is 200 even when some orders failed; read it with
        orders.parse_create_orders_response.

        Raises:
            InvalidRequest: more than 100 orders, an order without orderKey, or a 400.
            Unauthorized, RateLimited, Unavailable, Timeout, InvalidResponse.
        """
        if not 1 <= len(orders) <= 100:
            raise InvalidRequest("shipstation create_orders: 1 to 100 orders a call")
        if not all(order.get("orderKey") for order in orders):
            raise InvalidRequest("shipstation create_orders: every order needs an orderKey to upsert by")
        return await self._call(
            "POST", "/orders/createorders", json=[dict(o) for o in orders], operation="create_orders", retry_unsafe=True
        )

    async def create_order(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update one order (`POST /orders/createorder`), upserted by its orderKey."""
        if not order.get("orderKey"):
            raise InvalidRequest("shipstation create_order: the order needs an orderKey to upsert by")
        return await self._call(
            "POST", "/orders/createorder", json=dict(order), operation="create_order", retry_unsafe=True
        )

    async def list_orders(self, order_number: str) -> list[dict[str, Any]]:
        """Every order with this number (`GET /orders?orderNumber=`); ShipStation matches prefixes,
        so only exact matches are returned."""
        found = await self._list("/orders", "orders", {"orderNumber": order_number}, operation="list_orders")
        return [o for o in found if str(o.get("orderNumber")) == order_number]

    async def list_shipments(self, order_number: str) -> list[dict[str, Any]]:
        """Every shipment (label) of an order, voided ones too (`GET /shipments?orderNumber=`)."""
        params = {"orderNumber": order_number, "includeShipmentItems": "true"}
        found = await self._list("/shipments", "shipments", params, operation="list_shipments")
        return [s for s in found if str(s.get("orderNumber")) == order_number]

    async def shipments_created_since(self, watermark: str) -> dict[str, Any]:
        """The first page (500) of labels created at or after `watermark` (a createDate as
        ShipStation wrote it; "" = every label), oldest first, voided ones and items included
        (`GET /shipments?createDateStart=&sortBy=CreateDate&sortDir=ASC`)."""
        params = {
            "sortBy": "CreateDate",
            "sortDir": "ASC",
            "includeShipmentItems": "true",
            "page": "1",
            "pageSize": str(PAGE_SIZE),
        }
        if watermark:
            params["createDateStart"] = watermark
        return await self._call("GET", "/shipments", params=params, operation="poll_shipments")

    async def fetch_resource(self, resource_url: str) -> dict[str, Any]:
        """Fetch a webhook's `resource_url`, but only from the configured ShipStation.

        Webhooks are unsigned, so the URL is untrusted: same scheme, host and port as the base
        URL, no user info, a path of `/shipments` or `/orders`, plain query values. Anything
        else is refused before a request is made, so a forged webhook cannot send our
        credentials elsewhere.

        Raises:
            InvalidRequest: not a ShipStation list URL of this account's base URL.
            The errors of list_shipments.
        """
        path, params = self._resource_path(resource_url)
        return await self._call("GET", path, params=params, operation="fetch_resource")

    async def fetch_shipments(self, resource_url: str) -> list[dict[str, Any]]:
        """Every shipment a SHIP_NOTIFY `resource_url` names, all pages, with their items.

        ShipStation's URL asks `includeShipmentItems=False`; the items are what the channel is
        told was shipped, so they are asked for. The URL is checked as in fetch_resource.

        Raises:
            InvalidRequest: not a `/shipments` URL of this account's base URL.
            The errors of list_shipments.
        """
        path, params = self._resource_path(resource_url)
        if path != "/shipments":
            raise InvalidRequest("shipstation fetch_shipments: the resource_url is not a shipment list")
        params = {k: v for k, v in params.items() if k not in ("page", "pageSize")}
        params["includeShipmentItems"] = "true"
        return await self._list(path, "shipments", params, operation="fetch_shipments")

    async def get_rates(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rates for one carrier (`POST /shipments/getrates`); creates nothing, so retried like a
        read. Amounts are Decimals, as ShipStation wrote them."""
        answer = await self._request_json(
            "POST", "/shipments/getrates", json=dict(body), operation="get_rates", retry_unsafe=True
        )
        if not isinstance(answer, list):
            raise InvalidResponse("shipstation get_rates: the answer is not a list")
        return answer

    def _resource_path(self, resource_url: str) -> tuple[str, dict[str, str]]:
        refused = InvalidRequest("shipstation fetch_resource: the resource_url is not a ShipStation list URL")
        url = same_site_link(self._base, resource_url)
        if url is None:
            raise refused
        path = url.path[len(self._base.path.rstrip("/")) :]
        if path not in RESOURCE_PATHS:
            raise refused
        params = dict(url.params)
        if not all(_SAFE_PARAM.match(k) and _SAFE_PARAM.match(v) for k, v in params.items()):
            raise refused
        return path, params

    async def _list(self, path: str, key: str, params: Mapping[str, str], *, operation: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = await self._call(
                "GET", path, params={**params, "page": str(page), "pageSize": str(PAGE_SIZE)}, operation=operation
            )
            items = answer.get(key)
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise InvalidResponse(f"shipstation {operation}: the answer has no '{key}' list")
            found.extend(items)
            pages = answer.get("pages")
            if not isinstance(pages, int) or page >= pages or not items:
                return found
            page += 1
            if page > MAX_PAGES:
                raise InvalidResponse(f"shipstation {operation}: more than {MAX_PAGES} pages")

    async def _call(self, method: str, path: str, *, operation: str, **kwargs: Any) -> dict[str, Any]:
        answer = await self._request_json(method, path, operation=operation, **kwargs)
        if not isinstance(answer, dict):
            raise InvalidResponse(f"shipstation {operation}: the answer is not a JSON object")
        return answer

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        retry_unsafe: bool = False,
    ) -> Any:
        # Writes before reads: creating orders is what the budget is for; reading back (the
        # GETs: read-backs, notices, polling) leaves a token for a create waiting behind it.
        response = await self._http.request(
            method,
            path,
            json=_jsonable(json),
            params=params,
            operation=operation,
            retry_unsafe=retry_unsafe,
            priority=Priority.READ if method == "GET" else Priority.WRITE,
        )
        await self._heed_rate_headers(response)
        if not response.is_success:
            raise error_from_response(response, operation)
        return _decode(response, operation)

    async def _heed_rate_headers(self, response: httpx.Response) -> None:
        wait_s = window_exhausted_for(response.headers)
        if wait_s:
            # The window is spent: every caller on this key pair waits for the reset, not only
            # the next one, or the others would each collect a 429.
            await self.rate_limiter.pause(self.rate_key, wait_s)


def _jsonable(value: Any) -> Any:
    # Amounts are Decimals here (built exact, or read back exact); JSON has only numbers. A
    # Decimal of cents prints the same as a float does, so the wire text keeps its value.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _decode(response: httpx.Response, operation: str) -> Any:
    # Decimals, not floats: amounts (shipmentCost, rates) are money and must stay exact.
    try:
        return json.loads(response.content, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:
        raise InvalidResponse(
            f"shipstation {operation}: HTTP {response.status_code} body is not JSON", status_code=response.status_code
        ) from exc
