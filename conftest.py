"""Test infrastructure for every suite: real PostgreSQL and Kafka, found or started, never skipped.

Order of preference (docs/testing.md): services named in the environment (ORDERSYNC_PG_DSN and
ORDERSYNC_KAFKA_BOOTSTRAP; this is how CI, `make test` and developers with running infra work);
else testcontainers when a Docker engine answers; else the local processes of
deploy/local/infra.sh, started here and stopped when the session ends, even on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

REPO = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Infra:
    pg_dsn: str
    kafka_bootstrap: str


def _from_environment() -> Infra | None:
    dsn, bootstrap = os.environ.get("ORDERSYNC_PG_DSN"), os.environ.get("ORDERSYNC_KAFKA_BOOTSTRAP")
    return Infra(dsn, bootstrap) if dsn and bootstrap else None


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0


def _start_local() -> Infra:
    result = subprocess.run(["bash", str(REPO / "deploy/local/infra.sh"), "up"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"could not start local PostgreSQL and Kafka (deploy/local/infra.sh up):\n{result.stdout}{result.stderr}"
        )
    values = {}
    for line in (REPO / ".run/infra.env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value.strip("'\"")
    return Infra(values["ORDERSYNC_PG_DSN"], values["ORDERSYNC_KAFKA_BOOTSTRAP"])


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """Real PostgreSQL and Kafka for the whole session (see the module docstring)."""
    found = _from_environment()
    if found is not None:
        yield found
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            PostgresContainer("postgres:15", driver=None) as pg,
            KafkaContainer("apache/kafka:3.9.1").with_kraft() as kafka,
        ):
            yield Infra(pg.get_connection_url(), kafka.get_bootstrap_server())
        return
    infra = _start_local()
    os.environ["ORDERSYNC_PG_DSN"], os.environ["ORDERSYNC_KAFKA_BOOTSTRAP"] = infra.pg_dsn, infra.kafka_bootstrap
    try:
        yield infra
    finally:
        subprocess.run(["bash", str(REPO / "deploy/local/infra.sh"), "down"], check=False)


@pytest_asyncio.fixture
async def database(infra: Infra) -> AsyncIterator[str]:
    """A fresh database for one test; dropped afterwards, even when the test fails."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(infra.pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = infra.pg_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(infra.pg_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest_asyncio.fixture
async def topics(infra: Infra) -> str:
    """A unique topic prefix for one test, with ordersync's topics created under it."""
    from deploy.local.create_topics import create_topics, read_topic_file

    prefix = f"t{uuid.uuid4().hex[:10]}."
    await create_topics(infra.kafka_bootstrap, read_topic_file(REPO / "deploy/topics.txt"), prefix)
    return prefix
