"""Process lifecycle: start components in order, run until SIGTERM/SIGINT, stop them in reverse."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

# A component that has not stopped in this long is abandoned (and logged by name), so one stuck
# stop (a driver waiting forever on a cancelled query, say) never keeps a pod from exiting.
STOP_TIMEOUT_S = 20.0


class Component(Protocol):
    """Anything with an idempotent async start() and stop()."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ComponentGroup:
    """Starts components in order and stops the started ones in reverse order, even on failure."""

    def __init__(self, components: Sequence[Component]):
        self._components = list(components)
        self._started: list[Component] = []

    async def start(self) -> None:
        try:
            for component in self._components:
                await component.start()
                self._started.append(component)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await asyncio.wait_for(component.stop(), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error(
                    "stop timed out",
                    extra={"fields": {"component": type(component).__name__, "after_s": STOP_TIMEOUT_S}},
                )
            except Exception:
                log.exception("error while stopping", extra={"fields": {"component": type(component).__name__}})

    async def __aenter__(self) -> ComponentGroup:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


async def run_until_signalled(group: ComponentGroup) -> None:
    """Start `group`, log readiness, wait for SIGTERM or SIGINT, then stop it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with group:
        log.info("service ready")
        await stop.wait()
        log.info("service stopping")


C = TypeVar("C", bound=Component)


class LazyComponent(Generic[C]):
    """Builds its component on start(), once the components before it (a pool, say) are up."""

    def __init__(self, factory: Callable[[], C]):
        self._factory = factory
        self._component: C | None = None

    @property
    def started(self) -> bool:
        """True from start() until stop()."""
        return self._component is not None

    @property
    def component(self) -> C:
        """The built component; only while started."""
        if self._component is None:
            raise RuntimeError("component not started")
        return self._component

    async def start(self) -> None:
        if self._component is None:
            self._component = self._factory()
            await self._component.start()

    async def stop(self) -> None:
        component, self._component = self._component, None
        if component is not None:
            await component.stop()
