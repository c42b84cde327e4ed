"""ComponentGroup: reverse-order stops that never hang on one stuck component."""

from __future__ import annotations

import asyncio

import pytest

from libs.platform import service
from libs.platform.service import ComponentGroup

pytestmark = pytest.mark.asyncio


class Recorder:
    def __init__(self, name: str, log: list[str], *, stuck: bool = False):
        self.name, self.log, self.stuck = name, log, stuck

    async def start(self) -> None:
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        if self.stuck:
            await asyncio.Event().wait()  # never set: a stop that would hang forever
        self.log.append(f"stop {self.name}")


async def test_components_stop_in_reverse_order():
    log: list[str] = []
    async with ComponentGroup([Recorder("pool", log), Recorder("server", log)]):
        pass
    assert log == ["start pool", "start server", "stop server", "stop pool"]


async def test_a_stuck_stop_is_abandoned_and_the_rest_still_stop(monkeypatch, caplog):
    monkeypatch.setattr(service, "STOP_TIMEOUT_S", 0.2)
    log: list[str] = []
    group = ComponentGroup([Recorder("pool", log), Recorder("listener", log, stuck=True), Recorder("server", log)])
    await group.start()

    await asyncio.wait_for(group.stop(), 5)

    assert log[-2:] == ["stop server", "stop pool"]
    assert any(r.message == "stop timed out" and r.fields["component"] == "Recorder" for r in caplog.records)
