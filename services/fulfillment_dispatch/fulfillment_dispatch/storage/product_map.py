"""The product map's SQL: each tenant's mappings, one row per component; every query is scoped
by tenant. A mapping is written whole (its old components replaced) in one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import asyncpg

from fulfillment_dispatch.domain.product_map import Component, ProductMapping

_COLUMNS = "tenant_id, channel_sku, position, sku, quantity, name"


async def list_mappings(pool: asyncpg.Pool, tenant_id: str) -> list[ProductMapping]:
    """The tenant's mappings, ordered by channel SKU."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM product_map_components WHERE tenant_id = $1 ORDER BY channel_sku, position",
        tenant_id,
    )
    return list(_mappings(rows).values())


async def mappings_for(pool: asyncpg.Pool, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ProductMapping]:
    """The mappings of the given (tenant, channel SKU) pairs that exist, in one query."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    tenants, skus = (list(column) for column in zip(*pairs, strict=True))
    rows = await pool.fetch(
        f"""
        SELECT {_COLUMNS} FROM product_map_components
         WHERE (tenant_id, channel_sku) IN (SELECT * FROM unnest($1::text[], $2::text[]))
         ORDER BY tenant_id, channel_sku, position
        """,
        tenants,
        skus,
    )
    found: dict[tuple[str, str], list] = {}
    for row in rows:
        found.setdefault((row["tenant_id"], row["channel_sku"]), []).append(row)
    return {key: _mapping(members) for key, members in found.items()}


async def put_mapping(pool: asyncpg.Pool, tenant_id: str, mapping: ProductMapping, actor: str) -> bool:
    """Create or replace the tenant's mapping of its channel SKU; True when it was created."""
    async with pool.acquire() as conn, conn.transaction():
        created = await _replace(conn, tenant_id, mapping, actor)
    return created


async def delete_mapping(pool: asyncpg.Pool, tenant_id: str, channel_sku: str) -> bool:
    """Remove the tenant's mapping of `channel_sku`; False when there was none."""
    status = await pool.execute(
        "DELETE FROM product_map_components WHERE tenant_id = $1 AND channel_sku = $2", tenant_id, channel_sku
    )
    return status != "DELETE 0"


async def import_mappings(
    pool: asyncpg.Pool, mappings: Mapping[str, Sequence[ProductMapping]], actor: str
) -> tuple[int, int]:
    """Create or replace every mapping, all in one transaction; return (created, replaced)."""
    created = replaced = 0
    async with pool.acquire() as conn, conn.transaction():
        for tenant_id, tenant_mappings in mappings.items():
            for mapping in tenant_mappings:
                if await _replace(conn, tenant_id, mapping, actor):
                    created += 1
                else:
                    replaced += 1
    return created, replaced


async def _replace(conn, tenant_id: str, mapping: ProductMapping, actor: str) -> bool:
    # Two writers of one new channel SKU would both find nothing to delete and clash on insert:
    # the lock (released at commit) lets the second replace what the first wrote.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", tenant_id, mapping.channel_sku)
    status = await conn.execute(
        "DELETE FROM product_map_components WHERE tenant_id = $1 AND channel_sku = $2", tenant_id, mapping.channel_sku
    )
    await conn.executemany(
        "INSERT INTO product_map_components (tenant_id, channel_sku, position, sku, quantity, name, updated_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [
            (tenant_id, mapping.channel_sku, position, c.sku, c.quantity, c.name, actor)
            for position, c in enumerate(mapping.components, start=1)
        ],
    )
    return status == "DELETE 0"


def _mappings(rows: Iterable[asyncpg.Record]) -> dict[str, ProductMapping]:
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row["channel_sku"], []).append(row)
    return {sku: _mapping(members) for sku, members in grouped.items()}


def _mapping(rows: Sequence[asyncpg.Record]) -> ProductMapping:
    components = tuple(Component(r["sku"], r["quantity"], r["name"]) for r in rows)
    return ProductMapping(rows[0]["channel_sku"], components)
