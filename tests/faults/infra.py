"""The fault suite's own PostgreSQL and Kafka: started, restarted and stopped here, never shared.

The suite restarts the database and the broker under load, so it must not use the instances other
test runs share: it runs deploy/local/infra.sh with its own run directory and ports picked free at
start, and wipes them when done, even on failure.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.system.stack import REPO, free_port

INFRA_SH = REPO / "deploy" / "local" / "infra.sh"


class OwnInfra:
    """`async with OwnInfra(run_dir) as infra`: infra.pg_dsn and infra.kafka_bootstrap name this pair."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.log_path = run_dir / "infra.log"
        self._env = {
            **os.environ,
            "ORDERSYNC_RUN_DIR": str(run_dir),
            "ORDERSYNC_PG_PORT": str(free_port()),
            "ORDERSYNC_KAFKA_PORT": str(free_port()),
            "ORDERSYNC_KAFKA_CONTROLLER_PORT": str(free_port()),
            # The restarts here are clean shutdowns, which write everything out: fsync only costs time.
            "ORDERSYNC_PG_FSYNC": "off",
        }
        self.pg_dsn = f"postgresql://postgres@127.0.0.1:{self._env['ORDERSYNC_PG_PORT']}/postgres"
        self.kafka_bootstrap = f"127.0.0.1:{self._env['ORDERSYNC_KAFKA_PORT']}"

    async def __aenter__(self) -> OwnInfra:
        # A run killed before its clean-up leaves its pair running in the same directory: stop it first.
        await self._infra("down", "--wipe")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self._infra("up")
        except BaseException:
            await self._infra("down", "--wipe")
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        # Shielded: a cancelled run (Ctrl-C, SIGTERM) must still stop what it started.
        await asyncio.shield(self._infra("down", "--wipe"))

    async def restart_postgres(self, down_s: float) -> None:
        """Stop PostgreSQL (fast shutdown: sessions are cut), keep it down `down_s` seconds, start it."""
        await self._infra("restart-pg", str(down_s))

    async def restart_kafka(self, down_s: float) -> None:
        """Stop the broker (SIGTERM), keep it down `down_s` seconds, start it on the same data."""
        await self._infra("restart-kafka", str(down_s))

    async def _infra(self, *args: str) -> None:
        if args[0] == "down" and not self.run_dir.exists():
            return
        with open(self.log_path if self.run_dir.exists() else os.devnull, "ab") as log:  # noqa: ASYNC230
            process = await asyncio.create_subprocess_exec(
                "bash", str(INFRA_SH), *args, env=self._env, stdout=log, stderr=log
            )
            returncode = await process.wait()
        if returncode != 0:
            raise RuntimeError(f"infra.sh {' '.join(args)} failed ({returncode}); see {self.log_path}")
