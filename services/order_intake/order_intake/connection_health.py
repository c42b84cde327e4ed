"""Order intake's view of each channel account it takes orders from (ConnectionHealthService,
libs/platform/connection_health.py).

Per channel account of the tenant (webhook_receipts.account, its connector the receipt's channel,
or pull_cursors for a pulled account): when its pull cursor last committed a page, when it last
had an order revision taken in (a receipt accepted, invalid or not imported), the receipts of the
window that were news (every outcome but duplicate, stale and ignored) and how many were refused
(malformed, invalid, too_large), and the latest error: the pull cursor's, else the latest
refusal's (an invalid order's reason; a refused body only by its outcome and receipt id, as its
detail may quote the body). Four queries for the tenant, whatever its number of accounts.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from libs.platform.connection_health import ConnectionHealth

# Outcomes of a revision taken in, spelled as index webhook_receipts_taken_by_account's predicate:
# written out in the query (not a parameter), so that a generic plan still proves it and uses the index.
_TAKEN = "outcome IN ('accepted', 'invalid', 'not_imported')"
_NOT_NEWS = ("duplicate", "stale", "ignored")
_REFUSED = ("malformed", "invalid", "too_large")

# Every account that ever had a revision taken in, found by skipping through the index one
# account at a time, with its latest one.
_LATEST_TAKEN = f"""
WITH RECURSIVE accounts(account) AS (
    (SELECT account FROM webhook_receipts WHERE tenant_id = $1 AND {_TAKEN} ORDER BY account LIMIT 1)
    UNION ALL
    SELECT (SELECT r.account FROM webhook_receipts r
            WHERE r.tenant_id = $1 AND r.{_TAKEN} AND r.account > a.account
            ORDER BY r.account LIMIT 1)
    FROM accounts a WHERE a.account IS NOT NULL
)
SELECT a.account, latest.channel, latest.received_at FROM accounts a,
LATERAL (SELECT channel, received_at FROM webhook_receipts r
         WHERE r.tenant_id = $1 AND r.account = a.account AND r.{_TAKEN}
         ORDER BY received_at DESC LIMIT 1) AS latest
WHERE a.account IS NOT NULL
"""


class IntakeHealth:
    """The HealthSource of order intake."""

    async def connection_health(self, pool: asyncpg.Pool, tenant_id: str, since: datetime) -> list[ConnectionHealth]:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            cursors = await conn.fetch(
                "SELECT account, connector, last_polled_at, last_error FROM pull_cursors WHERE tenant_id = $1",
                tenant_id,
            )
            taken = await conn.fetch(_LATEST_TAKEN, tenant_id)
            counts = await conn.fetch(
                "SELECT account, min(channel) AS channel,"
                " count(*) FILTER (WHERE NOT outcome = ANY($3::text[])) AS attempts,"
                " count(*) FILTER (WHERE outcome = ANY($4::text[])) AS failures"
                " FROM webhook_receipts WHERE tenant_id = $1 AND received_at >= $2 GROUP BY account",
                tenant_id,
                since,
                list(_NOT_NEWS),
                list(_REFUSED),
            )
            refusals = await conn.fetch(
                "SELECT DISTINCT ON (account) account, id, outcome, detail FROM webhook_receipts"
                " WHERE tenant_id = $1 AND received_at >= $2 AND outcome = ANY($3::text[])"
                " ORDER BY account, received_at DESC, id DESC",
                tenant_id,
                since,
                list(_REFUSED),
            )
        accounts: dict[str, ConnectionHealth] = {}

        def account(name: str, connector: str) -> ConnectionHealth:
            return accounts.setdefault(name, ConnectionHealth(account=name, connector=connector))

        for r in taken:
            account(r["account"], r["channel"]).last_received = r["received_at"]
        for r in counts:
            health = account(r["account"], r["channel"])
            health.attempts, health.failures = r["attempts"], r["failures"]
        for r in refusals:
            account(r["account"], "").last_error = _refusal_words(r)
        for r in cursors:
            health = account(r["account"], r["connector"])
            health.connector = r["connector"]
            health.last_poll = r["last_polled_at"]
            health.last_error = r["last_error"] or health.last_error
        return list(accounts.values())


def _refusal_words(receipt: asyncpg.Record) -> str:
    if receipt["outcome"] == "invalid":
        return f"order invalid (receipt {receipt['id']}): {receipt['detail']}"
    return f"webhook refused as {receipt['outcome'].replace('_', ' ')} (receipt {receipt['id']})"
