"""The leased work queue on real Postgres: claims, lease expiry, fenced late results, the status
expression, the activity log, and the retry delay's bounds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from libs.platform.work_queue import QueueTable, WorkQueue, retry_delay

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SCHEMA = """
CREATE TABLE jobs (
    job_id          text        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    status          text        NOT NULL,
    wanted          text        NOT NULL DEFAULT '',
    done            text        NOT NULL DEFAULT '',
    note            text        NOT NULL DEFAULT '',
    attempts        integer     NOT NULL DEFAULT 0,
    lease_until     timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE job_activity (
    id        bigserial PRIMARY KEY,
    order_id  text      NOT NULL,
    tenant_id text      NOT NULL,
    kind      text      NOT NULL,
    message   text      NOT NULL
);
"""

# Like writeback's queue: a job done while its wanted state moved on goes back to pending.
JOBS = WorkQueue(
    QueueTable(
        table="jobs",
        key="job_id",
        due_statuses=("pending", "retry_wait"),
        returned=("tenant_id", "wanted"),
        results={"done": "text", "note": "text"},
        stored=("done",),
        set_clauses=("note = q.note || r.note",),
        status_sql="CASE WHEN r.status = 'done' AND q.wanted <> r.done THEN 'pending' ELSE r.status END",
        activity_table="job_activity",
    )
)


@dataclass(frozen=True)
class JobResult:
    job_id: str
    attempt: int
    status: str
    done: str = ""
    note: str = ""
    next_attempt_at: datetime | None = None
    tenant_id: str = "acme"
    activity: str = ""


@pytest_asyncio.fixture
async def pool(database):
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    await pool.execute(SCHEMA)
    yield pool
    await pool.close()


async def add(pool, *job_ids: str, status: str = "pending", wanted: str = "v1", due_in_s: float = 0) -> None:
    for job_id in job_ids:
        await pool.execute(
            "INSERT INTO jobs (job_id, tenant_id, status, wanted, next_attempt_at)"
            " VALUES ($1, 'acme', $2, $3, now() + make_interval(secs => $4))",
            job_id,
            status,
            wanted,
            due_in_s,
        )


async def record(pool, *results: JobResult) -> set[str]:
    async with pool.acquire() as conn, conn.transaction():
        return await JOBS.record(conn, results)


@pytest.mark.asyncio
async def test_a_claim_takes_only_due_rows_of_the_due_statuses_and_counts_the_attempt(pool):
    await add(pool, "due")
    await add(pool, "later", due_in_s=3600)
    await add(pool, "finished", status="done")

    claimed = await JOBS.claim(pool, 10, lease_s=30)

    assert [(r["job_id"], r["attempts"], r["tenant_id"], r["wanted"]) for r in claimed] == [("due", 1, "acme", "v1")]


@pytest.mark.asyncio
async def test_a_claim_takes_at_most_its_limit_oldest_due_first(pool):
    for n in range(5):
        await add(pool, f"j{n}", due_in_s=-100 + n)

    claimed = await JOBS.claim(pool, 3, lease_s=30)

    assert [r["job_id"] for r in claimed] == ["j0", "j1", "j2"]


@pytest.mark.asyncio
async def test_concurrent_claims_never_share_a_row(pool):
    await add(pool, *[f"j{n}" for n in range(40)])

    claims = await asyncio.gather(*(JOBS.claim(pool, 15, lease_s=30) for _ in range(4)))

    taken = [r["job_id"] for claim in claims for r in claim]
    assert sorted(taken) == sorted(f"j{n}" for n in range(40))


@pytest.mark.asyncio
async def test_a_leased_row_is_claimed_again_only_after_its_lease_runs_out(pool):
    await add(pool, "j")
    assert [r["attempts"] for r in await JOBS.claim(pool, 10, lease_s=0.5)] == [1]
    assert await JOBS.claim(pool, 10, lease_s=0.5) == []

    await asyncio.sleep(0.6)

    assert [r["attempts"] for r in await JOBS.claim(pool, 10, lease_s=30)] == [2]


@pytest.mark.asyncio
async def test_a_result_is_stored_releases_the_lease_and_is_logged(pool):
    await add(pool, "j")
    await JOBS.claim(pool, 10, lease_s=30)
    retry_at = datetime.now(UTC) + timedelta(minutes=5)

    stored = await record(
        pool, JobResult("j", 1, "retry_wait", note="busy", next_attempt_at=retry_at, activity="try 1")
    )

    row = await pool.fetchrow("SELECT status, note, lease_until, next_attempt_at FROM jobs")
    assert stored == {"j"}
    assert (row["status"], row["note"], row["lease_until"]) == ("retry_wait", "busy", None)
    assert abs(row["next_attempt_at"] - retry_at) < timedelta(milliseconds=1)
    assert [tuple(r) for r in await pool.fetch("SELECT order_id, kind, message FROM job_activity")] == [
        ("j", "retry_wait", "try 1")
    ]


@pytest.mark.asyncio
async def test_a_late_result_of_an_attempt_whose_lease_was_taken_over_is_dropped(pool):
    await add(pool, "j")
    await JOBS.claim(pool, 10, lease_s=0.1)
    await asyncio.sleep(0.2)
    await JOBS.claim(pool, 10, lease_s=30)  # attempt 2 takes over

    assert await record(pool, JobResult("j", 2, "done", done="v1", activity="by 2")) == {"j"}
    assert await record(pool, JobResult("j", 1, "failed", activity="by 1")) == set()

    row = await pool.fetchrow("SELECT status, done FROM jobs")
    assert tuple(row) == ("done", "v1")
    assert [r["message"] for r in await pool.fetch("SELECT message FROM job_activity ORDER BY id")] == ["by 2"]


@pytest.mark.asyncio
async def test_a_result_without_a_lease_is_dropped(pool):
    await add(pool, "j")
    await JOBS.claim(pool, 10, lease_s=30)
    assert await record(pool, JobResult("j", 1, "done", done="v1")) == {"j"}

    assert await record(pool, JobResult("j", 1, "failed")) == set()  # recorded twice: the second is late

    assert await pool.fetchval("SELECT status FROM jobs") == "done"


@pytest.mark.asyncio
async def test_the_status_expression_keeps_a_row_pending_when_its_wanted_state_moved_on(pool):
    await add(pool, "moved", "same", wanted="v1")
    await JOBS.claim(pool, 10, lease_s=30)
    await pool.execute("UPDATE jobs SET wanted = 'v2' WHERE job_id = 'moved'")

    await record(pool, JobResult("moved", 1, "done", done="v1"), JobResult("same", 1, "done", done="v1"))

    rows = {r["job_id"]: (r["status"], r["done"]) for r in await pool.fetch("SELECT job_id, status, done FROM jobs")}
    assert rows == {"moved": ("pending", "v1"), "same": ("done", "v1")}


def test_a_table_name_that_is_not_an_identifier_is_refused():
    with pytest.raises(ValueError, match="not usable as SQL names"):
        QueueTable(table="jobs; DROP TABLE x", key="job_id", due_statuses=("pending",), returned=(), activity_table="a")


def test_the_retry_delay_doubles_with_jitter_and_is_capped():
    for _ in range(200):
        assert timedelta(seconds=1.5) <= retry_delay(1) <= timedelta(seconds=2)
        assert timedelta(seconds=6) <= retry_delay(3) <= timedelta(seconds=8)
        assert timedelta(seconds=225) <= retry_delay(30) <= timedelta(seconds=300)
        assert retry_delay(4, base_s=1.0, cap_s=5.0) <= timedelta(seconds=5)
    assert len({retry_delay(5) for _ in range(20)}) > 1, "the delay is jittered"
