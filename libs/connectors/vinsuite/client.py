"""VinSuite HTTP client: the JSON transport of the web service, its auth envelope and errors.

Every method is `POST {base_url}/EWSWebServices.asmx/<Method>` with a JSON body
`{"request": {...}}` (the asmx service's JSON alternative to SOAP, POST only). Each request
carries `WineryID` and the partner's credentials; each answer carries `PrimaryAuthInfo`, whose
`Type` "INVALID" means the credentials were refused, with a `FailureReason`. A method's own
failure is `Success: false` with an `ErrorMessage`.

Ours (the reference does not spell them, see the README): the credentials travel as
`Security: {Username, Password}` inside the request, and the answer is ASP.NET's JSON shape
`{"d": {...}}` (a bare object is read too).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import httpx

from ..base.errors import ConnectorError, InvalidResponse, Rejected, Unauthorized, build_error, error_class_for_status
from ..base.http import (
    ConnectorClient,
    HttpTransport,
    RetryPolicy,
    Sleep,
    default_timeout,
    json_body,
    parse_retry_after,
)
from ..base.ratelimit import KeyedRateLimiter, Priority, RateLimiter

CONNECTOR = "vinsuite"
SERVICE_PATH = "EWSWebServices.asmx"
BURST = 5
INVALID = "INVALID"


@dataclass(frozen=True, slots=True)
class VinSuiteApi:
    """Where and as whom the client calls: the service root, the winery and the partner login.

    The login (`username`, `password`) is hidden from repr and never logged.
    """

    base_url: str
    winery_id: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    _: KW_ONLY
    requests_per_minute: int = 60
    timeout_s: float = 30.0
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        if not self.base_url.endswith("/"):
            # httpx joins relative paths under the base only when it ends in "/".
            object.__setattr__(self, "base_url", self.base_url + "/")


class NotAuthorized(Unauthorized):
    """VinSuite answered `PrimaryAuthInfo.Type` INVALID; `failure_reason` is its sentence."""

    def __init__(self, message: str, *, failure_reason: str, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.failure_reason = failure_reason


class MethodFailed(Rejected):
    """VinSuite answered `Success: false`; the message carries its `ErrorMessage`."""

    reason_code = "PROVIDER_REJECTED"


def rate_limit_key(api: VinSuiteApi) -> str:
    """The budget's key: a digest of the winery and login, so no name appears in rate tables."""
    who = f"{api.base_url}|{api.winery_id}|{api.username}"
    return "winery-" + hashlib.sha256(who.encode()).hexdigest()[:24]


class VinSuiteClient(ConnectorClient):
    """Async client for one winery's web-service account. Use `async with` or start()/stop().

    Args:
        api: the account's service root and credentials.
        transport: httpx transport instead of the network (tests: httpx.MockTransport).
        rate_limiter: limiter keyed by `rate_limit_key(api)`; by default its own at
            `api.requests_per_minute`.
        retry: retry policy; default 4 attempts.
        sleep: backoff sleep, injectable for tests.
    """

    def __init__(
        self,
        api: VinSuiteApi,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.api = api
        limiter = rate_limiter or KeyedRateLimiter(api.requests_per_minute, burst=BURST, sleep=sleep)
        self._http = HttpTransport(
            connector=CONNECTOR,
            base_url=api.base_url,
            timeout=default_timeout(api.timeout_s),
            limits=httpx.Limits(max_connections=api.max_concurrency),
            max_concurrency=api.max_concurrency,
            retry=retry,
            rate_limiter=limiter,
            rate_limit_key=rate_limit_key(api),
            transport=transport,
            sleep=sleep,
        )

    async def call(
        self, method: str, request: Mapping[str, Any] | None = None, *, creates: bool = False
    ) -> dict[str, Any]:
        """Call one web-service method; return its answer object (inside `d`).

        `creates` marks a method that creates something and has no upsert (AddOrder,
        AddOrderNote): it is never repeated here once the request left (a read timeout, a 5xx),
        since the outcome is unknown; the caller looks it up before sending again. Every other
        method reads, or matches on a key (AddUpdateMember on e-mail), so repeating is safe.

        Raises:
            NotAuthorized: `PrimaryAuthInfo.Type` INVALID (the credentials or account).
            MethodFailed: `Success: false`.
            RateLimited, Unavailable, Timeout: 429, 5xx, no answer.
            InvalidResponse: an answer that is not the envelope.
        """
        body = {
            "request": {
                "WineryID": self.api.winery_id,
                "Security": {"Username": self.api.username, "Password": self.api.password},
                **dict(request or {}),
            }
        }
        response = await self._http.request(
            "POST",
            f"{SERVICE_PATH}/{method}",
            json=body,
            operation=method,
            retry_unsafe=not creates,
            priority=Priority.WRITE if creates else Priority.READ,
        )
        if not response.is_success:
            raise _http_error(response, method)
        return read_answer(response, method)


def read_answer(response: httpx.Response, method: str) -> dict[str, Any]:
    """The answer object of a 2xx response, after the auth and Success checks."""
    label = f"{CONNECTOR} {method}"
    decoded = json_body(response, label=label)
    answer = decoded.get("d", decoded) if isinstance(decoded, dict) else decoded
    if not isinstance(answer, dict):
        raise InvalidResponse(f"{label}: the answer is not an object", status_code=response.status_code)
    auth = answer.get("PrimaryAuthInfo")
    if isinstance(auth, dict) and str(auth.get("Type", "")).upper() == INVALID:
        reason = str(auth.get("FailureReason") or "no reason given")
        raise NotAuthorized(
            f"{label}: VinSuite refused the web-service login: {reason}",
            failure_reason=reason,
            status_code=response.status_code,
        )
    if answer.get("Success") is False:
        message = str(answer.get("ErrorMessage") or "no reason given")
        raise MethodFailed(f"{label}: VinSuite refused: {message}", status_code=response.status_code)
    return answer


def _http_error(response: httpx.Response, method: str) -> ConnectorError:
    """An HTTP error status (4xx other than 429; 429 and 5xx were raised by the transport)."""
    status = response.status_code
    # A 4xx may still be the envelope (a refused login answered 400 or 401): read it first, so
    # an operator sees VinSuite's reason rather than a bare status.
    try:
        read_answer(response, method)
    except (NotAuthorized, MethodFailed) as exc:
        return exc
    except ConnectorError:
        pass
    cls = error_class_for_status(status)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return build_error(cls, f"{CONNECTOR} {method}: HTTP {status}", status_code=status, retry_after=retry_after)
