"""Cin7 Omni HTTP client: transport only (Basic auth, pacing, 429 backoff, JSON arrays)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..base.errors import InvalidResponse
from ..base.http import ConnectorClient, HttpTransport, RetryPolicy, Sleep, default_timeout, json_body, path_segment
from ..base.ratelimit import KeyedRateLimiter, RateLimiter
from .errors import error_from_response
from .settings import Cin7Settings

CONNECTOR = "cin7"
# Integrators quote 3 requests a second for Cin7 (UNVERIFIED): a burst of 3, then the minute's pace.
BURST = 3


class Cin7Client(ConnectorClient):
    """Async client for one Cin7 Omni API connection. Use `async with` or start()/stop().

    Every request carries Basic auth (username : connection key) and first takes a token from
    the account's limiter. The shared HttpTransport retries 429 (after Retry-After) and, for
    GET and PUT, 5xx and timeouts: a PUT of the same fields has the same effect again.

    Args:
        settings: the account's credentials and limits.
        transport: httpx transport instead of the network (tests: RequestRecorder).
        rate_limiter: a limiter shared by the account's callers (build it with burst=BURST);
            by default the client paces itself within this process.
        retry: retry policy; default as HttpTransport.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        settings: Cin7Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._http = HttpTransport(
            connector=CONNECTOR,
            base_url=settings.base_url,
            auth=httpx.BasicAuth(settings.username, settings.api_key),
            timeout=default_timeout(settings.timeout_s),
            retry=retry,
            rate_limiter=rate_limiter or KeyedRateLimiter(settings.rate_limit_per_minute, burst=BURST),
            rate_limit_key=settings.username,
            transport=transport,
            sleep=sleep,
        )

    async def list_sales_orders(self, params: Mapping[str, str]) -> Any:
        """One page of `GET /v1/SalesOrders` (params from orders.build_list_params); a JSON array.

        Raises:
            Unauthorized (bad credentials, or no read permission), InvalidRequest (a `where`
            Cin7 cannot read), RateLimited, Unavailable, Timeout, InvalidResponse.
        """
        return await self._call("GET", "/v1/SalesOrders", params=params, operation="list_sales_orders")

    async def get_sales_order(self, order_id: str) -> dict[str, Any]:
        """One order (`GET /v1/SalesOrders/{id}`).

        Raises:
            NotFound: no such order. The errors of list_sales_orders.
        """
        path = f"/v1/SalesOrders/{path_segment(order_id, what='sales order id')}"
        body = await self._call("GET", path, operation="get_sales_order")
        if not isinstance(body, dict):
            raise InvalidResponse("cin7 get_sales_order: body is not a JSON object")
        return body

    async def update_sales_orders(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        """`PUT /v1/SalesOrders` with partial orders; the per-row results (a JSON array).

        HTTP 200 may hold failed rows: check them with dispatch.check_update_response.
        """
        return await self._call(
            "PUT", "/v1/SalesOrders", json=[dict(row) for row in rows], operation="update_sales_orders"
        )

    async def _call(
        self, method: str, path: str, *, operation: str, json: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        response = await self._http.request(method, path, json=json, params=params, operation=operation)
        if not response.is_success:
            raise error_from_response(response, operation)
        return json_body(response, label=f"{CONNECTOR} {operation}")
