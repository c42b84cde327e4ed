"""The look-up cache in front of a customer directory: bounded, timed, one call per key at a time.

Answers that name somebody live `ttl_s` (ORDERSYNC_DISPATCH_DIRECTORY_CACHE_TTL_S, 300 s);
answers naming nobody `negative_ttl_s` (30 s), so a guest added in the directory by other means
shows up soon. Errors are never cached: a directory that could not answer is asked again by the
next look-up. Both caches are cachetools TTLCaches of at most `max_entries` each (least recently
used first out), per process.

Concurrent misses for one key share one directory call (single flight): the first starts it as
a task, the others await the same task (shielded, so one caller's cancelled RPC does not cancel
the others' answer).

`invalidate(tenant_id)` drops the tenant's answers and detaches its calls in flight; a call that
started before the invalidation still answers its own waiters but is not stored, so an answer
read before a change never outlives it (the tenant's generation tells).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache


@dataclass
class CacheStats:
    """Counters since the process started: look-ups answered from the cache or not."""

    hits: int = 0
    misses: int = 0  # directory calls made
    coalesced: int = 0  # look-ups that waited on another's call in flight instead
    invalidations: int = 0

    @property
    def hit_ratio(self) -> float:
        asked = self.hits + self.misses + self.coalesced
        return self.hits / asked if asked else 0.0


Key = tuple[str, Hashable]  # (tenant id, the rest of the query)


class DirectoryCache:
    """Answers by key, filled by the loader given to `get`; see the module docstring."""

    def __init__(
        self,
        *,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        max_entries: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ):
        self._enabled = ttl_s > 0
        size = max(max_entries, 1)
        self._found: TTLCache = TTLCache(maxsize=size, ttl=max(ttl_s, 1e-9), timer=timer)
        self._nobody: TTLCache = TTLCache(maxsize=size, ttl=max(min(negative_ttl_s, ttl_s), 1e-9), timer=timer)
        self._in_flight: dict[Key, asyncio.Task] = {}
        self._generations: dict[str, int] = {}
        self.stats = CacheStats()

    async def get(self, key: Key, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached answer for `key`, else `load()`'s (stored, unless the cache is off)."""
        for cache in (self._found, self._nobody):
            answer = cache.get(key, _MISSING)
            if answer is not _MISSING:
                self.stats.hits += 1
                return answer
        task = self._in_flight.get(key)
        if task is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(task)
        self.stats.misses += 1
        # The generation now, not when the task first runs: an invalidation in between counts.
        task = asyncio.ensure_future(self._load(key, load, self._generations.get(key[0], 0)))
        # Its waiters may all be gone (cancelled RPCs): the error is then nobody's to hear.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._in_flight[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: Key, load: Callable[[], Awaitable[Any]], generation: int) -> Any:
        try:
            answer = await load()
        finally:
            if self._in_flight.get(key) is asyncio.current_task():
                del self._in_flight[key]
        if self._enabled and self._generations.get(key[0], 0) == generation:
            (self._found if answer else self._nobody)[key] = answer
        return answer

    def invalidate(self, tenant_id: str) -> None:
        """Forget the tenant's answers, here and in calls already under way."""
        self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
        self.stats.invalidations += 1
        for store in (self._found, self._nobody, self._in_flight):
            for key in [k for k in list(store.keys()) if k[0] == tenant_id]:
                store.pop(key, None)

    def clear(self) -> None:
        """Forget every answer (a listener that may have missed notifications calls this)."""
        for tenant_id in {key[0] for key in [*self._found.keys(), *self._nobody.keys(), *self._in_flight]}:
            self.invalidate(tenant_id)

    def __len__(self) -> int:
        return len(self._found) + len(self._nobody)


_MISSING = object()
