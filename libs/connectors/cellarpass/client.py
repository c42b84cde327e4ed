"""CellarPass HTTP client: transport only (Bearer key, pacing, retries, JSON bodies)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import Any

import httpx

from ..base.http import (
    ConnectorClient,
    HttpTransport,
    RetryPolicy,
    Sleep,
    default_timeout,
    json_body,
    json_object,
    path_segment,
)
from ..base.ratelimit import KeyedRateLimiter, Priority, RateLimiter
from .errors import error_from_response
from .settings import CellarPassSettings

CONNECTOR = "cellarpass"
# The stand-in allows 60 requests a minute per key (429 with Retry-After past it).
REQUESTS_PER_MINUTE = 60
BURST = 5


class CellarPassClient(ConnectorClient):
    """Async client for one CellarPass account. Use `async with` or start()/stop().

    Every request carries `Authorization: Bearer <api_key>` and first takes a token from the
    account's limiter. The shared HttpTransport retries 429 (after Retry-After) and, for GET,
    DELETE and the two POSTs (a sync result sets a status, a customer type is created once per
    sourceId: both converge when repeated), 5xx and timeouts.

    Args:
        settings: the account's address and key.
        transport: httpx transport instead of the network (tests: RequestRecorder).
        rate_limiter: a limiter shared by the account's callers (burst=BURST); by default the
            client paces itself within this process.
        retry: retry policy; default as HttpTransport.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        settings: CellarPassSettings,
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
            headers={"Authorization": f"Bearer {settings.api_key}"},
            timeout=default_timeout(settings.timeout_s),
            retry=retry,
            rate_limiter=rate_limiter or KeyedRateLimiter(REQUESTS_PER_MINUTE, burst=BURST),
            rate_limit_key=rate_limit_key(settings),
            transport=transport,
            sleep=sleep,
        )

    async def list_reservations(self, params: Mapping[str, str]) -> dict[str, Any]:
        """One page of `GET /v1/reservations` (params from reservations.build_list_params).

        Raises:
            Unauthorized (key refused), IntegrationDisabled (403), InvalidRequest (a filter or
            page size refused), RateLimited, Unavailable, Timeout, InvalidResponse.
        """
        response = await self._send("GET", "/v1/reservations", "list_reservations", params=params, read=True)
        return json_object(response, label=f"{CONNECTOR} list_reservations")

    async def post_sync_result(self, reservation_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v1/reservations/{id}/sync-result`: the reservation's VinSuite outcome.

        Raises:
            NotFound: CellarPass has no such reservation (the message names it).
            Conflict: the reservation is Processed already with another outcome.
            The errors of list_reservations.
        """
        path = f"/v1/reservations/{path_segment(reservation_id, what='reservation id')}/sync-result"
        response = await self._send(
            "POST", path, "sync_result", json=dict(body), subject=f"reservation {reservation_id}"
        )
        return json_object(response, label=f"{CONNECTOR} sync_result")

    async def list_customer_types(self) -> Any:
        """`GET /v1/customer-types`: a JSON array of `{id, name, sourceId?}`."""
        response = await self._send("GET", "/v1/customer-types", "list_customer_types", read=True)
        return json_body(response, label=f"{CONNECTOR} list_customer_types")

    async def put_customer_type(self, name: str, source_id: str) -> dict[str, Any]:
        """`POST /v1/customer-types {name, sourceId}`: the type mirroring `source_id`, created or
        renamed (200 existing, 201 created)."""
        response = await self._send(
            "POST", "/v1/customer-types", "put_customer_type", json={"name": name, "sourceId": source_id}
        )
        return json_object(response, label=f"{CONNECTOR} put_customer_type")

    async def delete_customer_type(self, type_id: str) -> bool:
        """`DELETE /v1/customer-types/{id}`; False when it was gone already (404)."""
        path = f"/v1/customer-types/{path_segment(type_id, what='customer type id')}"
        response = await self._http.request("DELETE", path, operation="delete_customer_type")
        if response.status_code == 404:
            return False
        if not response.is_success:
            raise error_from_response(response, "delete_customer_type", subject=f"customer type {type_id}")
        return True

    async def _send(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        subject: str = "",
        read: bool = False,
    ) -> httpx.Response:
        response = await self._http.request(
            method,
            path,
            params=params,
            json=json,
            operation=operation,
            # Both POSTs converge when repeated (see the class docstring).
            retry_unsafe=True,
            priority=Priority.READ if read else Priority.WRITE,
        )
        if not response.is_success:
            raise error_from_response(response, operation, subject=subject)
        return response


def rate_limit_key(settings: CellarPassSettings) -> str:
    """The account's key in a shared limiter: a digest of the API key (never the key itself,
    which a shared limiter may store or log)."""
    return "key-" + hashlib.sha256(settings.api_key.encode()).hexdigest()[:16]
