"""Vinoshipper error responses -> ConnectorError, with the vendor-specific refinements."""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import ValidationError

from ..base.errors import (
    Conflict,
    ConnectorError,
    InvalidRequest,
    InvalidWebhook,
    Rejected,
    build_error,
    error_body,
    error_class_for_status,
)
from ..base.http import parse_retry_after
from . import schemas

__all__ = [
    "ComplianceRejected",
    "InvalidWebhook",
    "OrderAlreadyExists",
    "UnknownSku",
    "error_from_response",
]

_UNKNOWN_SKU = re.compile(r"unknown product sku", re.IGNORECASE)
_NOT_COMPLIANT = re.compile(r"not compliant", re.IGNORECASE)


class UnknownSku(InvalidRequest):
    """A product SKU does not exist at Vinoshipper: the SKUs must match in both systems."""

    reason_code = "UNKNOWN_SKU"


class OrderAlreadyExists(Conflict):
    """create_order was refused for its number: another producer holds it, or the order has
    shipped or was cancelled and takes no more updates. Read back to tell which."""

    reason_code = "ORDER_ALREADY_EXISTS"


class ComplianceRejected(Rejected):
    """Vinoshipper refused the order as not compliant; `details` lists its problems."""

    reason_code = "COMPLIANCE_REJECTED"


def error_from_response(response: httpx.Response, operation: str) -> ConnectorError:
    """Map a Vinoshipper error response (status >= 400) to a ConnectorError.

    Mapping: 400 InvalidRequest with `errors[].message` as details, or UnknownSku
    ("UNKNOWN_SKU") when the message names an unknown product SKU; 401/403 Unauthorized;
    404 NotFound; 409 OrderAlreadyExists ("ORDER_ALREADY_EXISTS") for create_order, Conflict
    otherwise; 422 "Order is not compliant" ComplianceRejected ("COMPLIANCE_REJECTED") with
    `orderProblems` as details, other 422 InvalidRequest; 429 RateLimited with Retry-After;
    5xx Unavailable.

    Args:
        response: the error response.
        operation: the client operation (e.g. "create_order"), for the message and the 409 rule.
    """
    try:
        body = schemas.ErrorBody.model_validate(error_body(response))
    except ValidationError:
        body = schemas.ErrorBody()
    status = response.status_code
    text = body.message or response.reason_phrase or "error"
    field_errors = [_field_error(entry) for entry in body.errors]
    details: list[str] = field_errors
    cls: type[ConnectorError] = error_class_for_status(status)

    if status == 400 and any(_UNKNOWN_SKU.search(t) for t in (text, *field_errors)):
        cls = UnknownSku
    elif status == 409 and operation == "create_order":
        cls = OrderAlreadyExists
    elif status == 422 and (body.orderProblems or _NOT_COMPLIANT.search(text)):
        cls = ComplianceRejected
        details = schemas.problem_texts(body.orderProblems) or field_errors

    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return build_error(
        cls,
        f"vinoshipper {operation}: HTTP {status}: {text}",
        status_code=status,
        details=details,
        retry_after=retry_after,
    )


def _field_error(entry: Any) -> str:
    if isinstance(entry, dict):
        field = entry.get("field")
        message = entry.get("message") or ""
        return f"{field}: {message}" if field else str(message)
    return str(entry)
