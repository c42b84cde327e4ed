"""Connector errors: one class per outcome, each with a stable reason code and retryability."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import httpx

# Operators read these messages in dashboards and dispatch records, so they are capped: a vendor
# that echoes a whole payload into its error text must not leak it through us.
MAX_MESSAGE_CHARS = 300
MAX_DETAIL_CHARS = 200
MAX_DETAILS = 20

# Starts only at the beginning of a token, so a long run of letters is scanned once.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# North-American phone shapes (the hub's channels are US wineries), with optional +1 and
# separators; a 10-digit run is treated as a phone even if it was something else.
_PHONE = re.compile(r"(?<![\w-])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}(?![\w-])")
_BASIC_OR_BEARER = re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]+", re.IGNORECASE)


def redact(text: str, *, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Return `text` safe for an operator: e-mails, phone numbers and credentials masked, capped.

    Args:
        text: any text that may come from a vendor (error messages, problem lists).
        limit: maximum length; longer text is cut and ends with an ellipsis.

    Postal addresses cannot be recognised reliably, so connectors never build messages from
    addresses in the first place; this function is the second line of defence.
    """
    # Only a bounded prefix is examined: the result is cut to `limit` anyway, and regexes
    # over megabytes of vendor text would cost more than they protect.
    text = text[: limit * 4]
    text = _BASIC_OR_BEARER.sub(r"\1 [redacted]", text)
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[phone]", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


class ConnectorError(Exception):
    """Base of every error a connector raises.

    Class attributes (aiokafka style, so `except` and retry decisions need no instance):
        reason_code: stable UPPER_SNAKE code stored in dispatch and writeback records.
        retryable: True when the same call may succeed later without changes.

    Instance attributes:
        message: operator-safe text (redacted and capped; never credentials or payloads).
        status_code: the vendor's HTTP status, or None when no response arrived.
        details: operator-safe list, e.g. compliance problems or per-field validation errors.
    """

    reason_code: ClassVar[str] = "CONNECTOR_ERROR"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        details: Iterable[str] = (),
    ) -> None:
        self.message = redact(message)
        self.status_code = status_code
        self.details = [redact(d, limit=MAX_DETAIL_CHARS) for d in list(details)[:MAX_DETAILS]]
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.reason_code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(reason_code={self.reason_code!r}, message={self.message!r}, "
            f"status_code={self.status_code!r}, details={self.details!r})"
        )


class InvalidRequest(ConnectorError):
    """Our request was wrong (validation, bad input, unusable domain object); fix, don't retry."""

    reason_code = "INVALID_REQUEST"


class InvalidResponse(ConnectorError):
    """The vendor answered success with a body we cannot read (not JSON, wrong shape)."""

    reason_code = "INVALID_RESPONSE"


class InvalidWebhook(ConnectorError):
    """An inbound webhook body is malformed; answer 400 and do not process it."""

    reason_code = "MALFORMED_WEBHOOK"


class Unauthorized(ConnectorError):
    """Credentials (or the Commerce7 tenant header) were refused; an operator must act."""

    reason_code = "UNAUTHORIZED"


class NotFound(ConnectorError):
    """The addressed object does not exist at the vendor."""

    reason_code = "NOT_FOUND"


class Conflict(ConnectorError):
    """The vendor refused because of the object's current state, e.g. it already exists."""

    reason_code = "CONFLICT"


class Rejected(ConnectorError):
    """The vendor refused for business reasons (e.g. compliance); `details` says why."""

    reason_code = "PROVIDER_REJECTED"


class UnknownProduct(Rejected):
    """The provider has no product with a line's SKU (map the SKU, or sync the product); the
    message names the SKU. Not retryable until the mapping or the product exists."""

    reason_code = "UNKNOWN_SKU"


class RateLimited(ConnectorError):
    """The vendor throttled us; `retry_after` (seconds) is its hint, or None."""

    reason_code = "RATE_LIMITED"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 429,
        details: Iterable[str] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, details=details)
        self.retry_after = retry_after


class Unavailable(ConnectorError):
    """The vendor failed (5xx) or could not be reached; `retry_after` is its hint, or None."""

    reason_code = "PROVIDER_UNAVAILABLE"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        details: Iterable[str] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, details=details)
        self.retry_after = retry_after


class Timeout(ConnectorError):
    """No answer in time. For a non-idempotent call the vendor may still have acted on it."""

    reason_code = "PROVIDER_TIMEOUT"
    retryable = True


# The status table every connector starts from; a connector's errors.py refines it where the
# vendor's body says more (e.g. Vinoshipper 422 with compliance problems).
_STATUS_ERRORS: dict[int, type[ConnectorError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    429: RateLimited,
}


def error_class_for_status(status_code: int) -> type[ConnectorError]:
    """Return the default error class for an HTTP error status (>= 400).

    5xx maps to Unavailable; a 4xx not in the table maps to InvalidRequest.
    """
    if status_code >= 500:
        return Unavailable
    return _STATUS_ERRORS.get(status_code, InvalidRequest)


def build_error(
    cls: type[ConnectorError],
    message: str,
    *,
    status_code: int | None,
    details: Iterable[str] = (),
    retry_after: float | None = None,
) -> ConnectorError:
    """Instantiate `cls`, passing `retry_after` only to the classes that carry it."""
    if issubclass(cls, (RateLimited, Unavailable)):
        factory: Callable[..., ConnectorError] = cls
        return factory(message, status_code=status_code, details=details, retry_after=retry_after)
    return cls(message, status_code=status_code, details=details)


def error_body(response: httpx.Response) -> dict[str, Any]:
    """Return an error response's JSON object, or {} when the body is not a JSON object."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
