"""Telling every dispatch replica that a tenant's directory changed, so its cached look-ups go.

A change (a customer upserted, the directory's member types synced) is announced with a
Postgres NOTIFY on a channel named after dispatch's schema (`<schema>_directory`), the tenant id
as payload: replicas and tests sharing a database in other schemas never hear each other. Each
process runs one DirectoryChangeListener holding a pooled connection that LISTENs and drops the
tenant's entries from its DirectoryCache on each notification.

A notification is delivered only to connections listening at the time, so a listener that lost
its connection clears its whole cache when it listens again: whatever changed meanwhile is
forgotten with everything else. Between the loss and the reconnection the TTLs bound how stale
answers can be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from fulfillment_dispatch.directory.cache import DirectoryCache

log = logging.getLogger(__name__)

_RELISTEN_S = 1.0
_NOTIFY = "SELECT pg_notify($1, $2)"


def channel_name(schema: str) -> str:
    """The NOTIFY channel of dispatch's schema `schema`."""
    return f"{schema}_directory"


async def announce_directory_change(pool_or_conn, schema: str, tenant_id: str) -> None:
    """Tell every replica (this one too) to forget `tenant_id`'s cached look-ups.

    `pool_or_conn` is an asyncpg pool or connection on the database dispatch's schema `schema`
    lives in; on a connection inside a transaction the notice goes out at its commit.
    """
    await pool_or_conn.execute(_NOTIFY, channel_name(schema), tenant_id)


class DirectoryChangeListener:
    """A component: LISTENs on the schema's channel and invalidates the cache per notice; logs
    the cache's counters (CacheStats) when it stops."""

    def __init__(self, pool: asyncpg.Pool, schema: str, cache: DirectoryCache):
        self._pool = pool
        self._channel = channel_name(schema)
        self._cache = cache
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.listening = asyncio.Event()  # set while a connection listens (tests wait on it)

    async def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._listen_forever(), name="directory-change-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping.set()
        if task is not None:
            _, running = await asyncio.wait([task], timeout=5.0)
            for still in running:
                still.cancel()
        stats = self._cache.stats
        counters = {"hits": stats.hits, "misses": stats.misses, "coalesced": stats.coalesced}
        log.info("directory cache counters", extra={"fields": {**counters, "invalidations": stats.invalidations}})

    async def _listen_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._listen_once()
            except Exception:
                log.warning("directory change listener lost its connection; reconnecting", exc_info=True)
            self.listening.clear()
            await _wait(self._stopping, _RELISTEN_S)

    async def _listen_once(self) -> None:
        lost = asyncio.Event()
        async with self._pool.acquire() as conn:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self._channel, self._on_notify)
            try:
                self._cache.clear()  # notices sent while nobody listened are lost
                self.listening.set()
                await _first_of(lost, self._stopping)
            finally:
                if not conn.is_closed():
                    await conn.remove_listener(self._channel, self._on_notify)

    def _on_notify(self, _conn, _pid, _channel, tenant_id) -> None:
        self._cache.invalidate(str(tenant_id))


async def _first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
