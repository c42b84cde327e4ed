"""ShipStation error responses -> ConnectorError, and the per-order refusal of a bulk create."""

from __future__ import annotations

import httpx

from ..base.errors import ConnectorError, Rejected, build_error, error_body, error_class_for_status
from ..base.http import parse_retry_after


class OrderRejected(Rejected):
    """ShipStation refused one order of a createorders call (`success: false`); the message is
    ShipStation's `errorMessage`. Sending it again unchanged fails the same way."""

    reason_code = "SHIPSTATION_ORDER_REJECTED"


def error_from_response(response: httpx.Response, operation: str) -> ConnectorError:
    """Map a ShipStation error response (status >= 400) to a ConnectorError.

    ShipStation's error bodies are ASP.NET-style (`Message`, sometimes `ExceptionMessage`) and
    not a stable schema, so the class comes from the status alone (the base table: 400
    InvalidRequest, 401/403 Unauthorized, 404 NotFound, 429 RateLimited, 5xx Unavailable) and
    the message only adds ShipStation's words. Retry-After, or else X-Rate-Limit-Reset, is the
    wait of a 429.
    """
    body = error_body(response)
    text = str(body.get("Message") or body.get("message") or response.reason_phrase or "error")
    extra = body.get("ExceptionMessage")
    status = response.status_code
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None:
            retry_after = parse_retry_after(response.headers.get("X-Rate-Limit-Reset"))
    return build_error(
        error_class_for_status(status),
        f"shipstation {operation}: HTTP {status}: {text}",
        status_code=status,
        details=[str(extra)] if extra else [],
        retry_after=retry_after,
    )
