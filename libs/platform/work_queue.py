"""The leased work queue: a table of due work that replicas claim, attempt and record, fenced.

Dispatch's send queue and writeback's write queue are rows in their service's own table, each
with a `status`, `attempts`, `lease_until` and `next_attempt_at`. One mechanism serves both:

- `claim` leases up to N due rows (status among the due ones, `next_attempt_at` reached, no
  live lease) with `FOR UPDATE SKIP LOCKED`, so replicas never share a row, and counts the
  attempt. A process that dies leaves its rows to be claimed again when their leases run out.
- `record` stores each attempt's result only while that attempt still holds the row: a slow
  attempt that outlived its lease, whose row another attempt claimed, is fenced out (its
  result could otherwise overwrite a newer outcome or announce a second one). It releases the
  lease and appends the result's line to the table's activity log, in the caller's transaction.
- `retry_delay` is the one backoff both use between attempts.

A queue is configured per table (`QueueTable`); every identifier and SQL fragment in it is a
constant of the service's code, never input, and identifiers are checked when the queue is built.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg

from libs.platform.activity import append_activity
from libs.platform.db import PgConnection

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_SQL_TYPE = re.compile(r"^[a-z][a-z ]*$")


def retry_delay(attempts: int, *, base_s: float = 2.0, cap_s: float = 300.0) -> timedelta:
    """Exponential backoff with jitter after `attempts` failed attempts: about 2 s, 4 s, 8 s ...,
    at most `cap_s`. The jitter (75-100 % of the step) keeps rows that failed together, e.g.
    in one outage, from all coming due again in the same second."""
    delay = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * random.uniform(0.75, 1.0))


@dataclass(frozen=True)
class QueueTable:
    """How one table serves as a work queue.

    Attributes:
        table: the table (on the pool's search path), with columns `status`, `attempts`,
            `lease_until`, `next_attempt_at` and the key.
        key: the key column (text), e.g. "order_id".
        due_statuses: statuses whose rows are claimed when due, e.g. ("sending", "retry_wait").
            Written into the query as literals, so a partial index on them is used.
        returned: columns a claim returns besides the key and `attempts`.
        results: each result's own values (name -> SQL type), besides the key, `attempt`,
            `status` and `next_attempt_at` every result has; the SQL sees them as `r.<name>`.
        stored: those of `results` stored as they are (`<name> = r.<name>`).
        set_clauses: further SET clauses of `record`, over the row (`q`) and its result (`r`).
        status_sql: the stored status; by default the result's.
        claim_set_clauses: further SET clauses of `claim`, e.g. "updated_at = now()".
        activity_table: the table's activity log (order_id, tenant_id, kind, message).
    """

    table: str
    key: str
    due_statuses: tuple[str, ...]
    returned: tuple[str, ...]
    activity_table: str
    results: Mapping[str, str] = field(default_factory=dict)
    stored: tuple[str, ...] = ()
    set_clauses: tuple[str, ...] = ()
    status_sql: str = "r.status"
    claim_set_clauses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [self.table, self.key, self.activity_table, *self.due_statuses, *self.returned, *self.results]
        bad = [n for n in names if not _IDENTIFIER.match(n)]
        bad += [t for t in self.results.values() if not _SQL_TYPE.match(t)]
        bad += [n for n in self.stored if n not in self.results]
        if bad:
            raise ValueError(f"work queue {self.table!r}: not usable as SQL names or types: {bad}")


class WorkQueue:
    """Claims and records for one QueueTable; its SQL is built once."""

    _BASE_RESULTS = {"status": "text", "next_attempt_at": "timestamptz"}

    def __init__(self, config: QueueTable):
        self.config = config
        self._result_names = [*self._BASE_RESULTS, *config.results]
        self._claim_sql = self._build_claim()
        self._record_sql = self._build_record()

    async def claim(self, pool: asyncpg.Pool, limit: int, lease_s: float) -> list[asyncpg.Record]:
        """Lease up to `limit` due rows for `lease_s` seconds and count the attempt.

        Returns the rows (key, `attempts`, the returned columns), oldest due first; `attempts`
        is this attempt's number, which its result must carry.
        """
        return await pool.fetch(self._claim_sql, limit, lease_s)

    async def renew(self, pool: asyncpg.Pool, held: Sequence[tuple[str, int]], lease_s: float) -> set[str]:
        """Extend the leases of rows still held by these (key, attempt) claims for `lease_s`
        seconds from now; return the keys renewed (a row taken over by a newer attempt is not)."""
        if not held:
            return set()
        c = self.config
        rows = await pool.fetch(
            f"UPDATE {c.table} q SET lease_until = now() + make_interval(secs => $3)"
            " FROM unnest($1::text[], $2::int[]) AS r(key, attempt)"
            f" WHERE q.{c.key} = r.key AND q.attempts = r.attempt AND q.lease_until IS NOT NULL"
            f" RETURNING q.{c.key}",
            [key for key, _ in held],
            [attempt for _, attempt in held],
            lease_s,
        )
        return {row[c.key] for row in rows}

    async def record(self, conn: PgConnection, results: Sequence[Any]) -> set[str]:
        """Store results whose attempt still holds its row; return the keys stored.

        Each result has attributes named after the key, `tenant_id`, `attempt`, `status`,
        `next_attempt_at` (None keeps the row's), `activity` (the log line; '' adds none, for
        a result that repeats the last one) and every one of
        the table's `results`. A stored result releases the lease; a dropped one changes
        nothing. Run it in the transaction that writes the results' events, and write only the
        events of the keys returned.
        """
        if not results:
            return set()
        key = self.config.key
        # One lock order for every writer: two transactions never wait on each other in a cycle.
        results = sorted(results, key=lambda r: getattr(r, key))
        columns = [[getattr(r, key) for r in results], [r.attempt for r in results]]
        columns += [[getattr(r, name) for r in results] for name in self._result_names]
        stored = await conn.fetch(self._record_sql, *columns)
        recorded = {row[key] for row in stored}
        entries = [
            (getattr(r, key), r.tenant_id, r.status, r.activity)
            for r in results
            if getattr(r, key) in recorded and r.activity
        ]
        await append_activity(conn, self.config.activity_table, entries)
        return recorded

    def _build_claim(self) -> str:
        c = self.config
        statuses = ", ".join(f"'{s}'" for s in c.due_statuses)
        sets = ", ".join(
            ["lease_until = now() + make_interval(secs => $2)", "attempts = q.attempts + 1", *c.claim_set_clauses]
        )
        returned = ", ".join(f"q.{name}" for name in (c.key, "attempts", *c.returned))
        return (
            f"UPDATE {c.table} q SET {sets}"
            f" FROM (SELECT {c.key} FROM {c.table}"
            f"       WHERE status IN ({statuses}) AND next_attempt_at <= now()"
            "          AND (lease_until IS NULL OR lease_until < now())"
            f"       ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due"
            f" WHERE q.{c.key} = due.{c.key}"
            f" RETURNING {returned}"
        )

    def _build_record(self) -> str:
        c = self.config
        types = {"key": "text", "attempt": "int", **self._BASE_RESULTS, **c.results}
        arrays = ", ".join(f"${i}::{sql_type}[]" for i, sql_type in enumerate(types.values(), start=1))
        sets = [
            f"status = {c.status_sql}",
            "next_attempt_at = coalesce(r.next_attempt_at, q.next_attempt_at)",
            "lease_until = NULL",
            *(f"{name} = r.{name}" for name in c.stored),
            *c.set_clauses,
        ]
        return (
            f"UPDATE {c.table} q SET {', '.join(sets)}"
            f" FROM unnest({arrays}) AS r({', '.join(types)})"
            f" WHERE q.{c.key} = r.key AND q.attempts = r.attempt AND q.lease_until IS NOT NULL"
            f" RETURNING q.{c.key}"
        )
