"""Async client of the carrier-mapping service, with a local cache and retries on UNAVAILABLE."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from libs.platform.grpc_server import insecure_channel

_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass(frozen=True)
class CodeQuery:
    """System `from_system`'s `code`, wanted in `to_system`."""

    from_system: str
    code: str
    to_system: str


@dataclass(frozen=True)
class Translation:
    """A translated code, or the reason there is none (`error`)."""

    code: str = ""
    name: str = ""
    carrier: str = ""
    canonical_service: str = ""
    error: str = ""

    @property
    def found(self) -> bool:
        return not self.error


class CarrierMappingUnavailable(Exception):
    """The service could not be reached after retries; callers should retry later."""


class CarrierMappingClient:
    """Translates codes in batches; answers repeated questions from a cache for `cache_ttl_s`."""

    def __init__(self, address: str, *, cache_ttl_s: float = 60.0, timeout_s: float = 2.0, attempts: int = 3):
        self._address = address
        self._cache_ttl_s = cache_ttl_s
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._cache: dict[tuple[str, CodeQuery], tuple[float, Translation]] = {}
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.CarrierMappingServiceStub | None = None

    async def start(self) -> None:
        if self._channel is None:
            self._channel = insecure_channel(self._address)
            self._stub = pb_grpc.CarrierMappingServiceStub(self._channel)

    async def stop(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def translate_many(self, tenant_id: str, queries: set[CodeQuery]) -> dict[CodeQuery, Translation]:
        """Return a translation (or its error) for each query; raise CarrierMappingUnavailable."""
        now = time.monotonic()
        answers, missing = {}, []
        for query in queries:
            cached = self._cache.get((tenant_id, query))
            if cached and cached[0] > now:
                answers[query] = cached[1]
            else:
                missing.append(query)
        if missing:
            fetched = await self._fetch(tenant_id, missing)
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
        response = await self._call_with_retries(request)
        return {query: _translation(result) for query, result in zip(queries, response.results, strict=True)}

    async def _call_with_retries(self, request: pb.BatchTranslateCodesRequest) -> pb.BatchTranslateCodesResponse:
        if self._stub is None:
            raise RuntimeError("CarrierMappingClient is not started")
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._stub.BatchTranslateCodes(request, timeout=self._timeout_s)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _RETRYABLE:
                    raise
                if attempt == self._attempts:
                    raise CarrierMappingUnavailable(f"carrier mapping unavailable: {exc.code().name}") from None
                await asyncio.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")


def _translation(result: pb.BatchTranslationResult) -> Translation:
    if result.error:
        return Translation(error=result.error)
    t = result.translation
    return Translation(code=t.code, name=t.name, carrier=t.carrier, canonical_service=t.canonical_service)
