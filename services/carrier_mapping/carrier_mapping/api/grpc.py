"""CarrierMappingService: proto <-> domain, callers checked, domain errors -> gRPC status codes.

Authorization happens here, not in a server interceptor: an aio interceptor wraps every handler
in extra coroutines and measurably slows the unary path (see docs/benchmarks.md), while reading
one metadata key and one dict lookup costs about a microsecond.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

import grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from carrier_mapping.domain.mappings import ImportLine, InvalidMapping, MappingConflict, check_import, check_mapping
from carrier_mapping.domain.translate import CodeTable, NoMapping, ServiceCode, Translation, TranslationError
from carrier_mapping.storage.codes import CodeTableSnapshot
from carrier_mapping.storage.mappings import (
    ImportRejected,
    MappingExists,
    MappingMissing,
    MappingStore,
    decode_page_token,
    encode_page_token,
)
from libs.platform import metrics
from libs.platform.auth import Caller, CallerDirectory, GrpcAccess, PermissionDenied, Unauthenticated
from libs.platform.grpc_server import abort

# One counter increment per call (the children bound once here): the look-up path stays lock-free
# apart from the counter's own.
_TRANSLATE_ONE = metrics.CARRIER_TRANSLATIONS.labels("TranslateCode")
_TRANSLATE_BATCH = metrics.CARRIER_TRANSLATIONS.labels("BatchTranslateCodes")

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
MAX_IMPORT = 10_000
DEFAULT_PAGE = 200
MAX_PAGE = 1_000
# Translating 10,000 queries takes tens of milliseconds. Working in chunks and yielding to the
# event loop between them keeps other calls moving, and a call whose deadline has passed stops
# at the next chunk instead of finishing work nobody will read.
_CHUNK = 1_000
_OK = pb.TRANSLATION_STATUS_OK
_STATUS: dict[type[TranslationError], pb.TranslationStatus] = {NoMapping: pb.TRANSLATION_STATUS_NOT_FOUND}
_INVALID = pb.TRANSLATION_STATUS_INVALID_ARGUMENT


class CarrierMappingServicer(pb_grpc.CarrierMappingServiceServicer):
    """Answers translations from the current table of `codes` (never waiting on Postgres) and
    writes tenant mappings through `store`, for the callers in `callers`."""

    def __init__(self, codes: CodeTableSnapshot, store: MappingStore, callers: CallerDirectory):
        self._codes = codes
        self._store = store
        self._access = GrpcAccess(callers)
        self._messages = _MessageCache()

    # ---- translation -----------------------------------------------------------------------

    async def TranslateCode(
        self, request: pb.TranslateCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TranslateCodeResponse:
        """Translate one query.

        Aborts with UNAUTHENTICATED / PERMISSION_DENIED per the caller, DEADLINE_EXCEEDED when the
        deadline has already passed, INVALID_ARGUMENT when a field is empty or a system unknown,
        and NOT_FOUND when no mapping exists; each message names the field, or tenant, system and code.
        """
        tenant_id = request.tenant_id
        denial = self._read_denial(context, tenant_id)
        if denial is not None:
            await context.abort(*denial)
        table, q = self._codes.table, request.query
        try:
            found = table.translate(tenant_id, q.from_system, q.code, q.to_system)
        except TranslationError as exc:
            await context.abort(_status_of(exc), str(exc))
        _TRANSLATE_ONE.inc()
        return pb.TranslateCodeResponse(translation=self._messages.get(table, found))

    async def BatchTranslateCodes(
        self, request: pb.BatchTranslateCodesRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchTranslateCodesResponse:
        """Translate each query, in order; a query without an answer gets `status` and `error`.

        Aborts as TranslateCode for the caller and deadline, and with INVALID_ARGUMENT only when
        tenant_id is empty or there are more than MAX_BATCH queries.
        """
        tenant_id, queries = request.tenant_id, request.queries
        denial = self._read_denial(context, tenant_id)
        if denial is not None:
            await context.abort(*denial)
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
                await _abort_if_expired(context)
            chunk = queries[start : start + _CHUNK]
            self._translate_chunk(table, tenant_id, chunk, response.results)
        _TRANSLATE_BATCH.inc(len(queries))
        return response

    def _translate_chunk(self, table: CodeTable, tenant_id: str, queries, results) -> None:
        add, message_for, translate = results.add, self._messages.get, table.translate
        for query in queries:
            try:
                found = translate(tenant_id, query.from_system, query.code, query.to_system)
            except TranslationError as exc:
                add(query=query, error=str(exc), status=_STATUS.get(type(exc), _INVALID))
            else:
                add(query=query, translation=message_for(table, found), status=_OK)

    # ---- catalog and tenant mappings -------------------------------------------------------

    async def ListCatalog(self, request: pb.ListCatalogRequest, context) -> pb.ListCatalogResponse:
        """One page of a system's catalog from the current table, with the tenant's rows if asked."""
        caller = await self._caller_or_abort(context)
        if request.tenant_id:
            await _check(context, caller.require_read, request.tenant_id)
        table = self._codes.table
        if request.system not in table.systems:
            known = ", ".join(sorted(table.systems))
            await _invalid(context, f"unknown system {request.system!r}; known: {known}")
        page_size = await _page_size(context, request.page_size)
        after = await _page_key(context, request.page_token)
        rows = [r for r in table.rows_of(request.system, request.tenant_id) if (r.code, r.tenant_id) > after]
        page = rows[:page_size]
        token = encode_page_token(page[-1].code, page[-1].tenant_id) if len(rows) > page_size else ""
        return pb.ListCatalogResponse(entries=[_mapping_message(r) for r in page], next_page_token=token)

    async def CreateMapping(self, request: pb.CreateMappingRequest, context) -> pb.CreateMappingResponse:
        """Validate, check the caller may write the tenant, and store a new mapping."""
        code = await self._writable_code(context, request.tenant_id, request.mapping)
        version = await self._stored(context, self._store.create(code))
        return pb.CreateMappingResponse(mapping=_mapping_message(code), version=version)

    async def UpdateMapping(self, request: pb.UpdateMappingRequest, context) -> pb.UpdateMappingResponse:
        """Validate, check the caller may write the tenant, and replace a stored mapping."""
        code = await self._writable_code(context, request.tenant_id, request.mapping)
        version = await self._stored(context, self._store.update(code))
        return pb.UpdateMappingResponse(mapping=_mapping_message(code), version=version)

    async def DeleteMapping(self, request: pb.DeleteMappingRequest, context) -> pb.DeleteMappingResponse:
        """Remove a tenant's mapping of one code."""
        caller = await self._caller_or_abort(context)
        for field in ("tenant_id", "system", "code"):
            if not getattr(request, field):
                await _invalid(context, f"{field} is required")
        await _check(context, caller.require_write, request.tenant_id)
        version = await self._stored(context, self._store.delete(request.tenant_id, request.system, request.code))
        return pb.DeleteMappingResponse(version=version)

    async def ListMappings(self, request: pb.ListMappingsRequest, context) -> pb.ListMappingsResponse:
        """One page of a tenant's own mappings, read from Postgres (what is stored, not cached)."""
        caller = await self._caller_or_abort(context)
        if not request.tenant_id:
            await _invalid(context, "tenant_id is required")
        await _check(context, caller.require_read, request.tenant_id)
        page_size = await _page_size(context, request.page_size)
        try:
            codes, token = await self._store.list(request.tenant_id, request.system, request.page_token, page_size)
        except ValueError as exc:
            await _invalid(context, str(exc))
        return pb.ListMappingsResponse(mappings=[_mapping_message(c) for c in codes], next_page_token=token)

    async def ImportMappings(self, request: pb.ImportMappingsRequest, context) -> pb.ImportMappingsResponse:
        """Check every row, then apply all of them in one transaction, or none.

        INVALID_ARGUMENT lists every bad row by line; PERMISSION_DENIED names the tenants the
        caller may not write.
        """
        caller = await self._caller_or_abort(context)
        if not request.rows:
            await _invalid(context, "rows is empty: nothing to import")
        if len(request.rows) > MAX_IMPORT:
            await _invalid(context, f"rows holds {len(request.rows)} items; at most {MAX_IMPORT} are allowed")
        lines = [ImportLine(row.line, _code_of(row.tenant_id, row.mapping)) for row in request.rows]
        denied = sorted({line.code.tenant_id for line in lines if line.code.tenant_id and not _may_write(caller, line)})
        if denied:
            names = ", ".join(repr(t) for t in denied)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"caller {caller.name!r} may not write tenants {names}"
            )
        problems = check_import(lines, self._codes.table.systems)
        if problems:
            await _invalid(context, f"{len(problems)} bad row(s), nothing imported: " + "; ".join(problems))
        created, updated, version = await self._stored(context, self._store.import_lines(lines))
        return pb.ImportMappingsResponse(created=created, updated=updated, version=version)

    # ---- changes ---------------------------------------------------------------------------

    async def WatchChanges(self, request: pb.WatchChangesRequest, context):
        """Stream changes of the watched tenants: first a resync, then one message per change."""
        caller = await self._caller_or_abort(context)
        for tenant_id in request.tenant_ids:
            await _check(context, caller.require_read, tenant_id)
        tenants = frozenset(request.tenant_ids) or (None if caller.all_tenants else caller.tenants)
        feed = self._codes.feed
        subscription = feed.subscribe(tenants)
        try:
            yield pb.WatchChangesResponse(version=self._codes.table.version, resync=True)
            async for change in subscription:
                resync = not change.tenant_id
                yield pb.WatchChangesResponse(version=change.version, tenant_id=change.tenant_id, resync=resync)
        finally:
            feed.unsubscribe(subscription)

    async def _stored(self, context, write):
        """Await a store write, then reload this replica's table, so the caller's next
        translation here already sees its change (other replicas follow on the NOTIFY)."""
        result = await _written(context, write)
        version = result[-1] if isinstance(result, tuple) else result
        await self._codes.catch_up(version)
        return result

    # ---- callers ---------------------------------------------------------------------------

    def _read_denial(self, context, tenant_id: str) -> tuple | None:
        """None when the call may go on; else the (status, message) to abort with. Synchronous,
        so the translate hot path awaits nothing when all is well."""
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call was handled"
        return self._access.denial(context, tenant_id)

    async def _caller_or_abort(self, context) -> Caller:
        await _abort_if_expired(context)
        try:
            return self._access.caller(context)
        except Unauthenticated as exc:
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, str(exc))
        except PermissionDenied as exc:
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, str(exc))

    async def _writable_code(self, context, tenant_id: str, mapping: pb.Mapping) -> ServiceCode:
        caller = await self._caller_or_abort(context)
        if not tenant_id:
            await _invalid(context, "tenant_id is required")
        await _check(context, caller.require_write, tenant_id)
        code = _code_of(tenant_id, mapping)
        try:
            check_mapping(code, self._codes.table.systems)
        except InvalidMapping as exc:
            await _invalid(context, str(exc))
        return code


def _may_write(caller: Caller, line: ImportLine) -> bool:
    try:
        caller.require_write(line.code.tenant_id)
    except PermissionDenied:
        return False
    return True


async def _check(context, requirement, tenant_id: str) -> None:
    try:
        requirement(tenant_id)
    except PermissionDenied as exc:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))


async def _abort_if_expired(context) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed; the rest of the work was dropped")


async def _invalid(context, message: str) -> NoReturn:
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, message)


async def _page_size(context, requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE:
        await _invalid(context, f"page_size must be between 0 and {MAX_PAGE}, got {requested}")
    return requested or DEFAULT_PAGE


async def _page_key(context, token: str) -> tuple[str, ...]:
    if not token:
        return ("",)
    try:
        return decode_page_token(token)
    except ValueError as exc:
        await _invalid(context, str(exc))


async def _written(context, write):
    """Await a store write; turn its domain errors into status codes."""
    try:
        return await write
    except MappingExists as exc:
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
    except MappingMissing as exc:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    except MappingConflict as exc:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except ImportRejected as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))


def _code_of(tenant_id: str, m: pb.Mapping) -> ServiceCode:
    return ServiceCode(
        system=m.system,
        tenant_id=tenant_id,
        code=m.code,
        name=m.name,
        carrier=m.carrier,
        canonical_carrier=m.canonical_carrier,
        canonical_service=m.canonical_service,
        aliases=tuple(m.aliases),
    )


def _mapping_message(code: ServiceCode) -> pb.Mapping:
    return pb.Mapping(
        system=code.system,
        code=code.code,
        name=code.name,
        carrier=code.carrier,
        canonical_carrier=code.canonical_carrier,
        canonical_service=code.canonical_service,
        aliases=code.aliases,
        tenant_id=code.tenant_id,
    )


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
