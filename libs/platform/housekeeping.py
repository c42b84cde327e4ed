"""Housekeeping: prune what a service only needs for a while, so its schema does not grow forever.

`processed_events` only has to outlive the chance of redelivery, which ends with the topic's
retention (7 days in deploy/topics.txt); rows older than the configured window are deleted in
small batches once an hour.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)


class Housekeeper:
    """Deletes processed-event records older than `retention_days`; start() and stop() it."""

    def __init__(self, pool_holder, *, retention_days: int = 8, every_s: float = 3600.0, batch: int = 10_000):
        self._pool_holder = pool_holder  # a PoolComponent: its pool exists once started
        self._retention_days = retention_days
        self._every_s = every_s
        self._batch = batch
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="housekeeping")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                removed = await self.prune(self._pool_holder.pool)
                if removed:
                    log.info("pruned processed events", extra={"fields": {"rows": removed}})
            except Exception:
                log.exception("housekeeping failed; will try again")
            await asyncio.sleep(self._every_s)

    async def prune(self, pool: asyncpg.Pool) -> int:
        """Delete expired processed-event records in batches; return how many went."""
        removed = 0
        while True:
            status = await pool.execute(
                "DELETE FROM processed_events WHERE ctid IN (SELECT ctid FROM processed_events"
                " WHERE processed_at < now() - make_interval(days => $1) LIMIT $2)",
                self._retention_days,
                self._batch,
            )
            count = int(status.split()[-1])
            removed += count
            if count < self._batch:
                return removed
