"""Postgres access: a pool bound to the service's own schema, and a forward-only migration runner.

Each service owns one schema and touches no other. Migrations are numbered SQL files applied in
order under an advisory lock, so replicas starting together apply each file once. The platform's
own tables (outbox, processed events) are applied first from libs/platform/migrations.
"""

from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

PLATFORM_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    """Return `schema` if it is a safe identifier; it is interpolated into DDL and SQL."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use lower-case letters, digits and _")
    return schema


async def create_pool(dsn: str, schema: str, size: int = 8) -> asyncpg.Pool:
    """Open a pool whose connections use `schema` first on their search path."""
    check_schema_name(schema)
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings={"search_path": f"{schema},public", "application_name": schema},
        command_timeout=60,
    )


async def migrate(dsn: str, schema: str, migrations_dir: Path) -> list[str]:
    """Create `schema` and apply pending migrations (platform's, then the service's).

    Returns the names applied in this call. Safe to run concurrently from several replicas.
    """
    check_schema_name(schema)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SELECT pg_advisory_lock({_lock_key(schema)})")
        try:
            return await _apply_pending(conn, schema, migrations_dir)
        finally:
            await conn.execute(f"SELECT pg_advisory_unlock({_lock_key(schema)})")
    finally:
        await conn.close()


def _lock_key(schema: str) -> int:
    return zlib.crc32(f"ordersync-migrate:{schema}".encode())


async def _apply_pending(conn: asyncpg.Connection, schema: str, migrations_dir: Path) -> list[str]:
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {r["name"] for r in await conn.fetch(f"SELECT name FROM {schema}.schema_migrations")}
    applied = []
    for name, path in _migration_files(migrations_dir):
        if name in done:
            continue
        sql = path.read_text().replace("{schema}", schema)
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            await conn.execute(sql)
            await conn.execute(f"INSERT INTO {schema}.schema_migrations (name) VALUES ($1)", name)
        log.info("applied migration", extra={"fields": {"schema": schema, "migration": name}})
        applied.append(name)
    return applied


def _migration_files(service_dir: Path) -> list[tuple[str, Path]]:
    platform = [(f"platform/{p.name}", p) for p in sorted(PLATFORM_MIGRATIONS.glob("*.sql"))]
    service = [(p.name, p) for p in sorted(service_dir.glob("*.sql"))]
    return platform + service
