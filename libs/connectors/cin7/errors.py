"""Cin7 error responses and failed rows -> ConnectorError."""

from __future__ import annotations

import httpx

from ..base.errors import ConnectorError, InvalidRequest, build_error, error_body, error_class_for_status
from ..base.http import parse_retry_after
from .schemas import RowResult


def error_from_response(response: httpx.Response, operation: str) -> ConnectorError:
    """Map a Cin7 error answer (status >= 400) to a ConnectorError.

    Cin7 documents 400, 401 (bad credentials), 403 (the connection lacks the endpoint's
    permission), 404, 429 and 500, with a JSON body carrying a message. The default table
    applies: 401/403 Unauthorized, 404 NotFound, 429 RateLimited (Retry-After kept), 5xx
    Unavailable, other 4xx InvalidRequest.
    """
    body = error_body(response)
    status = response.status_code
    text = body.get("message") or body.get("Message") or response.reason_phrase or "error"
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return build_error(
        error_class_for_status(status),
        f"cin7 {operation}: HTTP {status}: {text}",
        status_code=status,
        retry_after=retry_after,
    )


def row_error(row: RowResult, operation: str) -> InvalidRequest:
    """A failed row of a 200 answer: Cin7 refused that order's change (the row's errors as details)."""
    return InvalidRequest(f"cin7 {operation}: order {row.id} was refused", status_code=200, details=row.errors)
