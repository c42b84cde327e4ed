"""A polling worker: runs a unit of work repeatedly, right away when woken, else on an interval.

Dispatch and writeback keep their pending work in Postgres (claimed with leases); a worker drains
it. Waking on new work gives low latency, and the interval picks up retries that fall due and
work a crashed replica left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from libs.platform.outage import OutageLog

log = logging.getLogger(__name__)


class PollingWorker:
    """Calls `run_once` (which returns how many items it handled) until stopped."""

    def __init__(self, name: str, run_once: Callable[[], Awaitable[int]], *, idle_s: float = 1.0):
        self._name = name
        self._run_once = run_once
        self._idle_s = idle_s
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """Ask for a pass now (new work was committed)."""
        self._wakeup.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Cancel the loop and wait for it; claimed work is resumed after its lease expires. Safe twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        outage = OutageLog(log, "worker pass", fields={"worker": self._name})
        while True:
            self._wakeup.clear()
            try:
                handled = await self._run_once()
                failures = 0
                outage.recovered()
            except Exception as exc:
                failures += 1
                outage.failed(exc)
                await asyncio.sleep(min(0.2 * 2**failures, 10.0))
                continue
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._idle_s)
