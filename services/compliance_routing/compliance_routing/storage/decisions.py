"""Compliance routing's SQL: decisions, written with their outbox events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from libs.platform.db import PgConnection


@dataclass(frozen=True)
class DecisionRow:
    order_id: str
    tenant_id: str
    outcome: str
    provider: str
    reason_code: str
    reason: str
    revision: str
    route: str = ""  # the route that decided, '' when none did
    rule: str = ""  # the rule that decided, e.g. "ship_to_states"
    provider_account: str = ""


async def decided_order_ids(conn: PgConnection, order_ids: Sequence[str]) -> set[str]:
    """Return which of `order_ids` already have a decision (a decision is made once per order)."""
    rows = await conn.fetch("SELECT order_id FROM decisions WHERE order_id = ANY($1::text[])", list(order_ids))
    return {r["order_id"] for r in rows}


async def insert_decisions(conn: PgConnection, rows: Sequence[DecisionRow]) -> set[str]:
    """Insert decisions in one round trip, inside the caller's transaction; return the ids inserted."""
    if not rows:
        return set()
    inserted = await conn.fetch(
        "INSERT INTO decisions (order_id, tenant_id, outcome, provider, reason_code, reason, revision, route, rule,"
        " provider_account)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        " $8::text[], $9::text[], $10::text[])"
        " ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
        *[[getattr(r, column) for r in rows] for column in DecisionRow.__dataclass_fields__],
    )
    return {r["order_id"] for r in inserted}


async def get_decision(pool: asyncpg.Pool, tenant_id: str, order_id: str) -> asyncpg.Record | None:
    """Return the decision for one order of `tenant_id`, or None."""
    return await pool.fetchrow(
        "SELECT outcome, provider, reason_code, reason, route, rule, provider_account, decided_at FROM decisions"
        " WHERE tenant_id = $1 AND order_id = $2",
        tenant_id,
        order_id,
    )
