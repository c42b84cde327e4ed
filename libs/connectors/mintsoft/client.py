"""Mintsoft HTTP client: transport only (the API key from /api/Auth, paging, safe retries).

Mintsoft authenticates by a key: `POST /api/Auth` with the user's name and password answers a
bare JSON string, sent as the `ms-apikey` header on every call. A key lasts 24 hours, after
which calls answer 401. The client fetches a key on first use, and on a 401 fetches a new one
once and repeats the call, so an expired key never fails a call. Only one authentication runs
at a time: concurrent callers wait for it and share its key, and callers whose 401 came from a
key that was already replaced reuse the new one instead of authenticating again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

import httpx

from ..base.errors import InvalidResponse, NotFound
from ..base.http import (
    ConnectorClient,
    HttpTransport,
    RetryPolicy,
    Sleep,
    default_timeout,
    json_body,
    path_segment,
)
from ..base.ratelimit import KeyedRateLimiter, Priority, RateLimiter
from .errors import auth_refused, error_from_response
from .settings import MintsoftSettings

CONNECTOR = "mintsoft"
BURST = 5
PAGE_SIZE = 100  # what users report Mintsoft's list endpoints serve by default
MAX_PAGES = 1000  # a runaway paging loop stops here (100,000 products)


def rate_limit_key(settings: MintsoftSettings) -> str:
    """The budget's key: a digest of the user (and client), so no name appears in rate tables."""
    who = f"{settings.base_url}|{settings.username}|{settings.client_id or ''}"
    return "user-" + hashlib.sha256(who.encode()).hexdigest()[:24]


class MintsoftClient(ConnectorClient):
    """Async client for one Mintsoft user (and client). Use `async with` or start()/stop().

    Args:
        settings: the user's credentials and limits.
        transport: httpx transport instead of the network (tests: httpx.MockTransport).
        rate_limiter: limiter keyed by `rate_limit_key(settings)`; by default the client makes
            its own at `settings.requests_per_minute`.
        retry: retry policy; default 4 attempts.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        settings: MintsoftSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        limiter = rate_limiter or KeyedRateLimiter(settings.requests_per_minute, burst=BURST, sleep=sleep)
        self._http = HttpTransport(
            connector=CONNECTOR,
            base_url=settings.base_url,
            timeout=default_timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=settings.max_concurrency),
            max_concurrency=settings.max_concurrency,
            retry=retry,
            rate_limiter=limiter,
            rate_limit_key=rate_limit_key(settings),
            transport=transport,
            sleep=sleep,
        )
        self._key: str | None = None
        self._auth_lock = asyncio.Lock()
        self._statuses: dict[str, int] | None = None
        self.authentications = 0  # keys fetched by this client, for tests and diagnostics

    # -- authentication

    async def _current_key(self) -> str:
        if self._key is None:
            await self._renew_key(stale=None)
        assert self._key is not None
        return self._key

    async def _renew_key(self, *, stale: str | None) -> None:
        """Fetch a key unless another caller already replaced `stale` while we waited."""
        async with self._auth_lock:
            if self._key is not None and self._key != stale:
                return
            self._key = None
            self._key = await self._authenticate()

    async def _authenticate(self) -> str:
        # Asking for a key creates nothing, so the POST is safe to repeat.
        response = await self._http.request(
            "POST",
            "Auth",
            json={"Username": self.settings.username, "Password": self.settings.password},
            operation="auth",
            retry_unsafe=True,
        )
        if response.status_code in (400, 401, 403):
            raise auth_refused(response.status_code)
        if not response.is_success:
            raise error_from_response(response, "auth")
        key = json_body(response, label="mintsoft auth")
        if not isinstance(key, str) or not key.strip():
            raise InvalidResponse("mintsoft auth: the answer is not an API key", status_code=response.status_code)
        self.authentications += 1
        return key.strip()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        retry_sent: bool = True,
        priority: Priority = Priority.WRITE,
    ) -> httpx.Response:
        """Send with the current key; on a 401 renew the key once and send again."""
        for attempt in (1, 2):
            key = await self._current_key()
            response = await self._http.request(
                method,
                path,
                json=json,
                params=params,
                headers={"ms-apikey": key},
                operation=operation,
                retry_sent=retry_sent,
                priority=priority,
            )
            if response.status_code != 401 or attempt == 2:
                return response
            await self._renew_key(stale=key)
        raise AssertionError("unreachable")

    async def _call(self, method: str, path: str, *, operation: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, operation=operation, **kwargs)
        if not response.is_success:
            raise error_from_response(response, operation)
        return json_body(response, label=f"{CONNECTOR} {operation}")

    def _client_params(self, **params: Any) -> dict[str, str]:
        if self.settings.client_id is not None:
            params["ClientId"] = self.settings.client_id
        return {k: str(v) for k, v in params.items() if v is not None}

    # -- orders

    async def create_order(self, body: Mapping[str, Any]) -> tuple[int, Any]:
        """Create one order (`PUT /api/Order`); return (HTTP status, decoded answer).

        Mintsoft answers an array of per-order results, `Success` false on a refusal, in a
        200 or a 400: both are returned for the caller to read (orders.parse_create_response).
        Never repeated here after the request left (a read timeout, a 5xx): the outcome is
        unknown and the caller searches by OrderNumber before sending again.

        Raises:
            Unauthorized, RateLimited, Unavailable, Timeout, InvalidResponse, InvalidRequest.
        """
        operation = "create_order"
        response = await self._send("PUT", "Order", json=dict(body), operation=operation, retry_sent=False)
        if response.is_success or response.status_code in (400, 409, 422):
            answer = _json_or_none(response)
            if isinstance(answer, list | dict):
                return response.status_code, answer
        raise error_from_response(response, operation)

    async def search_orders(self, order_number: str) -> list[dict[str, Any]]:
        """Orders with this OrderNumber (`GET /api/Order/Search`); [] when there are none."""
        try:
            found = await self._call(
                "GET",
                "Order/Search",
                params=self._client_params(OrderNumber=order_number),
                operation="search_orders",
                priority=Priority.READ,
            )
        except NotFound:
            return []
        if isinstance(found, dict):
            found = [found]
        if not isinstance(found, list):
            raise InvalidResponse("mintsoft search_orders: the answer is not a list of orders")
        return [o for o in found if isinstance(o, dict)]

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        """The order (`GET /api/Order/{id}`), or None when Mintsoft has no such order."""
        try:
            order = await self._call(
                "GET", f"Order/{path_segment(str(order_id), what='order id')}", operation="get_order"
            )
        except NotFound:
            return None
        if order is None:
            return None
        if not isinstance(order, dict):
            raise InvalidResponse("mintsoft get_order: the answer is not an order")
        return order

    async def list_orders(self, since_last_updated: str, page_no: int, limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """One page of orders changed since a time (`GET /api/Order/List`), with their items."""
        params = self._client_params(
            SinceLastUpdated=since_last_updated, IncludeOrderItems="true", PageNo=page_no, Limit=limit
        )
        page = await self._call("GET", "Order/List", params=params, operation="list_orders", priority=Priority.READ)
        if page is None:
            return []
        if not isinstance(page, list):
            raise InvalidResponse("mintsoft list_orders: the answer is not a list of orders")
        return [o for o in page if isinstance(o, dict)]

    async def cancel_order(self, order_id: int) -> dict[str, Any]:
        """Cancel (`GET /api/Order/{id}/Cancel`); the generic result `{ID, Success, Message}`."""
        path = f"Order/{path_segment(str(order_id), what='order id')}/Cancel"
        return _object(await self._call("GET", path, operation="cancel_order"), "cancel_order")

    async def put_connect_actions(self, order_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """Register the order's callback URLs (`PUT /api/Order/{id}/ConnectActions`)."""
        path = f"Order/{path_segment(str(order_id), what='order id')}/ConnectActions"
        return _object(await self._call("PUT", path, json=dict(body), operation="connect_actions"), "connect_actions")

    async def order_statuses(self) -> dict[str, int]:
        """Status name (upper case) -> id (`GET /api/Order/Statuses`), read once per client."""
        if self._statuses is None:
            answer = await self._call("GET", "Order/Statuses", operation="order_statuses", priority=Priority.READ)
            if not isinstance(answer, list):
                raise InvalidResponse("mintsoft order_statuses: the answer is not a list")
            statuses = {}
            for row in answer:
                if isinstance(row, dict) and isinstance(row.get("ID"), int) and isinstance(row.get("Name"), str):
                    statuses[row["Name"].strip().upper()] = row["ID"]
            self._statuses = statuses
        return self._statuses

    # -- reference data and products

    async def courier_services(self) -> list[dict[str, Any]]:
        """The account's courier services (`GET /api/Courier/Services`): `ID`, `Name`, ..."""
        return _list(await self._call("GET", "Courier/Services", operation="courier_services"), "courier_services")

    async def warehouses(self) -> list[dict[str, Any]]:
        """The account's warehouses (`GET /api/Warehouse`): `ID`, `Name`, `Code`, ..."""
        return _list(await self._call("GET", "Warehouse", operation="warehouses"), "warehouses")

    async def list_products(self, page_no: int, limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """One page of products (`GET /api/Product/List`)."""
        params = self._client_params(PageNo=page_no, Limit=limit)
        answer = await self._call("GET", "Product/List", params=params, operation="list_products")
        return _list(answer, "list_products")

    async def create_product(self, body: Mapping[str, Any]) -> tuple[int, Any]:
        """Create a product (`PUT /api/Product`); return (HTTP status, decoded answer).

        A refusal (`Success` false, e.g. the SKU exists) may come as a 200 or a 400; both are
        returned for the caller to read. Repeating a create is harmless (the SKU is unique).
        """
        operation = "create_product"
        response = await self._send("PUT", "Product", json=dict(body), operation=operation)
        if response.is_success or response.status_code in (400, 409):
            return response.status_code, _json_or_none(response)
        raise error_from_response(response, operation)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _object(value: Any, operation: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidResponse(f"mintsoft {operation}: the answer is not an object")
    return value


def _list(value: Any, operation: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidResponse(f"mintsoft {operation}: the answer is not a list")
    return [row for row in value if isinstance(row, dict)]
