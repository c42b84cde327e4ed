"""CommerceInterface error answers -> ConnectorError: HTTP errors, and `success: false` in a 200."""

from __future__ import annotations

import httpx

from ..base.errors import (
    ConnectorError,
    InvalidRequest,
    Unauthorized,
    Unavailable,
    build_error,
    error_body,
    error_class_for_status,
)
from ..base.http import parse_retry_after
from .codes import AUTH_REASON_WORDS


class ListingChanged(Unavailable):
    """get_orders' listing kept shifting while its pages were read (lines marked exported or
    added meanwhile); reading again later can succeed."""

    reason_code = "LISTING_CHANGED"


class TrackingRefused(InvalidRequest):
    """Tracking we will not upload (or Groupon refused): uploaded tracking cannot be corrected
    through the API, so nothing doubtful is sent."""

    reason_code = "TRACKING_REFUSED"


def error_from_response(response: httpx.Response, operation: str) -> ConnectorError:
    """Map an HTTP error answer (status >= 400) to a ConnectorError, by the default table
    (401/403 Unauthorized, 404 NotFound, 429 RateLimited with Retry-After, 5xx Unavailable)."""
    status = response.status_code
    body = error_body(response)
    text = body.get("reason") or response.reason_phrase or "error"
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return build_error(
        error_class_for_status(status),
        f"groupon {operation}: HTTP {status}: {text}",
        status_code=status,
        retry_after=retry_after,
    )


def error_from_refusal(
    reason: str, operation: str, *, refused: type[ConnectorError] = InvalidRequest
) -> ConnectorError:
    """`success: false` with `reason` (HTTP 200): Unauthorized when the reason is about the
    supplier id or token, else `refused` (InvalidRequest unless the operation says otherwise)."""
    text = reason.strip() or "no reason given"
    lowered = text.casefold()
    cls: type[ConnectorError] = Unauthorized if any(word in lowered for word in AUTH_REASON_WORDS) else refused
    return cls(f"groupon {operation}: refused: {text}", status_code=200)
