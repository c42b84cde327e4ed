"""AiohttpTransport: httpx's API on aiohttp's connection pool, for every connector's HTTP calls.

Why: httpx's own transport (httpcore) cost 1.2 ms of CPU a request at 64 connections on the
bench's machine, aiohttp's pool 0.2 ms (docs/benchmarks.md), and dispatch makes one call per
order. httpx stays the API (auth, timeouts, MockTransport in tests, its exception types), so
only the bytes on the wire change hands.

Why not the httpx-aiohttp package: it maps a read timeout and a dropped connection to
httpx.ConnectTimeout, which says "nothing was sent", and HttpTransport re-sends a POST on
that, so one slow provider answer could create an order twice. Here each aiohttp failure maps
to the httpx error that says truthfully whether the request may have left: only a failure
to connect (or to get a pooled connection in time) claims it did not.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import httpx


@contextmanager
def httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Raise aiohttp's failures as the httpx error with the same meaning for a retry."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # connect, or waiting for a pooled connection
        raise httpx.ConnectTimeout(str(exc) or "connect timed out", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, TLS handshake failed
        raise httpx.ConnectError(str(exc) or "connect failed", request=request) from exc
    except aiohttp.ServerTimeoutError as exc:  # sent, no answer within the read timeout
        raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:  # sent, the server closed without answering
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:  # a broken answer
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise httpx.UnsupportedProtocol(str(exc), request=request) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:  # reset mid-request
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except TimeoutError as exc:  # aiohttp's own deadline, whatever stage it hit
        raise httpx.ReadTimeout("timed out", request=request) from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport sending through one aiohttp ClientSession.

    The session keeps no cookies (httpx does, as before) and decompresses nothing (httpx
    decodes Content-Encoding); redirects are httpx's to follow. TLS verification uses httpx's
    default context (certifi, or SSL_CERT_FILE), as httpx's own transport did.
    """

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self._limits = limits
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 0,
            ssl=self._ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, raise_for_status=False
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open_session()
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        with httpx_errors(request):
            async with self._session.request(
                request.method,
                str(request.url),
                # as httpx built them: Host, Content-Length, auth, User-Agent, traceparent
                headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw],
                data=await request.aread() or None,
                allow_redirects=False,
                compress=False,
                timeout=timeout,
            ) as answer:
                body = await answer.read()
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            content=body,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (answer.reason or "").encode()},
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
