"""Carrier mapping's reads: load the code tables into a CodeTable, and keep a snapshot of it fresh.

Queries name tables unqualified: the pool puts the service's own schema first on its
search_path (libs.platform.db.create_pool), which also lets tests run in a schema of their own.

Translation is on the hot path, so calls never wait on Postgres: they read an in-memory
CodeTable. A task owned by CodeTableSnapshot reloads it as soon as a writer's NOTIFY arrives on
the schema's channel, and every `refresh_s` seconds anyway in case a notification was lost. Each
reload also reads the change log past the version it had, so watchers hear of every change even
when notifications are missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings

import asyncpg

from carrier_mapping.domain.translate import CodeTable, ServiceCode
from carrier_mapping.storage.changes import ChangeFeed

log = logging.getLogger(__name__)

_SELECT_SYSTEMS = "SELECT system FROM systems"
_SELECT_CODES = """
    SELECT system, tenant_id, code, name, carrier, canonical_carrier, canonical_service, aliases
    FROM service_codes
"""
_SELECT_CHANGES = "SELECT version, tenant_id FROM mapping_changes WHERE version > $1 ORDER BY version"
_SELECT_VERSION = "SELECT coalesce(max(version), 0) FROM mapping_changes"
# A listener that lost its connection retries this often; the periodic refresh covers the gap.
_RELISTEN_S = 1.0
_STOP_S = 5.0


async def _first_of(*events: asyncio.Event, timeout_s: float | None = None) -> None:
    """Return once any of `events` is set, or after `timeout_s`."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def row_to_code(row) -> ServiceCode:
    """A service_codes row as a ServiceCode."""
    return ServiceCode(**{**row, "aliases": tuple(row["aliases"])})


async def load_code_table(pool: asyncpg.Pool, after_version: int | None = None) -> tuple[CodeTable, list]:
    """Read systems, codes and the change log from one consistent snapshot and index them.

    Returns the table and the changes (version, tenant_id) committed after `after_version`
    (none when it is None). Raises asyncpg errors when Postgres fails, and ValueError when the
    rows contradict each other (see CodeTable).
    """
    # Repeatable read: every SELECT sees the same commit, so a code is never loaded without the
    # system it was added with, and the version matches the rows.
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        systems = [row["system"] for row in await conn.fetch(_SELECT_SYSTEMS)]
        rows = await conn.fetch(_SELECT_CODES)
        version = await conn.fetchval(_SELECT_VERSION)
        changes = [] if after_version is None else await conn.fetch(_SELECT_CHANGES, after_version)
    return CodeTable(systems, (row_to_code(row) for row in rows), version), changes


class CodeTableSnapshot:
    """The current CodeTable, reloaded on each change notification and every `refresh_s` seconds.

    start() loads the first table before starting its tasks, and fails if it cannot, so the
    service never answers from an empty table. A failed reload is logged and retried while the
    previous table keeps answering. After each reload the changes it brought are published on
    `feed`. stop() closes the feed and lets the tasks finish their step (cancelling any still
    running after a few seconds); it is safe twice, and the last table stays readable. Works as an async context manager.
    """

    def __init__(self, pool: asyncpg.Pool, *, refresh_s: float, channel: str):
        self._pool = pool
        self._refresh_s = refresh_s
        self._channel = channel
        self._table: CodeTable | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.feed = ChangeFeed()

    @property
    def table(self) -> CodeTable:
        """The latest table; read it once per call so a whole batch is answered from one table."""
        table = self._table
        if table is None:
            raise RuntimeError("CodeTableSnapshot has not been started")
        return table

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopping.clear()
        table = await self.refresh()
        log.info("code table loaded", extra={"fields": {"codes": table.row_count, "version": table.version}})
        self._tasks = [
            asyncio.create_task(self._refresh_forever(), name="carrier-mapping-refresh"),
            asyncio.create_task(self._listen_forever(), name="carrier-mapping-listen"),
        ]

    async def refresh(self) -> CodeTable:
        """Load the tables now, swap the result in, publish the changes it brought; return it.

        Raises as load_code_table does, leaving the previous table in place.
        """
        async with self._lock:  # one reload at a time, so versions only grow
            previous = self._table
            table, changes = await load_code_table(self._pool, previous.version if previous else None)
            self._table, self._loaded_at = table, time.monotonic()
        for change in changes:
            self.feed.publish(change["version"], change["tenant_id"])
        return table

    async def catch_up(self, version: int) -> None:
        """Reload unless the table already reflects `version`, so a writer reads its own write."""
        if self.table.version < version:
            await self.refresh()

    async def stop(self) -> None:
        # The loops leave at their next wait rather than being cancelled mid-query: a cancelled
        # asyncpg query leaves its connection waiting on Postgres' cancel acknowledgement.
        tasks, self._tasks = self._tasks, []
        self.feed.close()
        self._stopping.set()
        if not tasks:
            return
        _, still_running = await asyncio.wait(tasks, timeout=_STOP_S)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=_STOP_S)

    async def __aenter__(self) -> CodeTableSnapshot:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def __del__(self, _warn=warnings.warn) -> None:
        # Default argument: module globals may already be gone when this runs at shutdown.
        if any(not task.done() for task in getattr(self, "_tasks", ())):
            _warn(f"CodeTableSnapshot was not stopped: {self!r}", ResourceWarning, source=self)

    async def _refresh_forever(self) -> None:
        while True:
            await _first_of(self._wake, self._stopping, timeout_s=self._refresh_s)
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:
                # Stale codes beat no codes: keep answering from the last good table. The
                # logged age says how stale answers have become while Postgres is unreachable.
                stale_s = round(time.monotonic() - self._loaded_at, 1)
                log.exception("code table refresh failed", extra={"fields": {"stale_s": stale_s}})
                await _first_of(self._stopping, timeout_s=min(self._refresh_s, _RELISTEN_S))

    async def _listen_forever(self) -> None:
        """Hold one pooled connection LISTENing on the channel; wake the reload on each NOTIFY."""
        while not self._stopping.is_set():
            try:
                await self._listen_once()
            except Exception:
                log.warning("change listener lost its connection; reconnecting", exc_info=True)
            await _first_of(self._stopping, timeout_s=_RELISTEN_S)

    async def _listen_once(self) -> None:
        lost = asyncio.Event()
        async with self._pool.acquire() as conn:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self._channel, self._on_notify)
            try:
                self._wake.set()  # catch up on anything committed while not listening
                await _first_of(lost, self._stopping)
            finally:
                if not conn.is_closed():
                    await conn.remove_listener(self._channel, self._on_notify)

    def _on_notify(self, _conn, _pid, _channel, _payload) -> None:
        self._wake.set()
