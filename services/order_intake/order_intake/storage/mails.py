"""The failed-import mail queue's SQL: queued with the revision, claimed and recorded by the worker.

A not imported revision queues one mail naming the rules it fails that no earlier mail of the
order named: `import_mail_codes` is the ledger of (order, code) pairs mailed, so a poll that
brings the same failing order again, or a new revision failing the same rules, queues nothing.
Queueing runs in the revision's own transaction (a transactional outbox): the mail exists if and
only if the not imported revision was committed. The queue is a libs.platform.work_queue table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from libs.platform.db import PgConnection
from libs.platform.work_queue import QueueTable, WorkQueue
from order_intake.domain.intake import RuleFailure

MAIL_QUEUE = WorkQueue(
    QueueTable(
        table="import_mails",
        key="mail_id",
        due_statuses=("pending", "retry_wait"),
        returned=("tenant_id", "order_id", "channel", "account", "order_number", "recipient", "failures"),
        results={"last_error": "text", "sent_at": "timestamptz"},
        stored=("last_error",),
        set_clauses=("sent_at = coalesce(r.sent_at, q.sent_at)",),
        activity_table="import_mail_activity",
    )
)


@dataclass(frozen=True)
class MailResult:
    """One attempt's outcome, as the work queue records it."""

    mail_id: str
    tenant_id: str
    attempt: int
    status: str  # sent | retry_wait | failed
    next_attempt_at: datetime | None
    activity: str
    last_error: str = ""
    sent_at: datetime | None = None


async def queue_import_mail(
    conn: PgConnection,
    *,
    order_id: str,
    tenant_id: str,
    channel: str,
    account: str,
    order_number: str,
    recipient: str,
    failures: Sequence[RuleFailure],
) -> str | None:
    """Queue the mail for the failures whose (order, code) no mail named yet; its id, or None.

    Run by the revision writer while it holds the order's row (FOR UPDATE, or its fresh
    insert), so two revisions of one order never read the ledger at the same time.
    """
    mailed = await conn.fetch(
        "SELECT code FROM import_mail_codes WHERE order_id = $1 AND code = ANY($2::text[])",
        order_id,
        [f.code for f in failures],
    )
    done = {row["code"] for row in mailed}
    new = [f for f in failures if f.code not in done]
    if not new:
        return None
    # Named by its first code: unique, since that (order, code) pair had no mail until now.
    mail_id = f"{order_id}/{new[0].code}"
    await conn.execute(
        "INSERT INTO import_mail_codes (order_id, code, mail_id) SELECT $1, code, $2 FROM unnest($3::text[]) code",
        order_id,
        mail_id,
        sorted({f.code for f in new}),
    )
    await conn.execute(
        "INSERT INTO import_mails (mail_id, order_id, tenant_id, channel, account, order_number, recipient, failures)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
        mail_id,
        order_id,
        tenant_id,
        channel,
        account,
        order_number,
        recipient,
        json.dumps([f.as_json() for f in new]),
    )
    return mail_id


async def claim_due(pool: asyncpg.Pool, limit: int, lease_s: float) -> list[asyncpg.Record]:
    """Lease up to `limit` mails due to be sent, counting the attempt."""
    return await MAIL_QUEUE.claim(pool, limit, lease_s)


async def record_results(pool: asyncpg.Pool, results: Sequence[MailResult]) -> set[str]:
    """Store attempts' outcomes (a late attempt, whose lease another took, is dropped)."""
    async with pool.acquire() as conn, conn.transaction():
        return await MAIL_QUEUE.record(conn, results)


def failures_of(row: asyncpg.Record) -> list[dict[str, Any]]:
    return json.loads(row["failures"])
