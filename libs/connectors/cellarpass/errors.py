"""CellarPass error answers -> ConnectorError (stand-in bodies: `{"code", "message"}`, ours)."""

from __future__ import annotations

import httpx

from ..base.errors import ConnectorError, Unauthorized, build_error, error_body, error_class_for_status
from ..base.http import parse_retry_after


class IntegrationDisabled(Unauthorized):
    """The key is right but CellarPass has not enabled the VinSuite integration for the account
    (HTTP 403): only CellarPass support can turn it on."""

    reason_code = "ACCOUNT_INACTIVE"


def error_from_response(response: httpx.Response, operation: str, *, subject: str = "") -> ConnectorError:
    """Map an HTTP error answer (status >= 400) to a ConnectorError.

    401 Unauthorized, 403 IntegrationDisabled, 404 NotFound, 409 Conflict, 400/422
    InvalidRequest, 429 RateLimited and 5xx Unavailable (with Retry-After). `subject` names what
    the call was about (e.g. "reservation R-1"), so an operator knows which one.
    """
    status = response.status_code
    body = error_body(response)
    message = body.get("message")
    text = message if isinstance(message, str) and message else response.reason_phrase or "error"
    about = f" {subject}" if subject else ""
    cls = IntegrationDisabled if status == 403 else error_class_for_status(status)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return build_error(
        cls, f"cellarpass {operation}{about}: HTTP {status}: {text}", status_code=status, retry_after=retry_after
    )
