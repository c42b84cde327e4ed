"""Readiness: cheap periodic probes of what a service needs (Postgres, Kafka), one truth for all checks.

gRPC health (Check and Watch) and HTTP /readyz both answer from one `HealthMonitor`, so they
always agree: a service that cannot reach its database or its broker says NOT_SERVING (503) until
it can again. Liveness (/livez) only says the process answers; restarting a process because a
dependency is down would not bring the dependency back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from libs.platform.outage import OutageLog

log = logging.getLogger(__name__)

HealthListener = Callable[[bool], Awaitable[None]]


@dataclass(frozen=True)
class Probe:
    """One dependency check: `check()` returns when the dependency answers, raises when it does not."""

    name: str
    check: Callable[[], Awaitable[object]]


def postgres_probe(pool: Callable[[], asyncpg.Pool]) -> Probe:
    """`SELECT 1` on the service's pool (given as a getter: the pool exists only once started)."""
    return Probe("postgres", lambda: pool().fetchval("SELECT 1"))


def kafka_probe(producer: Callable[[], AIOKafkaProducer]) -> Probe:
    """A metadata round trip to the brokers through the service's producer (given as a getter)."""
    return Probe("kafka", lambda: producer().client.fetch_all_metadata())


class HealthMonitor:
    """Runs every probe every `interval_s`; `serving` is true while all of them pass.

    start() probes once before returning, so servers started after it answer the truth from their
    first request. Listeners are called with the new state on every change.
    """

    def __init__(self, probes: Sequence[Probe], *, interval_s: float = 5.0, timeout_s: float = 3.0):
        self._probes = list(probes)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._outages = {p.name: OutageLog(log, f"health probe {p.name}") for p in self._probes}
        self._listeners: list[HealthListener] = []
        self._task: asyncio.Task | None = None
        self.serving = False

    def subscribe(self, listener: HealthListener) -> None:
        """Call `listener(serving)` on every change from now on."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: HealthListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def start(self) -> None:
        if self._task is None:
            await self.check_now()
            self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def stop(self) -> None:
        """Stop probing. Safe twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def check_now(self) -> bool:
        """Run every probe once, update `serving` (telling listeners if it changed) and return it."""
        results = await asyncio.gather(*(self._probe(p) for p in self._probes))
        serving = all(results)
        if serving != self.serving:
            self.serving = serving
            # Becoming ready is routine (every start); becoming unready is what an operator looks for.
            level = logging.INFO if serving else logging.WARNING
            log.log(level, "health changed", extra={"fields": {"serving": serving}})
            for listener in list(self._listeners):
                await listener(serving)
        return serving

    async def _probe(self, probe: Probe) -> bool:
        try:
            await asyncio.wait_for(probe.check(), self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            self._outages[probe.name].failed(exc)
            return False
        self._outages[probe.name].recovered()
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check_now()
            except Exception:
                log.exception("health listener failed")
