"""Reconciliation's reads of intake's records: which channel revisions intake already holds."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def known_revisions(
    pool: asyncpg.Pool, tenant_id: str, channel: str, refs: Sequence[tuple[str, str]]
) -> tuple[set[tuple[str, str]], set[str]]:
    """Of (external_id, revision) pairs, those intake has taken, and the external ids it has any
    order for."""
    if not refs:
        return set(), set()
    ids, revisions = [r[0] for r in refs], [r[1] for r in refs]
    taken = await pool.fetch(
        "SELECT external_id, revision FROM order_revisions WHERE tenant_id = $1 AND channel = $2"
        " AND (external_id, revision) IN (SELECT * FROM unnest($3::text[], $4::text[]))",
        tenant_id,
        channel,
        ids,
        revisions,
    )
    orders = await pool.fetch(
        "SELECT external_id FROM orders WHERE tenant_id = $1 AND channel = $2 AND external_id = ANY($3::text[])",
        tenant_id,
        channel,
        ids,
    )
    return {(r["external_id"], r["revision"]) for r in taken}, {r["external_id"] for r in orders}
