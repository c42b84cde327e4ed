"""Tests of the token bucket and the keyed limiter, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from libs.connectors.base.ratelimit import KeyedRateLimiter, Priority, TokenBucket
from libs.connectors.base.testing import FakeClock

pytestmark = pytest.mark.asyncio


def make_bucket(clock: FakeClock, rate: float = 100, burst: int | None = None) -> TokenBucket:
    """The one valid bucket of this suite: 100 per minute, a minute's burst, fake time."""
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


async def test_a_full_bucket_allows_its_burst_without_waiting() -> None:
    clock = FakeClock()
    bucket = make_bucket(clock)
    for _ in range(100):
        await bucket.acquire()
    assert clock.sleeps == []


async def test_the_call_after_the_burst_waits_for_one_token() -> None:
    clock = FakeClock()
    bucket = make_bucket(clock)
    for _ in range(100):
        await bucket.acquire()
    await bucket.acquire()
    # 100 per minute refills one token every 0.6 s.
    assert clock.sleeps == [pytest.approx(0.6)]


async def test_tokens_refill_with_time() -> None:
    clock = FakeClock()
    bucket = make_bucket(clock, burst=2)
    await bucket.acquire()
    await bucket.acquire()
    clock.now += 1.2
    await bucket.acquire()
    await bucket.acquire()
    assert clock.sleeps == []


async def test_pause_holds_callers_until_the_deadline_then_restarts_slowly() -> None:
    clock = FakeClock()
    bucket = make_bucket(clock)
    bucket.pause_until(clock() + 5)
    await bucket.acquire()
    assert clock.sleeps == [pytest.approx(5.0), pytest.approx(0.6)]


async def test_waiters_are_served_in_arrival_order() -> None:
    clock = FakeClock()
    bucket = make_bucket(clock, burst=1)
    served: list[int] = []

    async def take(n: int) -> None:
        await bucket.acquire()
        served.append(n)

    await asyncio.gather(*(take(n) for n in range(5)))
    assert served == [0, 1, 2, 3, 4]


async def test_keys_have_separate_buckets() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(1, clock=clock, sleep=clock.sleep)
    await limiter.acquire("tenant-a")
    await limiter.acquire("tenant-b")
    assert clock.sleeps == []
    await limiter.acquire("tenant-a")
    assert clock.sleeps == [pytest.approx(60.0)]


async def test_pausing_one_key_leaves_the_others_alone() -> None:
    clock = FakeClock()
    limiter = KeyedRateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.pause_until("tenant-a", clock() + 10)
    await limiter.acquire("tenant-b")
    assert clock.sleeps == []


async def test_a_bucket_needs_a_positive_rate_and_room_for_one_call() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0)
    with pytest.raises(ValueError):
        TokenBucket(10, burst=0)


async def test_a_waiting_write_is_served_before_a_read_that_waited_longer() -> None:
    # Real time (a fake clock jumps to whichever sleeper runs first): a token every 0.1 s.
    bucket = TokenBucket(600, 2)
    await bucket.acquire()
    await bucket.acquire()  # empty now
    served: list[str] = []

    async def take(priority: Priority, name: str) -> None:
        await bucket.acquire(priority)
        served.append(name)

    read = asyncio.create_task(take(Priority.READ, "read"))
    await asyncio.sleep(0)  # the read queues first
    write = asyncio.create_task(take(Priority.WRITE, "write"))
    await asyncio.gather(read, write)
    assert served == ["write", "read"]


async def test_reads_alone_still_get_the_whole_rate() -> None:
    clock = FakeClock()
    bucket = make_bucket(clock, rate=60, burst=2)
    started = clock()
    for _ in range(10):
        await bucket.acquire(Priority.READ)
    # One token is kept for writes, so the first read takes one of two; then one a second.
    assert clock() - started == pytest.approx(9.0)
