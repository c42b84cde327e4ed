"""Outages of Postgres and Kafka under running services: health tells the truth, logs stay readable.

The five services run as processes on a PostgreSQL and a Kafka of this module's own (started
with deploy/local/infra.sh on free ports and a run directory of their own), because these tests
stop and restart them; the session's shared infrastructure is never touched.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.platform.grpc_server import LIVENESS
from tests.system.stack import Stack, TenantSpec, free_port

REPO = Path(__file__).resolve().parents[2]
PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.integration, pytest.mark.timeout(400)]


class OwnInfra:
    """A PostgreSQL and a Kafka for this module only, which its tests may stop and start."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.pg_port, self.kafka_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "ORDERSYNC_RUN_DIR": str(run_dir),
            "ORDERSYNC_PG_PORT": str(self.pg_port),
            "ORDERSYNC_KAFKA_PORT": str(self.kafka_port),
            "ORDERSYNC_KAFKA_CONTROLLER_PORT": str(free_port()),
            "ORDERSYNC_PG_FSYNC": "off",
        }
        self.pg_dsn = f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"
        self.kafka_bootstrap = f"127.0.0.1:{self.kafka_port}"

    def _infra(self, *args: str) -> None:
        result = subprocess.run(
            ["bash", str(REPO / "deploy/local/infra.sh"), *args], env=self.env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"infra.sh {' '.join(args)} failed:\n{result.stdout}{result.stderr}"

    def up(self) -> None:
        """Start whatever of the two is not running."""
        self._infra("up")

    def down(self) -> None:
        self._infra("down", "--wipe")

    def stop_postgres(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                PG_CTL,
                "-D",
                str(self.run_dir / "pg/data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            check=True,
            capture_output=True,
            cwd="/",
        )

    def stop_kafka(self) -> None:
        pid = int((self.run_dir / "kafka/kafka.pid").read_text())
        os.kill(pid, 15)
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
                return
            time.sleep(0.1)
        raise AssertionError("own Kafka did not stop within 20 s")


@pytest.fixture(scope="module")
def own_infra(tmp_path_factory) -> Iterator[OwnInfra]:
    infra = OwnInfra(tmp_path_factory.mktemp("own-infra"))
    try:
        infra.up()
        yield infra
    finally:
        infra.down()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(own_infra, tmp_path_factory):
    spec = TenantSpec.commerce7_vinoshipper("acme", chosen_states=["CA"], products=["SKU-CAB"], licensed_states=["CA"])
    run_dir = tmp_path_factory.mktemp("outage-stack")
    async with Stack(
        [spec], run_dir=run_dir, pg_dsn=own_infra.pg_dsn, kafka_bootstrap=own_infra.kafka_bootstrap
    ) as stack:
        yield stack


async def check(stack: Stack, name: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(stack.grpc_address(name)) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
        return reply.status


async def wait_for_status(stack: Stack, status: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = {name: await check(stack, name) for name in stack.services}
        if all(s == status for s in statuses.values()):
            return
        assert time.monotonic() < deadline, f"health not {status} after {timeout_s} s: {statuses}"
        await asyncio.sleep(0.5)


class Watcher:
    """A Health/Watch stream kept open on one service, collecting every status it sends."""

    def __init__(self, stack: Stack, name: str):
        self._channel = grpc.aio.insecure_channel(stack.grpc_address(name))
        self._call = health_pb2_grpc.HealthStub(self._channel).Watch(health_pb2.HealthCheckRequest())
        self.seen: list[int] = []
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for reply in self._call:
            self.seen.append(reply.status)

    async def wait_for(self, status: int, *, since: int = 0, timeout_s: float = 60.0) -> int:
        """Wait until the stream sent `status` at or after position `since`; return how many it sent."""
        deadline = time.monotonic() + timeout_s
        while status not in self.seen[since:]:
            if self._task.done():
                self._task.result()  # a stream that ended says why
                raise AssertionError(f"Watch ended having sent {self.seen}")
            assert time.monotonic() < deadline, f"Watch sent {self.seen}, never {status}"
            await asyncio.sleep(0.2)
        return len(self.seen)

    async def close(self) -> None:
        self._call.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._channel.close()


async def readyz(stack: Stack, name: str) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{stack.http_url(name)}/readyz")).status_code


async def livez(stack: Stack, name: str) -> int:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{stack.http_url(name)}/livez")).status_code


async def test_health_turns_not_serving_while_the_database_is_down_and_back_when_it_returns(stack, own_infra):
    watchers = {name: Watcher(stack, name) for name in stack.services}
    try:
        for watcher in watchers.values():
            await watcher.wait_for(SERVING)
        assert {await readyz(stack, n) for n in ("order_intake", "fulfillment_dispatch")} == {200}

        await asyncio.to_thread(own_infra.stop_postgres)
        await wait_for_status(stack, NOT_SERVING)
        sent = {name: await watcher.wait_for(NOT_SERVING) for name, watcher in watchers.items()}
        assert {await readyz(stack, n) for n in ("order_intake", "fulfillment_dispatch")} == {503}
        assert {await livez(stack, n) for n in ("order_intake", "fulfillment_dispatch")} == {200}
        # Liveness (the Kubernetes liveness probe's health name) stays SERVING: a restart would not help.
        assert {name: await check(stack, name, LIVENESS) for name in stack.services} == dict.fromkeys(
            stack.services, SERVING
        )

        await asyncio.to_thread(own_infra.up)
        await wait_for_status(stack, SERVING)
        for name, watcher in watchers.items():
            await watcher.wait_for(SERVING, since=sent[name])
        assert {await readyz(stack, n) for n in ("order_intake", "fulfillment_dispatch")} == {200}
    finally:
        for watcher in watchers.values():
            await watcher.close()


def error_lines(path: Path, offset: int) -> list[dict]:
    with path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [e for e in entries if e.get("level") in ("ERROR", "CRITICAL")]


async def test_a_kafka_outage_is_logged_per_state_change_not_per_retry(stack, own_infra):
    offsets = {name: s.log_path.stat().st_size for name, s in stack.services.items()}
    await asyncio.to_thread(own_infra.stop_kafka)
    await asyncio.sleep(20)
    during = {name: error_lines(stack.services[name].log_path, offsets[name]) for name in stack.services}
    health_during = {name: await check(stack, name) for name in ("compliance_routing", "carrier_mapping")}
    await asyncio.to_thread(own_infra.up)
    await wait_for_status(stack, SERVING)

    # Each kind of failure once per reminder period (30 s), not once per retry: the unfixed
    # services wrote thousands of lines in 20 s.
    counts = {name: len(lines) for name, lines in during.items()}
    assert all(count <= 40 for count in counts.values()), counts
    # Health said so too, on the services that need Kafka (carrier mapping does not).
    assert health_during == {"compliance_routing": NOT_SERVING, "carrier_mapping": SERVING}
    routing_log = stack.services["compliance_routing"].log_path.read_text()
    assert "health probe kafka failing; retrying" in routing_log
    assert "health probe kafka recovered" in routing_log
