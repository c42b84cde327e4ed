"""Shared connector contract: errors, HTTP transport, rate limiting, idempotency and issues."""

from .errors import (
    Conflict,
    ConnectorError,
    InvalidRequest,
    InvalidResponse,
    InvalidWebhook,
    NotFound,
    RateLimited,
    Rejected,
    Timeout,
    Unauthorized,
    Unavailable,
    redact,
)
from .http import (
    HttpTransport,
    RetryPolicy,
    default_timeout,
    json_body,
    json_object,
    parse_retry_after,
    path_segment,
)
from .idempotency import idempotency_key
from .issues import Issue
from .ratelimit import KeyedRateLimiter, RateLimiter, TokenBucket

__all__ = [
    "Conflict",
    "ConnectorError",
    "HttpTransport",
    "InvalidRequest",
    "InvalidResponse",
    "InvalidWebhook",
    "Issue",
    "KeyedRateLimiter",
    "RateLimiter",
    "NotFound",
    "RateLimited",
    "Rejected",
    "RetryPolicy",
    "Timeout",
    "TokenBucket",
    "Unauthorized",
    "Unavailable",
    "default_timeout",
    "idempotency_key",
    "json_body",
    "json_object",
    "parse_retry_after",
    "path_segment",
    "redact",
]
