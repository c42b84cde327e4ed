"""Async client of the carrier-mapping service: a local cache kept fresh by the service's change
stream, deadlines on every call, and retries on UNAVAILABLE.

    client = CarrierMappingClient("carrier-mapping:50055", token=token)
    async with client:
        answer = await client.translate_one("acme", "vinoshipper", "03", "commerce7")
        if answer.found: ...

The cache answers only while the client is subscribed to WatchChanges: a change of a tenant's
mappings drops that tenant's cached answers, and losing the stream drops all of them, so an
answer is never served from the cache after the service has announced it changed. Callers that
hold work waiting for a mapping (writeback's blocked writes) subscribe to the same news with
`on_change`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from libs.platform.auth import bearer
from libs.platform.config import GrpcClientTls
from libs.platform.grpc_server import client_channel

log = logging.getLogger(__name__)

# Translation is idempotent, so a lost answer may be asked again.
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_NOT_FOUND = "NOT_FOUND"
_INVALID = "INVALID_ARGUMENT"
_ITEM_STATUS = {pb.TRANSLATION_STATUS_NOT_FOUND: _NOT_FOUND, pb.TRANSLATION_STATUS_INVALID_ARGUMENT: _INVALID}
_WATCH_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class CodeQuery:
    """System `from_system`'s `code`, wanted in `to_system`."""

    from_system: str
    code: str
    to_system: str


@dataclass(frozen=True)
class Translation:
    """A translated code, or the reason there is none (`error`, with `status` NOT_FOUND or
    INVALID_ARGUMENT)."""

    code: str = ""
    name: str = ""
    carrier: str = ""
    canonical_service: str = ""
    canonical_carrier: str = ""
    tenant_override: bool = False
    error: str = ""
    status: str = "OK"

    @property
    def found(self) -> bool:
        return not self.error


class CarrierMappingUnavailable(Exception):
    """The service could not be reached after retries; callers should retry later."""


class CarrierMappingClient:
    """Translates codes one at a time or in batches, answering repeats from a cache.

    `token` is sent as `authorization: Bearer <token>`; `tls` (CA and optional client certificate
    files) makes the channel TLS, else it is plaintext. Each attempt has `timeout_s` as its
    deadline; UNAVAILABLE and DEADLINE_EXCEEDED are retried `attempts` times in all, then raise
    CarrierMappingUnavailable. Other failures (UNAUTHENTICATED, PERMISSION_DENIED, ...) raise
    grpc.aio.AioRpcError. With `watch` false, or while the change stream is down, nothing is
    served from the cache. start()/stop() it, or use it as an async context manager.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        timeout_s: float = 2.0,
        attempts: int = 3,
        cache_ttl_s: float = 300.0,
        watch: bool = True,
        tls: GrpcClientTls | None = None,
    ):
        self._address = address
        self._metadata = bearer(token)
        self._tls = tls
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._cache_ttl_s = cache_ttl_s
        self._watch = watch
        self._cache: dict[tuple[str, CodeQuery], tuple[float, Translation]] = {}
        # Bumped on every invalidation: an answer fetched across one is not cached, since it
        # may predate the change.
        self._generation = 0
        self._watching = False
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.CarrierMappingServiceStub | None = None
        self._watch_task: asyncio.Task | None = None
        self.synced = asyncio.Event()  # set while the change stream is live (tests wait on it)
        self._listeners: list[Callable[[str | None], None]] = []

    def on_change(self, listener: Callable[[str | None], None]) -> None:
        """Call `listener(tenant_id)` when a tenant's mappings change, and `listener(None)` when
        the change stream (re)connects, as changes may have been missed meanwhile. It runs in
        the stream's task: it must return at once (set a flag, wake a worker)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        if self._channel is not None:
            return
        self._channel = client_channel(self._address, self._tls)
        self._stub = pb_grpc.CarrierMappingServiceStub(self._channel)
        if self._watch:
            self._watch_task = asyncio.create_task(self._watch_forever(), name="carrier-mapping-watch")

    async def stop(self) -> None:
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._forget_all()
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def __aenter__(self) -> CarrierMappingClient:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def __del__(self, _warn=warnings.warn) -> None:
        task = getattr(self, "_watch_task", None)
        if task is not None and not task.done():
            _warn(f"CarrierMappingClient was not stopped: {self!r}", ResourceWarning, source=self)

    # ---- translating -----------------------------------------------------------------------

    async def translate_one(self, tenant_id: str, from_system: str, code: str, to_system: str) -> Translation:
        """Return `from_system`'s `code` in `to_system` for the tenant; `.found` is false (with
        `.error` and `.status`) when there is no mapping or the query is invalid.

        Raises CarrierMappingUnavailable after retries, grpc.aio.AioRpcError for other failures.
        """
        query = CodeQuery(from_system, code, to_system)
        return (await self.translate_many(tenant_id, {query}))[query]

    async def translate_many(self, tenant_id: str, queries: Iterable[CodeQuery]) -> dict[CodeQuery, Translation]:
        """Return a translation (or its error) for each query, in one call for the uncached ones.

        Raises CarrierMappingUnavailable after retries, grpc.aio.AioRpcError for other failures.
        """
        now = time.monotonic()
        answers, missing = {}, []
        for query in queries:
            cached = self._cache.get((tenant_id, query)) if self._watching else None
            if cached is not None and cached[0] > now:
                answers[query] = cached[1]
            else:
                missing.append(query)
        if missing:
            generation = self._generation
            fetched = await self._fetch(tenant_id, missing)
            if self._watching and generation == self._generation:
                expires = time.monotonic() + self._cache_ttl_s
                for query, translation in fetched.items():
                    self._cache[(tenant_id, query)] = (expires, translation)
            answers.update(fetched)
        return answers

    async def _fetch(self, tenant_id: str, queries: list[CodeQuery]) -> dict[CodeQuery, Translation]:
        request = pb.BatchTranslateCodesRequest(
            tenant_id=tenant_id,
            queries=[pb.CodeQuery(from_system=q.from_system, code=q.code, to_system=q.to_system) for q in queries],
        )
        response = await self._call_with_retries(self._started().BatchTranslateCodes, request)
        return {query: _translation(result) for query, result in zip(queries, response.results, strict=True)}

    async def _call_with_retries(self, method, request):
        for attempt in range(1, self._attempts + 1):
            try:
                return await method(request, timeout=self._timeout_s, metadata=self._metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RETRYABLE:
                    raise
                if attempt == self._attempts:
                    raise CarrierMappingUnavailable(
                        f"carrier mapping at {self._address} unavailable after {attempt} attempts: "
                        f"{exc.code().name}: {exc.details()}"
                    ) from None
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def _started(self) -> pb_grpc.CarrierMappingServiceStub:
        if self._stub is None:
            raise RuntimeError("CarrierMappingClient is not started")
        return self._stub

    # ---- keeping the cache fresh -----------------------------------------------------------

    async def _watch_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._watch_once()
                failures = 0  # the stream ended cleanly (server stopping): reconnect promptly
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                failures += 1
                if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    log.error("carrier mapping refused the change stream: %s", exc.details())
            except Exception:
                failures += 1
                log.exception("carrier mapping change stream failed")
            finally:
                self._watching = False
                self.synced.clear()
                self._forget_all()
            await asyncio.sleep(_WATCH_BACKOFF_S[min(failures, len(_WATCH_BACKOFF_S) - 1)])

    async def _watch_once(self) -> None:
        stream = self._started().WatchChanges(pb.WatchChangesRequest(), metadata=self._metadata)
        try:
            async for change in stream:
                if change.resync:
                    self._forget_all()
                    self._watching = True
                    self.synced.set()
                else:
                    self._forget_tenant(change.tenant_id)
                self._tell_listeners(None if change.resync else change.tenant_id)
        finally:
            stream.cancel()

    def _tell_listeners(self, tenant_id: str | None) -> None:
        for listener in self._listeners:
            try:
                listener(tenant_id)
            except Exception:  # a listener's bug must not take the cache's freshness down with it
                log.exception("carrier mapping change listener failed")

    def _forget_all(self) -> None:
        self._generation += 1
        self._cache.clear()

    def _forget_tenant(self, tenant_id: str) -> None:
        self._generation += 1
        for key in [key for key in self._cache if key[0] == tenant_id]:
            del self._cache[key]


def _translation(result: pb.BatchTranslationResult) -> Translation:
    if result.error:
        return Translation(error=result.error, status=_ITEM_STATUS.get(result.status, _NOT_FOUND))
    t = result.translation
    return Translation(
        code=t.code,
        name=t.name,
        carrier=t.carrier,
        canonical_service=t.canonical_service,
        canonical_carrier=t.canonical_carrier,
        tenant_override=t.tenant_override,
    )
