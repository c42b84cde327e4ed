"""Carrier mapping's SQL: load the code tables into a CodeTable, and keep a snapshot of it fresh.

Queries name tables unqualified: the pool puts the service's own schema first on its
search_path (libs.platform.db.create_pool), which also lets tests run in a schema of their own.

Translation is on the hot path, so calls never wait on Postgres: they read an in-memory
CodeTable that a task owned by CodeTableSnapshot reloads every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings

import asyncpg

from carrier_mapping.domain.translate import CodeTable, ServiceCode

log = logging.getLogger(__name__)

_SELECT_SYSTEMS = "SELECT system FROM systems"
_SELECT_CODES = """
    SELECT system, tenant_id, code, name, carrier, canonical_carrier, canonical_service
    FROM service_codes
"""


async def load_code_table(pool: asyncpg.Pool) -> CodeTable:
    """Read systems and service codes from one consistent snapshot and index them.

    Raises asyncpg errors when Postgres fails, and ValueError when the rows contradict each
    other (see CodeTable).
    """
    # Repeatable read: both SELECTs see the same commit, so a code is never loaded without
    # the system it was added with.
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        systems = [row["system"] for row in await conn.fetch(_SELECT_SYSTEMS)]
        rows = await conn.fetch(_SELECT_CODES)
    return CodeTable(systems, (ServiceCode(**row) for row in rows))


class CodeTableSnapshot:
    """The current CodeTable, reloaded from Postgres every `refresh_s` seconds by a task it owns.

    start() loads the first table before starting the task, and fails if it cannot, so the
    service never answers from an empty table. A failed reload is logged and retried at the
    next interval while the previous table keeps answering. stop() cancels and awaits the
    task; it is safe twice, and the last table stays readable. Works as an async context manager.
    """

    def __init__(self, pool: asyncpg.Pool, *, refresh_s: float):
        self._pool = pool
        self._refresh_s = refresh_s
        self._table: CodeTable | None = None
        self._loaded_at = 0.0
        self._task: asyncio.Task | None = None

    @property
    def table(self) -> CodeTable:
        """The latest table; read it once per call so a whole batch is answered from one table."""
        table = self._table
        if table is None:
            raise RuntimeError("CodeTableSnapshot has not been started")
        return table

    async def start(self) -> None:
        if self._task is not None:
            return
        table = await self.refresh()
        log.info("code table loaded", extra={"fields": {"codes": table.row_count}})
        self._task = asyncio.create_task(self._refresh_forever(), name="carrier-mapping-refresh")

    async def refresh(self) -> CodeTable:
        """Load the tables now and swap the result in; return it.

        Raises as load_code_table does, leaving the previous table in place. Cancelling it
        before the load finishes also leaves the previous table.
        """
        table = await load_code_table(self._pool)
        self._table, self._loaded_at = table, time.monotonic()
        return table

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> CodeTableSnapshot:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def __del__(self, _warn=warnings.warn) -> None:
        # Default argument: module globals may already be gone when this runs at shutdown.
        task = getattr(self, "_task", None)
        if task is not None and not task.done():
            _warn(f"CodeTableSnapshot was not stopped: {self!r}", ResourceWarning, source=self)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:
                # Stale codes beat no codes: keep answering from the last good table. The
                # logged age says how stale answers have become while Postgres is unreachable.
                stale_s = round(time.monotonic() - self._loaded_at, 1)
                log.exception("code table refresh failed", extra={"fields": {"stale_s": stale_s}})
