"""Rate budgets shared by a service's replicas: token buckets in the service's own schema.

A vendor counts requests per account (Commerce7: 100 a minute per tenant) however many
processes send them. A bucket per process lets N replicas send N times the limit, so the
bucket lives in Postgres (`rate_budgets`, platform migration 0004) and every replica takes its
tokens from the same row, under a row lock, on the database's clock.

The connectors' HttpTransport paces by any RateLimiter (libs/connectors/base/ratelimit.py);
SharedRateLimiter is the one a service wires in. Taking a token costs one short transaction,
which at the limits vendors set (requests a second, not thousands) is small beside the request
it guards. Within a process the waiters for one key and priority queue behind each other,
first come first served, so only one of each polls the database at a time. Writes go before
reads (libs/connectors/base/ratelimit.py, `reserve_for`): a read takes a token only when one is
left for a write, so on every replica a waiting create is served before a waiting read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg

from libs.connectors.base.ratelimit import Priority, reserve_for
from libs.platform.db import PgConnection
from libs.platform.metrics import RATE_BUDGET_REMAINING

PoolSource = Callable[[], asyncpg.Pool]
Sleep = Callable[[float], Awaitable[None]]

# Replicas that wait for the same next token would otherwise poll in lockstep and the same one
# could win each time; a little jitter lets each make progress.
_POLL_JITTER_S = 0.05


class SharedRateLimiter:
    """A RateLimiter whose budget per key is shared by every process on the same schema.

    Args:
        pool: returns the service's pool (called at each use, so it may be built before the
            pool is open).
        scope: the vendor, prefixed to keys so vendors never share a budget, e.g. "commerce7".
        rate_per_minute: sustained rate per key; must be > 0.
        burst: calls a key may make back to back (the bucket's size), at least 1.
        sleep: waits between polls; injectable for tests.
    """

    def __init__(
        self,
        pool: PoolSource,
        *,
        scope: str,
        rate_per_minute: float,
        burst: int,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._pool = pool
        self._scope = scope
        self.rate_per_second = rate_per_minute / 60.0
        self.capacity = float(burst)
        self._sleep = sleep
        self._queues: dict[tuple[str, Priority], asyncio.Lock] = {}
        self._known: set[str] = set()

    async def acquire(self, key: str, priority: Priority = Priority.WRITE) -> None:
        """Wait until the shared budget allows one request for `key`, then take it; a READ
        leaves one token for a write.

        Cancellation while waiting takes no token. Database errors propagate (asyncpg's), so
        the caller's attempt fails and is retried later, rather than sending unpaced.
        """
        reserve = reserve_for(priority, self.capacity)
        async with self._queues.setdefault((key, priority), asyncio.Lock()):
            while True:
                wait_s = await self._take(self._scoped(key), reserve)
                if wait_s is None:
                    return
                await self._sleep(wait_s + random.uniform(0, _POLL_JITTER_S))

    async def pause(self, key: str, seconds: float) -> None:
        """Hold every replica's requests for `key` for `seconds` (after a 429), emptying the bucket."""
        async with self._pool().acquire() as conn:
            await self._ensure(conn, self._scoped(key))
            await conn.execute(
                "UPDATE rate_budgets SET tokens = 0,"
                " refreshed_at = greatest(refreshed_at, now() + make_interval(secs => $2)) WHERE key = $1",
                self._scoped(key),
                max(0.0, seconds),
            )

    def _scoped(self, key: str) -> str:
        return f"{self._scope}:{key}"

    async def _take(self, key: str, reserve: float = 0.0) -> float | None:
        """Take one token for `key` if there is one beyond `reserve`; else return how long to
        wait for it."""
        async with self._pool().acquire() as conn:
            await self._ensure(conn, key)
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT tokens, refreshed_at, now() AS now FROM rate_budgets WHERE key = $1 FOR UPDATE", key
                )
                assert row is not None, "_ensure inserted the key's row, and rows are never deleted"
                tokens, refreshed_at = refill(
                    row["tokens"], row["refreshed_at"], row["now"], self.capacity, self.rate_per_second
                )
                granted = tokens >= 1.0 + reserve
                if granted:
                    tokens -= 1.0
                await conn.execute(
                    "UPDATE rate_budgets SET tokens = $2, refreshed_at = $3 WHERE key = $1", key, tokens, refreshed_at
                )
        RATE_BUDGET_REMAINING.labels(self._scope).set(tokens)  # the vendor's budget, never the tenant's key
        if granted:
            return None
        paused_s = max(0.0, (refreshed_at - row["now"]).total_seconds())
        return paused_s + (1.0 + reserve - tokens) / self.rate_per_second

    async def _ensure(self, conn: PgConnection, key: str) -> None:
        # A new key starts with a full bucket; the row then lives as long as the schema.
        if key not in self._known:
            await conn.execute(
                "INSERT INTO rate_budgets (key, tokens) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                key,
                self.capacity,
            )
            self._known.add(key)


def refill(
    tokens: float, refreshed_at: datetime, now: datetime, capacity: float, rate_per_second: float
) -> tuple[float, datetime]:
    """Return the bucket's content at `now` and the time it now counts from.

    `refreshed_at` may be ahead of `now`: during a pause after a 429, or when another replica's
    transaction, started later than this one, refreshed the bucket first. Nothing accrues until
    then, and the time counted from never moves back, so no interval is ever counted twice.
    """
    elapsed = max(0.0, (now - refreshed_at).total_seconds())
    return min(capacity, tokens + elapsed * rate_per_second), max(refreshed_at, now)
