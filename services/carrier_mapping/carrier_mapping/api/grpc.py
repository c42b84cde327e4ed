"""CarrierMappingService: proto queries -> CodeTable lookups; domain errors -> gRPC status codes."""

from __future__ import annotations

import asyncio

import grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from carrier_mapping.domain.translate import CodeTable, NoMapping, Translation, TranslationError
from carrier_mapping.storage.codes import CodeTableSnapshot

MAX_BATCH = 10_000
# Translating 10,000 queries takes tens of milliseconds. Working in chunks and yielding to the
# event loop between them keeps other calls moving, and a call whose deadline has passed (grpc
# aio cancels its handler) stops at the next yield instead of finishing work nobody will read.
_CHUNK = 1_000


class CarrierMappingServicer(pb_grpc.CarrierMappingServiceServicer):
    """Answers translations from the current table of `codes`; never waits on Postgres."""

    def __init__(self, codes: CodeTableSnapshot):
        self._codes = codes
        self._messages = _MessageCache()

    async def TranslateCode(
        self, request: pb.TranslateCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TranslateCodeResponse:
        """Translate one query.

        Aborts with INVALID_ARGUMENT when a field is empty or a system unknown, and NOT_FOUND
        when no mapping exists; each message names the field, or the tenant, system and code.
        """
        table, q = self._codes.table, request.query
        try:
            found = table.translate(request.tenant_id, q.from_system, q.code, q.to_system)
        except TranslationError as exc:
            await context.abort(_status_of(exc), str(exc))
        return pb.TranslateCodeResponse(translation=self._messages.get(table, found))

    async def BatchTranslateCodes(
        self, request: pb.BatchTranslateCodesRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchTranslateCodesResponse:
        """Translate each query, in order; a query without an answer gets an `error` string.

        Aborts with INVALID_ARGUMENT only when tenant_id is empty or there are more than
        MAX_BATCH queries.
        """
        tenant_id, queries = request.tenant_id, request.queries
        if not tenant_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "tenant_id is required")
        if len(queries) > MAX_BATCH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"queries holds {len(queries)} items; at most {MAX_BATCH} are allowed",
            )
        # One table for the whole batch, even if a refresh lands while it yields.
        table = self._codes.table
        response = pb.BatchTranslateCodesResponse()
        for start in range(0, len(queries), _CHUNK):
            if start:
                await asyncio.sleep(0)
            chunk = queries[start : start + _CHUNK]
            self._translate_chunk(table, tenant_id, chunk, response.results)
        return response

    def _translate_chunk(self, table: CodeTable, tenant_id: str, queries, results) -> None:
        add, message_for = results.add, self._messages.get
        for query in queries:
            try:
                found = table.translate(tenant_id, query.from_system, query.code, query.to_system)
            except TranslationError as exc:
                add(query=query, error=str(exc))
            else:
                add(query=query, translation=message_for(table, found))


def _status_of(exc: TranslationError) -> grpc.StatusCode:
    if isinstance(exc, NoMapping):
        return grpc.StatusCode.NOT_FOUND
    return grpc.StatusCode.INVALID_ARGUMENT


class _MessageCache:
    """The CodeTranslation message of each answer of the current table, built on first use.

    Building messages costs more than the lookups. A table has few answers (two per code) and
    returns the same Translation object every time, so a dict keyed by identity serves; it is
    emptied when another table shows up, so it never outgrows one table. Protobuf copies a
    cached message into each response, so the cached one is never exposed or changed.
    """

    def __init__(self):
        self._table: CodeTable | None = None
        self._messages: dict[Translation, pb.CodeTranslation] = {}

    def get(self, table: CodeTable, found: Translation) -> pb.CodeTranslation:
        if table is not self._table:
            self._table, self._messages = table, {}
        message = self._messages.get(found)
        if message is None:
            message = self._messages[found] = _to_message(found)
        return message


def _to_message(found: Translation) -> pb.CodeTranslation:
    code = found.code
    return pb.CodeTranslation(
        code=code.code,
        name=code.name,
        carrier=code.carrier,
        canonical_carrier=code.canonical_carrier,
        canonical_service=code.canonical_service,
        tenant_override=found.tenant_override,
    )
