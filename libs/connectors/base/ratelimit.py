"""Client-side rate limiting: the interface HttpTransport paces by, a token bucket, and one bucket
per key (e.g. per Commerce7 tenant) for a single process.

Writes go before reads: a read takes a token only when one more is left for a write (the
bucket keeps a reserve of one), and reads queue apart from writes. So while creates wait,
every token goes to them, and with no write waiting reads still get the whole rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Protocol

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Priority(Enum):
    """Which requests a budget serves first: writes (creating orders) before reads (polling)."""

    WRITE = "write"
    READ = "read"


def reserve_for(priority: Priority, capacity: float) -> float:
    """Tokens a request of `priority` must leave in a bucket of `capacity`: one for a waiting
    write when a read takes (none in a bucket of one, which could then never serve a read)."""
    return 1.0 if priority is Priority.READ and capacity >= 2 else 0.0


class RateLimiter(Protocol):
    """What HttpTransport needs of a rate limiter, keyed by the vendor's unit of counting.

    A vendor counts requests per account however many processes send them, so a service with
    several replicas passes an implementation whose budget all of them share (the platform's
    Postgres-backed one); KeyedRateLimiter holds within one process only.
    """

    async def acquire(self, key: str, priority: Priority = Priority.WRITE) -> None:
        """Wait until one request for `key` is allowed, then take it; a READ leaves one token
        for a write (reserve_for). Cancellation takes none."""
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Hold every request for `key` for `seconds` (the vendor answered 429), then resume slowly."""
        ...


class TokenBucket:
    """Allows `burst` calls at once, then `rate_per_minute` calls per minute, refilled smoothly.

    Waiters of one priority are served first come, first served (an asyncio.Lock is FIFO), so
    a steady stream of new callers cannot starve an old one; reads queue apart and leave a
    token for writes (reserve_for).

    Args:
        rate_per_minute: sustained rate; must be > 0.
        burst: bucket size; defaults to one minute's worth (`rate_per_minute`).
        clock: monotonic seconds; injectable so tests control time.
        sleep: coroutine that waits; injectable so tests do not sleep for real.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.rate_per_second = rate_per_minute / 60.0
        self.capacity = float(burst if burst is not None else rate_per_minute)
        if self.capacity < 1:
            raise ValueError("burst must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._paused_until = 0.0
        self._locks = {priority: asyncio.Lock() for priority in Priority}

    def pause_until(self, deadline: float) -> None:
        """Make every caller wait until the monotonic time `deadline` (used after a 429).

        The bucket is also emptied: the vendor's window is evidently full, so the calls
        after the pause restart at the sustained rate rather than as a burst.
        """
        if deadline > self._paused_until:
            self._paused_until = deadline
            self._tokens = 0.0
            self._updated = max(self._updated, deadline)

    async def acquire(self, priority: Priority = Priority.WRITE) -> None:
        """Wait until one call is allowed, then take it.

        Cancellation while waiting takes no token and releases the queue position.
        """
        reserve = reserve_for(priority, self.capacity)
        async with self._locks[priority]:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                if now > self._updated:
                    elapsed = now - self._updated
                    self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_second)
                    self._updated = now
                if self._tokens >= 1.0 + reserve:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 + reserve - self._tokens) / self.rate_per_second)


class KeyedRateLimiter:
    """One TokenBucket per key, created on first use; share one instance per process and vendor.

    Commerce7 counts 100 requests per minute per tenant across all callers, so every client of
    a tenant in this process must draw from the same bucket: pass the same limiter to each.
    It knows nothing of other processes: N replicas each using one would send N times the
    budget, so a replicated service wires in a shared RateLimiter instead.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self.clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str) -> TokenBucket:
        """Return the bucket for `key`, creating it full."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_minute, self.burst, clock=self.clock, sleep=self._sleep)
            self._buckets[key] = bucket
        return bucket

    async def acquire(self, key: str, priority: Priority = Priority.WRITE) -> None:
        """Wait until one call for `key` is allowed, then take it."""
        await self.bucket(key).acquire(priority)

    def pause_until(self, key: str, monotonic_deadline: float) -> None:
        """Hold every caller for `key` until `monotonic_deadline` (in this limiter's clock)."""
        self.bucket(key).pause_until(monotonic_deadline)

    async def pause(self, key: str, seconds: float) -> None:
        """Hold every caller for `key` for `seconds` from now (RateLimiter)."""
        self.pause_until(key, self.clock() + seconds)
