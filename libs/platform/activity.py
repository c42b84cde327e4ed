"""Activity logs: the per-order history an operator reads (every attempt, answer and change)."""

from __future__ import annotations

from collections.abc import Sequence

from libs.platform.db import PgConnection, check_schema_name


async def append_activity(conn: PgConnection, table: str, entries: Sequence[tuple[str, str, str, str]]) -> None:
    """Append (order_id, tenant_id, kind, message) rows to `table` in one round trip."""
    if entries:
        await conn.execute(
            f"INSERT INTO {check_schema_name(table)} (order_id, tenant_id, kind, message)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
            *[list(column) for column in zip(*entries, strict=True)],
        )
