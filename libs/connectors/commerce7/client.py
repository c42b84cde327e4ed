"""Commerce7 HTTP client: transport only (auth, tenant header, rate limit, cursor paging, retry)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from ..base.errors import InvalidResponse
from ..base.http import (
    ConnectorClient,
    HttpTransport,
    RetryPolicy,
    Sleep,
    default_timeout,
    json_object,
    path_segment,
)
from ..base.ratelimit import KeyedRateLimiter, RateLimiter
from .errors import error_from_response
from .settings import Commerce7Settings

CONNECTOR = "commerce7"


BURST = 10  # requests a tenant may send back to back before pacing at rate_limit_per_minute


class Commerce7Client(ConnectorClient):
    """Async client for one Commerce7 tenant. Use `async with` or start()/stop().

    Every request carries Basic auth (app id : app secret) and the `tenant` header, and first
    takes a token from the tenant's rate limiter (100 per minute unless the settings say).
    Reads and PUTs are retried on 5xx/timeouts; POSTs only on 429 and connect failures,
    because Commerce7 takes no idempotency key (read back before posting again).

    Args:
        settings: the tenant's credentials and limits.
        transport: httpx transport instead of the network (tests: httpx.MockTransport).
        rate_limiter: limiter keyed by tenant id, shared by every client of the tenant.
            Commerce7 counts requests per tenant across callers, so a service with replicas
            passes one whose budget they all share (build it with burst=BURST); by default the
            client makes its own, which holds within this process only.
        retry: retry policy; default 4 attempts, 0.2 s base, 5 s cap.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        settings: Commerce7Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        # A small burst keeps any one minute under the tenant's limit: with a full-minute burst,
        # a client could send nearly twice the limit across one window boundary.
        self.rate_limiter: RateLimiter = rate_limiter or KeyedRateLimiter(settings.rate_limit_per_minute, burst=BURST)
        self._http = HttpTransport(
            connector=CONNECTOR,
            base_url=settings.base_url,
            auth=httpx.BasicAuth(settings.app_id, settings.app_secret),
            headers={"tenant": settings.tenant_id},
            timeout=default_timeout(settings.timeout_s),
            retry=retry,
            rate_limiter=self.rate_limiter,
            rate_limit_key=settings.tenant_id,
            transport=transport,
            sleep=sleep,
        )

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """Return one order (`GET /order/{id}`) as JSON; parse it with orders.parse_order.

        Raises:
            NotFound: no such order for this tenant.
            Unauthorized, InvalidRequest, RateLimited, Unavailable, Timeout, InvalidResponse.
        """
        return await self._call("GET", f"/order/{path_segment(order_id, what='order id')}", operation="get_order")

    async def list_orders(self, updated_since: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield every order, oldest page first, using cursor mode (`GET /order?cursor=`).

        Args:
            updated_since: ISO-8601 date-time; only orders with `updatedAt >=` it are listed
                (the `gte:` filter). None lists every order.

        Yields:
            Orders as JSON. Breaking out of the loop stops paging; no further request is made.

        Raises:
            InvalidResponse: a page without an `orders` list, or a cursor that repeats.
            The errors of get_order.
        """
        params: dict[str, str] = {"cursor": "start"}
        if updated_since:
            params["updatedAt"] = f"gte:{updated_since}"
        seen: set[str] = set()
        while True:
            page = await self._call("GET", "/order", params=params, operation="list_orders")
            orders = page.get("orders")
            if not isinstance(orders, list):
                raise InvalidResponse("commerce7 list_orders: page has no 'orders' list")
            for order in orders:
                yield order
            cursor = page.get("cursor")
            if not cursor or not orders:
                return
            if cursor in seen:
                # A cursor that comes back would page forever.
                raise InvalidResponse("commerce7 list_orders: the cursor repeated")
            seen.add(cursor)
            params = {**params, "cursor": str(cursor)}

    async def list_orders_page(self, updated_between: tuple[str, str], cursor: str = "") -> tuple[list[Any], str]:
        """One page of the orders updated in a window (`GET /order?updatedAt=btw:a|b&cursor=`).

        Args:
            updated_between: ISO-8601 date-times (start, end), both inclusive.
            cursor: "" for the first page, then the cursor the previous page returned.

        Returns:
            (orders as JSON, the next page's cursor; "" after the last page).

        Raises:
            InvalidResponse: a page without an `orders` list. The errors of get_order.
        """
        params = {"cursor": cursor or "start", "updatedAt": f"btw:{updated_between[0]}|{updated_between[1]}"}
        page = await self._call("GET", "/order", params=params, operation="list_orders")
        orders = page.get("orders")
        if not isinstance(orders, list):
            raise InvalidResponse("commerce7 list_orders: page has no 'orders' list")
        next_cursor = page.get("cursor")
        return orders, str(next_cursor) if next_cursor and orders else ""

    async def create_fulfillment_all(self, order_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Fulfil every unfulfilled line (`POST /order/{id}/fulfillment/all`).

        Args:
            order_id: the Commerce7 order id.
            body: from fulfillments.build_shipped_fulfillment.

        Returns:
            Commerce7's answer (the fulfillment) as JSON.

        Raises:
            Timeout, Unavailable: the fulfillment may or may not exist. Read the order and
                check fulfillments.order_has_fulfillment_with_tracking before posting again.
            InvalidRequest (details per field), NotFound, Unauthorized, RateLimited,
            InvalidResponse.
        """
        return await self._call(
            "POST",
            f"/order/{path_segment(order_id, what='order id')}/fulfillment/all",
            json=dict(body),
            operation="create_fulfillment_all",
        )

    async def delete_fulfillment(self, order_id: str, fulfillment_id: str) -> dict[str, Any]:
        """Remove one fulfillment (`DELETE /order/{id}/fulfillment/{fulfillmentId}`, the
        correction path); Commerce7 answers the order.

        Raises:
            NotFound: no such order or fulfillment (a repeat after a lost answer gets this).
            The errors of get_order.
        """
        order = path_segment(order_id, what="order id")
        fulfillment = path_segment(fulfillment_id, what="fulfillment id")
        return await self._call("DELETE", f"/order/{order}/fulfillment/{fulfillment}", operation="delete_fulfillment")

    async def update_order(self, order_id: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Update order fields (`PUT /order/{id}`); repeating it has the same effect.

        Args:
            order_id: the Commerce7 order id.
            patch: e.g. from fulfillments.build_delivered_update.

        Returns:
            The updated order as JSON.

        Raises:
            The errors of get_order.
        """
        return await self._call(
            "PUT",
            f"/order/{path_segment(order_id, what='order id')}",
            json=dict(patch),
            operation="update_order",
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self._http.request(method, path, json=json, params=params, operation=operation)
        if not response.is_success:
            raise error_from_response(response, operation)
        return json_object(response, label=f"{CONNECTOR} {operation}")
