"""What every webhook endpoint shares: typed, bounded bodies, JSON for every refusal, storable text.

The rules, the same for every channel and provider webhook:
- a body is `application/json`, optionally with `charset=utf-8` (any other media type or
  charset: 415 UNSUPPORTED_MEDIA_TYPE);
- a body is at most the endpoint's limit (413 PAYLOAD_TOO_LARGE); the first `limit` bytes are
  still read, so the refusal can be kept with the head of what was sent;
- every answer is JSON `{"error", "message", ...}`, also for aiohttp's own refusals (unknown
  route, wrong method) and for an unexpected exception (500 INTERNAL, logged);
- 5xx only where trying again can succeed.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/json"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_REASONS = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class RefusedBody(Exception):
    """A body refused before parsing; `head` is what was read of it (at most the limit)."""

    def __init__(self, status: int, code: str, message: str, head: bytes):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.head = head


def json_error(status: int, code: str, message: str, *, headers=None, **extra) -> web.Response:
    """Return the JSON refusal every webhook endpoint answers: `{"error", "message", **extra}`."""
    return web.json_response({"error": code, "message": message, **extra}, status=status, headers=headers)


async def read_json_body(request: web.Request, max_bytes: int) -> bytes:
    """Return the request's body after checking its media type and size.

    Reads at most `max_bytes + 1` bytes, whatever Content-Length claims, so an oversized body
    costs no more memory than an accepted one.

    Raises:
        RefusedBody: 415 when the Content-Type is not application/json (with an optional
            charset=utf-8), 413 when the body is longer than `max_bytes`; `head` holds what
            was read (the whole body for 415 when it fits).
    """
    head, complete = await _read_bounded(request, max_bytes)
    media_problem = _media_type_problem(request)
    if media_problem is not None:
        raise RefusedBody(415, "UNSUPPORTED_MEDIA_TYPE", media_problem, head)
    if not complete:
        declared = request.content_length
        size = f"{declared} bytes" if declared is not None and declared > max_bytes else "longer"
        raise RefusedBody(
            413,
            "PAYLOAD_TOO_LARGE",
            f"the body is {size}; the limit is {max_bytes} bytes (the first {max_bytes} bytes are kept)",
            head,
        )
    return head


async def read_bounded_body(request: web.Request, max_bytes: int) -> bytes:
    """Return the request's body, whatever its media type, for endpoints taking other than JSON
    (e.g. XML a provider posts).

    Raises:
        RefusedBody: 413 when the body is longer than `max_bytes`; `head` holds its first bytes.
    """
    head, complete = await _read_bounded(request, max_bytes)
    if not complete:
        message = f"the body is longer than the limit of {max_bytes} bytes (the first {max_bytes} bytes are kept)"
        raise RefusedBody(413, "PAYLOAD_TOO_LARGE", message, head)
    return head


async def _read_bounded(request: web.Request, max_bytes: int) -> tuple[bytes, bool]:
    # aiohttp's own limit (client_max_size) answers a plain-text 413 and drops what it read,
    # so the body is read here, up to one byte past the limit.
    head = bytearray()
    while len(head) <= max_bytes:
        chunk = await request.content.read(max_bytes + 1 - len(head))
        if not chunk:
            return bytes(head), True
        head += chunk
    return bytes(head[:max_bytes]), False


def _media_type_problem(request: web.Request) -> str | None:
    if "Content-Type" not in request.headers:
        return f"the request has no Content-Type; send {MEDIA_TYPE}"
    if request.content_type != MEDIA_TYPE:
        return f"Content-Type {storable_text(request.content_type)[:60]!r} is not {MEDIA_TYPE}"
    charset = request.charset
    if charset is not None and charset.lower() not in ("utf-8", "utf8"):
        return f"charset {storable_text(charset)[:30]!r} is not utf-8"
    return None


def storable_text(text: str) -> str:
    """Return `text` fit for a PostgreSQL text column: NUL and lone surrogates become U+FFFD.

    For what ordersync writes about a body it keeps (the detail of a receipt), which may quote
    pieces of hostile input; the body itself is kept as bytes, unchanged.
    """
    return _UNSTORABLE.sub("\ufffd", text)


@web.middleware
async def json_errors_middleware(request: web.Request, handler):
    """Answer aiohttp's own refusals and unexpected exceptions as JSON, like every other answer."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _REASONS.get(exc.status, "HTTP_ERROR")
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_error(exc.status, code, exc.reason or code, headers=allow)
    except Exception:
        log.exception("webhook handler failed", extra={"fields": {"route": _route(request)}})
        return json_error(500, "INTERNAL", "unexpected error while handling the webhook; send it again later")


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"
