"""Reads of kept receipts for WebhookReceiptService, and the lock a resubmission takes.

Every query is scoped by tenant_id. Receipts are written by the revision writer only
(storage/orders.py), resubmissions included: this module never inserts one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from libs.platform.db import PgConnection

# A receipt's columns as the API shows them: the body's size, not the body, and the ids of the
# receipts resubmitted from it (index webhook_receipts_resubmissions).
_COLUMNS = (
    "r.id, r.received_at, r.channel, r.account, r.source, r.outcome, r.detail, r.order_id,"
    " octet_length(r.body) AS body_size, r.trace_id, r.resubmitted_from, r.resubmitted_by, r.resubmit_reason,"
    " r.resubmit_edited, ARRAY(SELECT c.id FROM webhook_receipts c"
    " WHERE c.resubmitted_from = r.id AND c.tenant_id = r.tenant_id ORDER BY c.id) AS resubmissions"
)


async def list_receipts(
    pool: asyncpg.Pool,
    tenant_id: str,
    outcomes: Sequence[str],
    limit: int,
    *,
    since: datetime | None = None,
    before_id: int | None = None,
) -> list[asyncpg.Record]:
    """Up to `limit` of a tenant's receipts of `outcomes`, newest first, received at or after
    `since`, with ids below `before_id` (the keyset of the previous page)."""
    where = ["r.tenant_id = $1", "r.outcome = ANY($2::text[])"]
    args: list[object] = [tenant_id, list(outcomes)]
    if since is not None:
        args.append(since)
        where.append(f"r.received_at >= ${len(args)}")
    if before_id is not None:
        args.append(before_id)
        where.append(f"r.id < ${len(args)}")
    args.append(limit)
    return await pool.fetch(
        f"SELECT {_COLUMNS} FROM webhook_receipts r WHERE {' AND '.join(where)} ORDER BY r.id DESC LIMIT ${len(args)}",
        *args,
    )


async def get_receipt(pool: asyncpg.Pool, tenant_id: str, receipt_id: int) -> asyncpg.Record | None:
    """One receipt of `tenant_id` with its body, or None."""
    return await pool.fetchrow(
        f"SELECT {_COLUMNS}, r.body FROM webhook_receipts r WHERE r.tenant_id = $1 AND r.id = $2",
        tenant_id,
        receipt_id,
    )


async def lock_for_resubmission(conn: PgConnection, tenant_id: str, receipt_id: int) -> asyncpg.Record | None:
    """The receipt to resubmit, locked until the caller's transaction ends, or None.

    FOR NO KEY UPDATE: two resubmissions of one receipt wait for each other, so the second sees
    the first's receipt; the new receipt's foreign key (FOR KEY SHARE) does not wait for it.
    """
    return await conn.fetchrow(
        "SELECT id, channel, account, source, outcome, body FROM webhook_receipts"
        " WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
        tenant_id,
        receipt_id,
    )


async def taken_resubmission(
    conn: PgConnection, tenant_id: str, receipt_id: int, refused: Sequence[str]
) -> asyncpg.Record | None:
    """The first resubmission of the receipt that was not refused again, or None."""
    return await conn.fetchrow(
        "SELECT id, outcome, detail, order_id FROM webhook_receipts"
        " WHERE tenant_id = $1 AND resubmitted_from = $2 AND NOT outcome = ANY($3::text[]) ORDER BY id LIMIT 1",
        tenant_id,
        receipt_id,
        list(refused),
    )
