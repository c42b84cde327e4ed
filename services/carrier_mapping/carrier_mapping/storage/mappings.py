"""Carrier mapping's writes: tenant mappings changed, logged and announced in one transaction.

Each write takes a transaction-scoped advisory lock, so writers are serialised and checking the
stored rows before writing cannot race another writer. The same transaction appends to
mapping_changes and calls pg_notify on the schema's channel; the notification is delivered only
if the transaction commits, so listeners never hear of a change that did not happen.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Sequence

import asyncpg

from carrier_mapping.domain.mappings import (
    ImportLine,
    MappingConflict,
    check_import_against_stored,
    check_table,
)
from carrier_mapping.domain.translate import ServiceCode
from carrier_mapping.storage.codes import row_to_code

_COLUMNS = "system, tenant_id, code, name, carrier, canonical_carrier, canonical_service, aliases"
_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':mapping-writes'))"
_SYSTEMS = "SELECT system FROM systems"
_TENANT_ROWS = f"SELECT {_COLUMNS} FROM service_codes WHERE tenant_id = $1 AND system = $2"
_TENANTS_ROWS = f"SELECT {_COLUMNS} FROM service_codes WHERE tenant_id = ANY($1::text[])"
_UPSERT = f"""
    INSERT INTO service_codes ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (system, tenant_id, code) DO UPDATE SET
        name = excluded.name, carrier = excluded.carrier,
        canonical_carrier = excluded.canonical_carrier, canonical_service = excluded.canonical_service,
        aliases = excluded.aliases, updated_at = now()
"""
_DELETE = "DELETE FROM service_codes WHERE tenant_id = $1 AND system = $2 AND code = $3"
_LOG_CHANGE = "INSERT INTO mapping_changes (tenant_id) VALUES ($1) RETURNING version"
_NOTIFY = "SELECT pg_notify($1, $2)"
_LIST = f"""
    SELECT {_COLUMNS} FROM service_codes
    WHERE tenant_id = $1 AND ($2 = '' OR system = $2) AND (system, code) > ($3, $4)
    ORDER BY system, code LIMIT $5
"""


class MappingExists(Exception):
    """The tenant already maps that code (create)."""


class MappingMissing(Exception):
    """The tenant has no mapping of that code (update, delete)."""


class ImportRejected(Exception):
    """An import had bad rows; `problems` names each by line. Nothing was written."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} bad row(s), nothing imported: " + "; ".join(problems))
        self.problems = problems


class MappingStore:
    """Writes and lists tenant mappings in the pool's schema; announces changes on `channel`."""

    def __init__(self, pool: asyncpg.Pool, channel: str):
        self._pool = pool
        self._channel = channel

    async def systems(self) -> list[str]:
        async with self._pool.acquire() as conn:
            return [row["system"] for row in await conn.fetch(_SYSTEMS)]

    async def create(self, code: ServiceCode) -> int:
        """Store a new tenant mapping; return the new version.

        Raises MappingExists when the tenant maps that code already, MappingConflict when it
        clashes with another of the tenant's codes of that system.
        """
        return await self._put(code, must_exist=False)

    async def update(self, code: ServiceCode) -> int:
        """Replace a tenant mapping; return the new version. Raises MappingMissing, MappingConflict."""
        return await self._put(code, must_exist=True)

    async def _put(self, code: ServiceCode, *, must_exist: bool) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK)
            stored = [row_to_code(r) for r in await conn.fetch(_TENANT_ROWS, code.tenant_id, code.system)]
            exists = any(row.code == code.code for row in stored)
            if must_exist and not exists:
                raise MappingMissing(_missing(code.tenant_id, code.system, code.code))
            if exists and not must_exist:
                raise MappingExists(
                    f"tenant {code.tenant_id!r} already maps {code.system} code {code.code!r}; update it instead"
                )
            others = [row for row in stored if row.code != code.code]
            check_table([*others, code], await self._systems(conn))
            await conn.execute(_UPSERT, *_values(code))
            return await self._announce(conn, [code.tenant_id])

    async def delete(self, tenant_id: str, system: str, code: str) -> int:
        """Remove a tenant mapping; return the new version. Raises MappingMissing."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK)
            if await conn.execute(_DELETE, tenant_id, system, code) == "DELETE 0":
                raise MappingMissing(_missing(tenant_id, system, code))
            return await self._announce(conn, [tenant_id])

    async def import_lines(self, lines: Sequence[ImportLine]) -> tuple[int, int, int]:
        """Create or replace every line's mapping in one transaction; return (created, updated,
        version). Raises ImportRejected naming each line that clashes with stored mappings;
        nothing is written then. Lines must already have passed domain.mappings.check_import.
        """
        tenants = sorted({line.code.tenant_id for line in lines})
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK)
            stored = [row_to_code(r) for r in await conn.fetch(_TENANTS_ROWS, tenants)]
            problems = check_import_against_stored(lines, stored)
            if problems:
                raise ImportRejected(problems)
            stored_keys = {(r.tenant_id, r.system, r.code) for r in stored}
            created = sum((line.code.tenant_id, line.code.system, line.code.code) not in stored_keys for line in lines)
            await conn.executemany(_UPSERT, [_values(line.code) for line in lines])
            final = [row_to_code(r) for r in await conn.fetch(_TENANTS_ROWS, tenants)]
            try:
                check_table(final, await self._systems(conn))
            except MappingConflict as exc:  # a safety net; the line checks should catch every clash
                raise ImportRejected([str(exc)]) from None
            version = await self._announce(conn, tenants)
        return created, len(lines) - created, version

    async def list(self, tenant_id: str, system: str, page_token: str, page_size: int) -> tuple[list, str]:
        """Return one page of a tenant's mappings ordered by system and code, and the next page's
        token ('' on the last page). Raises ValueError for a malformed page_token."""
        after_system, after_code = decode_page_token(page_token) if page_token else ("", "")
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_LIST, tenant_id, system, after_system, after_code, page_size + 1)
        codes = [row_to_code(r) for r in rows[:page_size]]
        more = len(rows) > page_size
        return codes, encode_page_token(codes[-1].system, codes[-1].code) if more else ""

    async def _systems(self, conn) -> builtins.list[str]:  # `list` is a method here
        return [row["system"] for row in await conn.fetch(_SYSTEMS)]

    async def _announce(self, conn, tenants: Sequence[str]) -> int:
        version = 0
        for tenant_id in tenants:
            version = await conn.fetchval(_LOG_CHANGE, tenant_id)
        await conn.execute(_NOTIFY, self._channel, str(version))
        return version


def _values(code: ServiceCode) -> tuple:
    return (
        code.system,
        code.tenant_id,
        code.code,
        code.name,
        code.carrier,
        code.canonical_carrier,
        code.canonical_service,
        list(code.aliases),
    )


def _missing(tenant_id: str, system: str, code: str) -> str:
    return f"tenant {tenant_id!r} has no mapping of {system} code {code!r}"


def encode_page_token(*key: str) -> str:
    """An opaque token for the page after `key`."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def decode_page_token(token: str) -> tuple[str, ...]:
    """The key a page token stands for; raise ValueError when it was not made by encode_page_token."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("page_token is malformed; pass next_page_token unchanged") from None
    if not isinstance(key, list) or len(key) != 2 or not all(isinstance(part, str) for part in key):
        raise ValueError("page_token is malformed; pass next_page_token unchanged")
    return tuple(key)
