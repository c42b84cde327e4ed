"""CommerceInterface HTTP client: transport only (supplier id and token on every call, pacing,
retries, `success: false` answers raised with their reason)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..base.errors import ConnectorError, InvalidRequest, InvalidResponse
from ..base.http import ConnectorClient, HttpTransport, RetryPolicy, Sleep, default_timeout, json_object
from ..base.ratelimit import KeyedRateLimiter, Priority, RateLimiter
from .errors import error_from_refusal, error_from_response
from .settings import GrouponSettings

CONNECTOR = "groupon"
# CommerceInterface publishes no rate limit. 120 a minute is polite for a supplier account and
# still reads a listing of 30 pages (7,500 lines) within one burst, back to back, which keeps
# the window in which the listing can shift under a read short.
REQUESTS_PER_MINUTE = 120
BURST = 30


class GrouponClient(ConnectorClient):
    """Async client for one CommerceInterface supplier account. Use `async with` or start()/stop().

    `supplier_id` and `token` go in the query of GETs and the form of POSTs, as the API takes
    them. Every answer is a JSON object with `success`; `success: false` raises its `reason`
    (Unauthorized for a refused supplier id or token). The shared HttpTransport retries 429
    and, for GET and for the two POSTs (both converge when repeated: marking a line exported
    twice, or uploading identical tracking twice, changes nothing), 5xx and timeouts.

    Args:
        settings: the account's credentials.
        transport: httpx transport instead of the network (tests: RequestRecorder).
        rate_limiter: a limiter shared by the account's callers (burst=BURST); by default the
            client paces itself within this process.
        retry: retry policy; default as HttpTransport.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        settings: GrouponSettings,
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
            timeout=default_timeout(settings.timeout_s),
            retry=retry,
            rate_limiter=rate_limiter or KeyedRateLimiter(REQUESTS_PER_MINUTE, burst=BURST),
            rate_limit_key=f"supplier-{settings.supplier_id}",
            transport=transport,
            sleep=sleep,
        )

    def _credentials(self) -> dict[str, str]:
        return {"supplier_id": self.settings.supplier_id, "token": self.settings.token}

    async def get_orders(self, params: Mapping[str, str]) -> dict[str, Any]:
        """One page of `GET get_orders` (params from orders.build_get_orders_params).

        Raises:
            Unauthorized (supplier id or token refused), InvalidRequest (another refusal),
            RateLimited, Unavailable, Timeout, InvalidResponse.
        """
        query = {**params, **self._credentials()}
        return await self._call("GET", "get_orders", operation="get_orders", params=query, priority=Priority.READ)

    async def mark_exported(self, line_ids: Sequence[int | str]) -> dict[str, Any]:
        """`POST mark_exported` with `ci_lineitem_ids` (a JSON array): the lines leave get_orders.

        Raises:
            InvalidRequest: CommerceInterface refused (e.g. an unknown line id), with its reason.
            The errors of get_orders.
        """
        form = {**self._credentials(), "ci_lineitem_ids": json.dumps(list(line_ids))}
        return await self._call("POST", "mark_exported", operation="mark_exported", data=form)

    async def tracking_notification(self, tracking_info: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """`POST tracking_notification` with `tracking_info` (a JSON array of one entry per line).

        Returns the answer, `success: false` included: tracking.check_tracking_response tells a
        repeat of an identical upload (done) from a refusal.
        """
        form = {**self._credentials(), "tracking_info": json.dumps([dict(entry) for entry in tracking_info])}
        return await self._call(
            "POST", "tracking_notification", operation="tracking_notification", data=form, refusals=False
        )

    async def lineitem_tracking_notification(self, tracking_info: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """v4 `POST lineitem_tracking_notification` with `tracking_info` (a JSON array of one entry
        per fulfillment line shipped in part). Answers as tracking_notification."""
        form = {**self._credentials(), "tracking_info": json.dumps([dict(entry) for entry in tracking_info])}
        return await self._call(
            "POST",
            "lineitem_tracking_notification",
            operation="lineitem_tracking_notification",
            data=form,
            refusals=False,
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        priority: Priority = Priority.WRITE,
        refusals: bool = True,
    ) -> dict[str, Any]:
        response = await self._http.request(
            method, path, params=params, data=data, operation=operation, retry_unsafe=True, priority=priority
        )
        if not response.is_success:
            raise error_from_response(response, operation)
        body = json_object(response, label=f"{CONNECTOR} {operation}")
        success = body.get("success")
        if not isinstance(success, bool):
            raise InvalidResponse(f"{CONNECTOR} {operation}: the answer has no success flag", status_code=200)
        if not success and refusals:
            raise refusal(body, operation)
        return body


def refusal(body: Mapping[str, Any], operation: str) -> ConnectorError:
    """The error of a `success: false` answer (its `reason`, which may be missing)."""
    reason = body.get("reason")
    return error_from_refusal(reason if isinstance(reason, str) else "", operation, refused=InvalidRequest)
