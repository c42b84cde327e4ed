"""Commerce7 error responses -> ConnectorError (status table plus the vendor's field errors)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from ..base.errors import (
    ConnectorError,
    InvalidWebhook,
    build_error,
    error_body,
    error_class_for_status,
)
from ..base.http import parse_retry_after
from . import schemas

__all__ = ["InvalidWebhook", "error_from_response"]


def error_from_response(response: httpx.Response, operation: str) -> ConnectorError:
    """Map a Commerce7 error response (status >= 400) to a ConnectorError.

    Commerce7 answers `{statusCode, type, message, errors[]}`. Mapping: 401/403
    Unauthorized (also a wrong `tenant` header), 404 NotFound, 409 Conflict, 400/422 and other
    4xx InvalidRequest with `errors[]` as details ("field: message"), 429 RateLimited with
    Retry-After, 5xx Unavailable.

    Args:
        response: the error response.
        operation: the client operation, for the message (e.g. "create_fulfillment_all").

    Returns:
        The error to raise; its message names the operation, status, type and the vendor's
        message (redacted), never the request.
    """
    try:
        body = schemas.ErrorBody.model_validate(error_body(response))
    except ValidationError:
        body = schemas.ErrorBody()
    status = response.status_code
    kind = f" {body.type}" if body.type else ""
    text = body.message or response.reason_phrase or "error"
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return build_error(
        error_class_for_status(status),
        f"commerce7 {operation}: HTTP {status}{kind}: {text}",
        status_code=status,
        details=[_field_error(entry) for entry in body.errors],
        retry_after=retry_after,
    )


def _field_error(entry: Any) -> str:
    if isinstance(entry, dict):
        field = entry.get("field") or entry.get("path") or entry.get("key")
        message = entry.get("message") or entry.get("msg") or ""
        return f"{field}: {message}" if field else str(message)
    return str(entry)
