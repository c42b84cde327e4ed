"""Mintsoft error answers -> ConnectorError, and the refusals a create row can carry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

from ..base.errors import (
    ConnectorError,
    Rejected,
    Unauthorized,
    UnknownProduct,
    build_error,
    error_body,
    error_class_for_status,
)
from ..base.http import parse_retry_after

__all__ = ["OrderRejected", "error_from_response", "is_duplicate", "refusal", "unknown_sku"]

# Mintsoft's exact wording is not published (UNVERIFIED); these match the simulator's messages
# and the phrasing reported by users ("Order with OrderNumber X already exists").
_DUPLICATE = re.compile(r"already exists|duplicate", re.IGNORECASE)
_UNKNOWN_SKU = re.compile(
    r"\bsku\b.*\b(not found|does not exist|unknown|invalid|not recognised|not recognized)\b"
    r"|\b(unknown|invalid)\s+(product|sku)\b",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"['\"]([^'\"]{1,60})['\"]")


class OrderRejected(Rejected):
    """Mintsoft refused to create the order; the message is Mintsoft's."""

    reason_code = "PROVIDER_REJECTED"


def message_of(body: Any) -> str:
    """The human text of a Mintsoft answer: `Message` (ASP.NET and toolkit results) or a bare string."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("Message", "message", "ExceptionMessage", "WarningMessage"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def is_duplicate(message: str) -> bool:
    """True when a refusal says the OrderNumber or ExternalOrderReference is taken."""
    return bool(_DUPLICATE.search(message))


def unknown_sku(message: str, skus: Sequence[str]) -> str | None:
    """The SKU a refusal says Mintsoft does not know, or None when it says something else.

    The SKU is the first of the submitted ones the message names, else the first quoted word.
    """
    if not _UNKNOWN_SKU.search(message):
        return None
    named = [sku for sku in skus if sku and sku in message]
    if named:
        return max(named, key=len)  # "AB-1" inside "AB-12": the longest match is the one meant
    quoted = _QUOTED.search(message)
    return quoted.group(1) if quoted else "(not named by Mintsoft)"


def refusal(order_number: str, message: str, skus: Sequence[str]) -> ConnectorError:
    """The error for a create row Mintsoft answered `Success: false` (not a duplicate)."""
    sku = unknown_sku(message, skus)
    if sku is not None:
        return UnknownProduct(f"Mintsoft has no product with SKU {sku} (order {order_number}): {message}")
    return OrderRejected(f"Mintsoft refused order {order_number}: {message or 'no reason given'}")


def error_from_response(response: httpx.Response, operation: str) -> ConnectorError:
    """Map a Mintsoft error answer (status >= 400) to a ConnectorError.

    401/403 Unauthorized (the client re-authenticates once on 401 before it gets here); 404
    NotFound; 429 RateLimited and 5xx Unavailable, with Retry-After; other 4xx InvalidRequest
    with Mintsoft's `Message`.
    """
    status = response.status_code
    text = message_of(error_body(response)) or message_of(_json_or_none(response)) or response.reason_phrase
    cls: type[ConnectorError] = error_class_for_status(status)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return build_error(cls, f"mintsoft {operation}: HTTP {status}: {text}", status_code=status, retry_after=retry_after)


def auth_refused(status: int) -> Unauthorized:
    return Unauthorized(f"mintsoft auth: HTTP {status}: the username or password was refused", status_code=status)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
