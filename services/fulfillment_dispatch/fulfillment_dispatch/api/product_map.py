"""ProductMapService: each tenant's product map (list, put, delete, import) and product sync.

Translation only (rules in domain/product_map.py, SQL in storage/product_map.py, the sync in
product_sync.py). Callers are checked first, as on dispatch's other APIs: any caller granted the
tenant may read (and dry-run a sync); changes need the operator role. Bad input is
INVALID_ARGUMENT naming the field (or, for an import, every bad row); a database that cannot be
reached is UNAVAILABLE; a provider's error keeps its reason code at the start of the message.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import asyncpg
import grpc
from ordersync.dispatch.v1 import product_map_service_pb2 as pb
from ordersync.dispatch.v1 import product_map_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.rates import status_of
from fulfillment_dispatch.domain.product_map import (
    Component,
    ImportRow,
    InvalidMapping,
    ProductMapping,
    check_import,
    check_mapping,
)
from fulfillment_dispatch.product_sync import ProductSync, SyncNotFound, SyncUnsupported
from fulfillment_dispatch.storage import product_map as store
from libs.connectors.base.errors import ConnectorError
from libs.platform.accounts import AccountClients
from libs.platform.auth import OPERATOR, READ, GrpcAccess
from libs.platform.grpc_server import ServiceBinding, abort, bind

log = logging.getLogger(__name__)
MAX_IMPORT_ROWS = 10_000
# What a lost or unreachable database raises: the connection's errors, and the socket's.
_DATABASE_DOWN = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError, OSError)


def product_map_binding(pool: asyncpg.Pool, accounts: AccountClients, access: GrpcAccess) -> ServiceBinding:
    """The service as the gRPC server registers it."""
    return bind(pb, pb_grpc, "ProductMapService", ProductMapServicer(pool, ProductSync(pool, accounts), access))


class ProductMapServicer(pb_grpc.ProductMapServiceServicer):
    """Thin: requests into store and sync calls, their outcomes into responses."""

    def __init__(self, pool: asyncpg.Pool, sync: ProductSync, access: GrpcAccess):
        self._pool = pool
        self._sync = sync
        self._access = access

    async def ListProductMappings(self, request, context) -> pb.ListProductMappingsResponse:
        await self._access.require(context, request.tenant_id)
        mappings = await _stored(context, store.list_mappings(self._pool, request.tenant_id))
        return pb.ListProductMappingsResponse(mappings=[_message(m) for m in mappings])

    async def PutProductMapping(self, request, context) -> pb.PutProductMappingResponse:
        caller = await self._access.require(context, request.tenant_id, OPERATOR)
        if not request.HasField("mapping"):
            await _invalid(context, "mapping is required")
        mapping = _mapping(request.mapping)
        try:
            check_mapping(mapping)
        except InvalidMapping as exc:
            await _invalid(context, f"mapping: {exc}")
        created = await _stored(context, store.put_mapping(self._pool, request.tenant_id, mapping, caller.name))
        log.info(
            "product mapping written",
            extra={"fields": {"tenant_id": request.tenant_id, "channel_sku": mapping.channel_sku, "by": caller.name}},
        )
        return pb.PutProductMappingResponse(created=created)

    async def DeleteProductMapping(self, request, context) -> pb.DeleteProductMappingResponse:
        await self._access.require(context, request.tenant_id, OPERATOR)
        if not request.channel_sku:
            await _invalid(context, "channel_sku is required")
        deleted = await _stored(context, store.delete_mapping(self._pool, request.tenant_id, request.channel_sku))
        if not deleted:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"tenant {request.tenant_id!r} has no mapping of channel SKU {request.channel_sku!r}",
            )
        return pb.DeleteProductMappingResponse()

    async def ImportProductMappings(self, request, context) -> pb.ImportProductMappingsResponse:
        tenants = sorted({row.tenant_id for row in request.rows if row.tenant_id})
        if not tenants:  # the token is still checked before the request is judged
            await self._access.require(context, "", field="rows[].tenant_id")
        callers = [await self._access.require(context, t, OPERATOR, field="rows[].tenant_id") for t in tenants]
        caller = callers[0]  # one token: the same caller for every tenant
        if len(request.rows) > MAX_IMPORT_ROWS:
            await _invalid(context, f"rows holds {len(request.rows)} items; at most {MAX_IMPORT_ROWS} are allowed")
        rows = [ImportRow(r.line, r.tenant_id, r.channel_sku, _component(r.component)) for r in request.rows]
        mappings, problems = check_import(rows)
        if problems:
            await _invalid(context, f"{len(problems)} bad row(s), nothing imported: " + "; ".join(problems))
        created, replaced = await _stored(context, store.import_mappings(self._pool, mappings, caller.name))
        return pb.ImportProductMappingsResponse(created=created, replaced=replaced)

    async def SyncProducts(self, request, context) -> pb.SyncProductsResponse:
        # A dry run changes nothing: any caller granted the tenant may see what a sync would do.
        await self._access.require(context, request.tenant_id, READ if request.dry_run else OPERATOR)
        if not request.provider_account:
            await _invalid(context, "provider_account is required")
        try:
            result = await self._sync.sync(request.tenant_id, request.provider_account, dry_run=request.dry_run)
        except SyncNotFound as exc:
            await abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
        except SyncUnsupported as exc:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except ConnectorError as exc:
            await abort(context, status_of(exc), str(exc))
        except _DATABASE_DOWN as exc:
            await _unavailable(context, exc)
        return pb.SyncProductsResponse(
            dry_run=result.dry_run,
            created=[pb.SyncedProduct(sku=p.sku, name=p.name) for p in result.created],
            present=result.present,
            failed=[pb.SyncFailure(sku=sku, reason=reason) for sku, reason in result.failed],
        )


async def _stored(context, call):
    """Await a database call; a database that cannot be reached is UNAVAILABLE."""
    try:
        return await call
    except _DATABASE_DOWN as exc:
        await _unavailable(context, exc)


async def _unavailable(context, exc: BaseException) -> NoReturn:
    log.warning("product map: the database could not be used", extra={"fields": {"error": type(exc).__name__}})
    await abort(context, grpc.StatusCode.UNAVAILABLE, "the product map's database could not be reached; try again")


async def _invalid(context, message: str) -> NoReturn:
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, message)


def _component(message: pb.ProductComponent) -> Component:
    return Component(message.sku, message.quantity, message.name)


def _mapping(message: pb.ProductMapping) -> ProductMapping:
    return ProductMapping(message.channel_sku, tuple(_component(c) for c in message.components))


def _message(mapping: ProductMapping) -> pb.ProductMapping:
    components = [pb.ProductComponent(sku=c.sku, quantity=c.quantity, name=c.name) for c in mapping.components]
    return pb.ProductMapping(channel_sku=mapping.channel_sku, components=components)
