"""Vinoshipper HTTP client: transport only (Basic auth, bounded concurrency, safe retries)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..base.errors import InvalidRequest, NotFound, error_body
from ..base.http import (
    ConnectorClient,
    HttpTransport,
    RetryPolicy,
    Sleep,
    default_timeout,
    json_object,
    path_segment,
    same_site_link,
)
from . import schemas
from .errors import ComplianceRejected, error_from_response
from .settings import VinoshipperSettings

CONNECTOR = "vinoshipper"
ORDERS_PATH = "/api/v3/p/orders"
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")


@dataclass(frozen=True, slots=True)
class CreatedOrder:
    """Vinoshipper's answer to create_order.

    Attributes:
        detail: the order's detail as JSON (see orders.parse_create_order_response).
        created: True when this request created the order; False when the order was already
            there (an earlier attempt had created it) and this request only repeated it.
    """

    detail: dict[str, Any]
    created: bool


class VinoshipperClient(ConnectorClient):
    """Async client for one Vinoshipper producer account. Use `async with` or start()/stop().

    Vinoshipper takes no idempotency key; the order number is the guard. create_order uses
    the create-or-update `PUT`, keyed by that number, so a request that lands after an earlier
    one for the same order (a slow create whose client gave up) finds the order instead of
    being refused as a duplicate. The client still never repeats a create by itself: on
    Timeout or Unavailable, call get_order before sending again.

    Args:
        settings: the account's credentials and limits.
        transport: httpx transport instead of the network (tests: httpx.MockTransport).
        retry: retry policy; default 4 attempts, 0.2 s base, 5 s cap.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        settings: VinoshipperSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._base = httpx.URL(settings.base_url)
        self._http = HttpTransport(
            connector=CONNECTOR,
            base_url=settings.base_url,
            auth=httpx.BasicAuth(settings.api_key, settings.api_secret),
            timeout=default_timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=settings.max_concurrency),
            max_concurrency=settings.max_concurrency,
            retry=retry,
            transport=transport,
            sleep=sleep,
        )

    async def create_order(self, body: Mapping[str, Any]) -> CreatedOrder:
        """Create an order, or find it created already (`PUT /api/v3/p/orders`).

        Vinoshipper's PUT creates or updates by `orderNumber`, so sending an order again, or
        while an earlier request for it is still being handled, leaves one order: the same
        body changes nothing. A POST would be refused with 409 instead, which a slow
        Vinoshipper turned into duplicate submissions. The body must carry `orderNumber`.

        Retried here only on 429 and connect failures (the request never left): after a read
        timeout, broken connection or 5xx the order may exist, and the caller reads it back
        (get_order) before sending again, as one more recorded attempt.

        Args:
            body: from orders.build_create_order_request, with its order number.

        Returns:
            The order's detail, and whether this request created it (201) or found it (200).

        Raises:
            ComplianceRejected: not compliant; `details` lists the problems.
            UnknownSku: a product SKU is not set up at Vinoshipper.
            OrderAlreadyExists: the number is another producer's, or the order has shipped
                or was cancelled and takes no updates: read back to tell which.
            Timeout, Unavailable: outcome unknown; read back with get_order.
            InvalidRequest: also when the body has no `orderNumber`.
            Unauthorized, RateLimited, InvalidResponse.
        """
        if not body.get("orderNumber"):
            raise InvalidRequest("vinoshipper create_order: the body has no orderNumber to create it by")
        operation = "create_order"
        response = await self._http.request("PUT", ORDERS_PATH, json=dict(body), operation=operation, retry_sent=False)
        if not response.is_success:
            raise error_from_response(response, operation)
        detail = json_object(response, label=f"{CONNECTOR} {operation}")
        return CreatedOrder(detail, created=response.status_code == 201)

    async def get_order(self, order_number: str) -> dict[str, Any] | None:
        """Return an order's detail (`GET /api/v3/p/orders/{orderNumber}`), or None on 404.

        Raises:
            Unauthorized, InvalidRequest, RateLimited, Unavailable, Timeout, InvalidResponse.
        """
        path = f"{ORDERS_PATH}/{path_segment(order_number, what='order number')}"
        try:
            return await self._call("GET", path, operation="get_order")
        except NotFound:
            return None

    async def check_compliance(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Run the compliance check without creating (`POST .../orders/check-compliance`).

        It creates nothing, so it is retried like a read. A 422 "not compliant" answer is
        the result of the check, not a failure: its body is returned.

        Args:
            body: from orders.build_create_order_request.

        Returns:
            The JSON answer; read it with orders.parse_compliance_response.

        Raises:
            UnknownSku, InvalidRequest, Unauthorized, RateLimited, Unavailable, Timeout,
            InvalidResponse.
        """
        operation = "check_compliance"
        response = await self._http.request(
            "POST",
            f"{ORDERS_PATH}/check-compliance",
            json=dict(body),
            operation=operation,
            retry_unsafe=True,
        )
        if response.is_success:
            return json_object(response, label=f"{CONNECTOR} {operation}")
        error = error_from_response(response, operation)
        if isinstance(error, ComplianceRejected):
            return error_body(response)
        raise error

    async def cancel_order(self, order_number: str, reason: str) -> dict[str, Any]:
        """Cancel an order (`POST /api/v3/p/orders/{orderNumber}/cancel`).

        Cancelling converges (a cancelled order stays cancelled), so it is retried like a PUT.

        Args:
            order_number: the Vinoshipper order number.
            reason: operator-visible reason, sent as `cancelReason` (body shape is a
                STAND-IN: Vinoshipper does not publish it).

        Returns:
            Vinoshipper's answer as JSON.

        Raises:
            NotFound, Conflict (e.g. already shipped), and the errors of get_order.
        """
        path = f"{ORDERS_PATH}/{path_segment(order_number, what='order number')}/cancel"
        body = schemas.CancelOrderRequest(cancelReason=reason).to_json_dict()
        return await self._call("POST", path, json=body, operation="cancel_order", retry_unsafe=True)

    async def fetch_href(self, href: str) -> dict[str, Any]:
        """Fetch a webhook's `hrefV3` (an order detail), but only from Vinoshipper itself.

        Webhooks are unsigned, so `href` is untrusted: it must have the configured base URL's
        scheme, host and port, no user info, and a path under `/api/v3/p/orders/` made of
        plain segments. Anything else is refused before any request is made, so a forged
        webhook cannot make us call another host or another API.

        Raises:
            InvalidRequest: the href is not an order URL of the configured Vinoshipper.
            NotFound: the order does not exist.
            The errors of get_order.
        """
        path, params = self._order_href_path(href)
        return await self._call("GET", path, params=params, operation="fetch_href")

    def _order_href_path(self, href: str) -> tuple[str, dict[str, str]]:
        refused = InvalidRequest("vinoshipper fetch_href: the href is not a Vinoshipper order URL")
        url = same_site_link(self._base, href)
        if url is None:
            raise refused
        base_path = self._base.path.rstrip("/")
        prefix = f"{base_path}{ORDERS_PATH}/"
        if not url.path.startswith(prefix):
            raise refused
        segments = url.path[len(prefix) :].split("/")
        if not all(_SAFE_SEGMENT.match(s) and s not in (".", "..") for s in segments):
            raise refused
        return url.path[len(base_path) :], dict(url.params)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        retry_unsafe: bool = False,
    ) -> dict[str, Any]:
        response = await self._http.request(
            method, path, json=json, params=params, operation=operation, retry_unsafe=retry_unsafe
        )
        if not response.is_success:
            raise error_from_response(response, operation)
        return json_object(response, label=f"{CONNECTOR} {operation}")
