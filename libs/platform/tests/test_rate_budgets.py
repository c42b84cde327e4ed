"""Rate budgets on real Postgres: two limiters (two replicas) on one schema share one budget."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from libs.connectors.base.ratelimit import Priority
from libs.platform.db import create_pool, migrate
from libs.platform.rate_budgets import SharedRateLimiter, refill

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

NO_SERVICE_MIGRATIONS = Path(__file__).resolve().parents[3] / "tests/integration/no-migrations"
RATE_PER_MINUTE, BURST = 600, 3  # ten a second: a test sees many windows in a few seconds
RUN_S = 3.0


@pytest_asyncio.fixture
async def pools(database):
    """Two pools on one schema, as two replicas of a service have."""
    await migrate(database, "replicated", NO_SERVICE_MIGRATIONS)
    first, second = await create_pool(database, "replicated", 2), await create_pool(database, "replicated", 2)
    yield first, second
    await second.close()
    await first.close()


def limiter(pool) -> SharedRateLimiter:
    return SharedRateLimiter(lambda: pool, scope="acme", rate_per_minute=RATE_PER_MINUTE, burst=BURST)


async def send_for(limiter: SharedRateLimiter, key: str, until: float, grants: list[float]) -> None:
    """Take tokens as fast as the limiter gives them, recording when each was granted."""
    while time.monotonic() < until:
        await limiter.acquire(key)
        grants.append(time.monotonic())


def most_in_any_window(grants: list[float], window_s: float) -> int:
    times = sorted(grants)
    return max(sum(1 for t in times[i:] if t < start + window_s) for i, start in enumerate(times))


async def test_two_replicas_together_keep_to_one_budget_and_both_make_progress(pools):
    first, second = limiter(pools[0]), limiter(pools[1])
    a: list[float] = []
    b: list[float] = []
    until = time.monotonic() + RUN_S
    await asyncio.gather(send_for(first, "tenant", until, a), send_for(second, "tenant", until, b))

    rate_s = RATE_PER_MINUTE / 60
    # A token bucket allows at most its burst plus what refills in the window; one token of
    # slack covers the moment a grant is timed here rather than in the database.
    assert most_in_any_window(a + b, 1.0) <= BURST + rate_s * 1.0 + 1
    assert len(a) + len(b) <= BURST + rate_s * (RUN_S + 0.5) + 1
    assert len(a) >= 5 and len(b) >= 5, f"both replicas make progress: {len(a)} and {len(b)}"


async def test_keys_and_scopes_have_budgets_of_their_own(pools):
    acme, other_vendor = (
        limiter(pools[0]),
        SharedRateLimiter(lambda: pools[1], scope="other", rate_per_minute=1, burst=1),
    )
    for _ in range(BURST):
        await acme.acquire("tenant-a")
        await acme.acquire("tenant-b")
    await other_vendor.acquire("tenant-a")
    rows = dict(await pools[0].fetch("SELECT key, tokens FROM rate_budgets"))
    assert set(rows) == {"acme:tenant-a", "acme:tenant-b", "other:tenant-a"}


async def test_a_429_seen_by_one_replica_holds_the_other_back(pools):
    first, second = limiter(pools[0]), limiter(pools[1])
    await first.acquire("tenant")
    await first.pause("tenant", 1.0)
    started = time.monotonic()
    await second.acquire("tenant")
    assert time.monotonic() - started >= 0.9, "the pause is shared"


async def test_refill_never_counts_time_before_the_bucket_was_last_refreshed():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert refill(0.5, now - timedelta(seconds=1), now, 3.0, 1.0) == (1.5, now)
    assert refill(2.5, now - timedelta(seconds=60), now, 3.0, 1.0) == (3.0, now)
    paused_until = now + timedelta(seconds=5)
    assert refill(0.0, paused_until, now, 3.0, 1.0) == (0.0, paused_until)


async def test_on_every_replica_a_waiting_write_goes_before_waiting_reads(pools):
    reader, writer = limiter(pools[0]), limiter(pools[1])
    for _ in range(BURST):
        await writer.acquire("tenant")  # the bucket is empty: everyone waits for the refill
    order: list[str] = []

    async def take(who: SharedRateLimiter, priority: Priority, name: str) -> None:
        await who.acquire("tenant", priority)
        order.append(name)

    reads = [asyncio.create_task(take(reader, Priority.READ, f"read-{i}")) for i in range(2)]
    await asyncio.sleep(0.01)  # the reads wait first, on the other replica
    await take(writer, Priority.WRITE, "write")
    await asyncio.gather(*reads)
    assert order[0] == "write", order
    assert sorted(order[1:]) == ["read-0", "read-1"], "the reads are served after it"
