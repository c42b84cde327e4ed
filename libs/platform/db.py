"""Postgres access: a pool bound to the service's own schema, and a forward-only migration runner.

Each service owns one schema and touches no other. Migrations are numbered SQL files applied in
order under an advisory lock, so replicas starting together apply each file once. The platform's
own tables (outbox, processed events) are applied first from libs/platform/migrations.

Given an `owner`, the runner creates the schema for that role and applies the files as that role
(SET ROLE), so the service's own role owns its schema and every object in it; the migration role
that connects owns nothing. `require_migrated` is the check a service runs instead when it starts
with migrations off (libs/platform/migrate.py is the command that applies them).
"""

from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

log = logging.getLogger(__name__)

# What a function that runs SQL on a caller's connection accepts: a pool's connection (a proxy,
# what `pool.acquire()` yields) or one from `asyncpg.connect()`. asyncpg's type stubs give the two
# no common base, so functions name both.
PgConnection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

PLATFORM_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(Exception):
    """The schema cannot be migrated as asked (wrong owner, say); the message says what to do."""


class SchemaBehindError(Exception):
    """The schema lacks migrations this code needs; the message names the command that applies them."""

    def __init__(self, schema: str, pending: list[str]):
        self.schema = schema
        self.pending = pending
        super().__init__(
            f"schema {schema} is behind: {len(pending)} migration(s) not applied ({', '.join(pending)}); "
            f"run `python -m libs.platform.migrate up --service {schema}` with ORDERSYNC_PG_MIGRATION_DSN "
            "(the migration role), or start the service with ORDERSYNC_MIGRATE=on"
        )


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


async def migrate(dsn: str, schema: str, migrations_dir: Path, *, owner: str | None = None) -> list[str]:
    """Create `schema` and apply pending migrations (platform's, then the service's).

    `owner` is the role that must own the schema and its objects (the service's role); the role
    `dsn` logs in as must be a member of it and have CREATE on the database when the schema does
    not exist yet. With no owner the connecting role creates and owns everything (local runs).

    Returns the names applied in this call (empty when up to date). Safe to run concurrently from
    several replicas. Raises MigrationError when the schema exists under another owner.
    """
    check_schema_name(schema)
    if owner is not None:
        check_schema_name(owner)  # role names follow the same rule: they are interpolated too
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SELECT pg_advisory_lock({_lock_key(schema)})")
        try:
            await _ensure_schema(conn, schema, owner)
            return await _apply_pending(conn, schema, migrations_dir)
        finally:
            await conn.execute("RESET ROLE")
            await conn.execute(f"SELECT pg_advisory_unlock({_lock_key(schema)})")
    finally:
        await conn.close()


async def require_migrated(dsn: str, schema: str, migrations_dir: Path) -> None:
    """Raise SchemaBehindError unless every migration file has been applied to `schema`.

    Run with the service's own credentials; it only reads `schema_migrations`. Rows for files
    this code does not know (a newer release migrated first) are fine: migrations only add.
    """
    check_schema_name(schema)
    conn = await asyncpg.connect(dsn)
    try:
        done = await _applied(conn, schema)
    finally:
        await conn.close()
    pending = [name for name, _ in _migration_files(migrations_dir) if name not in done]
    if pending:
        raise SchemaBehindError(schema, pending)


def _lock_key(schema: str) -> int:
    return zlib.crc32(f"ordersync-migrate:{schema}".encode())


async def _ensure_schema(conn: asyncpg.Connection, schema: str, owner: str | None) -> None:
    """Create the schema (for `owner`) if missing, check who owns it, then act as the owner."""
    current = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema)
    if current is None:
        # Looked up first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when
        # the schema exists, and a service role migrating its own schema has no such right.
        authorization = f" AUTHORIZATION {owner}" if owner else ""
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}{authorization}")
    elif owner is not None and current != owner:
        raise MigrationError(
            f"schema {schema} is owned by role {current}, not {owner}: hand it and its objects to {owner} "
            "(ALTER ... OWNER TO, see the operations guide) before migrating as the migration role"
        )
    if owner is not None:
        await conn.execute(f"SET ROLE {owner}")


async def _applied(conn: asyncpg.Connection, schema: str) -> set[str]:
    exists = await conn.fetchval(
        "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_migrations'", schema
    )
    if not exists:
        return set()
    return {r["name"] for r in await conn.fetch(f"SELECT name FROM {schema}.schema_migrations")}


async def _apply_pending(conn: asyncpg.Connection, schema: str, migrations_dir: Path) -> list[str]:
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = await _applied(conn, schema)
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
