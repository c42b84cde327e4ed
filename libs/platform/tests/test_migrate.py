"""Database roles on real Postgres: each service's role reaches its own schema only, the migration
role migrates as the service roles, and a service started with migrations off checks its schema."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from libs.platform.db import MigrationError, SchemaBehindError, migrate, require_migrated
from libs.platform.migrate import (
    MIGRATOR_ROLE,
    SERVICES,
    bootstrap_roles,
    migrate_services,
    migrations_dir,
    role_dsn,
    scram_verifier,
)
from tests.system.stack import LOCAL_ROLE_PASSWORDS

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]


def _as(database: str, role: str) -> str:
    return role_dsn(database, role, LOCAL_ROLE_PASSWORDS[role])


async def _bootstrap(infra, database: str) -> None:
    # Through the maintenance database, as the stack does: roles are shared by the whole cluster.
    await bootstrap_roles(infra.pg_dsn, database=urlsplit(database).path.lstrip("/"), passwords=LOCAL_ROLE_PASSWORDS)


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=REPO,
        env={"PATH": os.environ["PATH"], **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None  # communicate() returns once the process has exited
    return process.returncode, output.decode()


async def test_the_migration_role_migrates_and_each_service_role_owns_its_schema(infra, database):
    await _bootstrap(infra, database)
    await migrate_services(_as(database, MIGRATOR_ROLE))

    owners = await _fetch(
        database,
        "SELECT n.nspname AS schema, n.nspowner::regrole::text AS schema_owner,"
        " array_agg(DISTINCT c.relowner::regrole::text) AS object_owners"
        " FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid"
        f" WHERE n.nspname IN ({', '.join(repr(s) for s in SERVICES)}) GROUP BY 1, 2",
    )
    assert {(r["schema"], r["schema_owner"], tuple(r["object_owners"])) for r in owners} == {
        (service, service, (service,)) for service in SERVICES
    }
    owned_by_migrator = await _fetch(
        database,
        "SELECT relname FROM pg_class WHERE relowner = 'ordersync_migrator'::regrole"
        " UNION ALL SELECT proname FROM pg_proc WHERE proowner = 'ordersync_migrator'::regrole",
    )
    assert owned_by_migrator == []


async def test_migrating_twice_applies_nothing_the_second_time(infra, database):
    await _bootstrap(infra, database)
    first = await migrate_services(_as(database, MIGRATOR_ROLE))
    await _bootstrap(infra, database)  # bootstrapping again is harmless too
    second = await migrate_services(_as(database, MIGRATOR_ROLE))

    assert all(first[service] for service in SERVICES)
    assert second == {service: [] for service in SERVICES}


async def test_a_service_role_uses_its_own_schema_and_is_refused_the_others(infra, database):
    await _bootstrap(infra, database)
    await migrate_services(_as(database, MIGRATOR_ROLE))
    conn = await asyncpg.connect(_as(database, "order_intake"))
    try:
        await conn.execute("INSERT INTO order_intake.outbox (topic, key, value) VALUES ('t', 'k', 'v')")
        assert await conn.fetchval("SELECT count(*) FROM order_intake.outbox") == 1

        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema"):
            await conn.fetch("SELECT * FROM compliance_routing.outbox")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for schema"):
            await conn.execute("INSERT INTO fulfillment_dispatch.outbox (topic, key, value) VALUES ('t', 'k', 'v')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.stash (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE SCHEMA stash")
    finally:
        await conn.close()


async def test_a_service_role_can_listen_notify_and_take_advisory_locks(infra, database):
    await _bootstrap(infra, database)
    await migrate_services(_as(database, MIGRATOR_ROLE), ["carrier_mapping"])
    listener = await asyncpg.connect(_as(database, "carrier_mapping"))
    writer = await asyncpg.connect(_as(database, "carrier_mapping"))
    woken = asyncio.Event()
    try:
        # The outbox trigger notifies <schema>_outbox, which the relay listens on.
        await listener.add_listener("carrier_mapping_outbox", lambda *_: woken.set())
        async with writer.transaction():
            assert await writer.fetchval("SELECT pg_try_advisory_xact_lock(42)")
            await writer.execute("INSERT INTO carrier_mapping.outbox (topic, key, value) VALUES ('t', 'k', 'v')")
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await writer.close()
        await listener.close()


async def test_a_service_started_with_migrations_off_refuses_a_schema_behind(infra, database, tmp_path):
    await _bootstrap(infra, database)
    callers = tmp_path / "callers.toml"
    callers.write_text('[callers.test]\ntoken = "env:TEST_CALLER_TOKEN"\ntenants = ["*"]\n')
    env = {
        "ORDERSYNC_PG_DSN": _as(database, "order_intake"),
        "ORDERSYNC_MIGRATE": "off",
        "ORDERSYNC_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # never reached: the check comes first
        "ORDERSYNC_TENANTS_FILE": "unused.toml",
        "ORDERSYNC_GRPC_CALLERS_FILE": str(callers),
        "TEST_CALLER_TOKEN": "unused-token",
    }

    code, output = await _run("-m", "order_intake", env=env)

    assert code == 1
    assert "schema order_intake is behind" in output
    assert "python -m libs.platform.migrate up --service order_intake" in output
    assert await _fetch(database, "SELECT 1 FROM pg_namespace WHERE nspname = 'order_intake'") == []


async def test_the_migrate_command_brings_a_schema_up_to_date(infra, database):
    await _bootstrap(infra, database)
    dsn = _as(database, "tracking_writeback")
    with pytest.raises(SchemaBehindError):
        await require_migrated(dsn, "tracking_writeback", migrations_dir("tracking_writeback"))

    code, output = await _run(
        "-m",
        "libs.platform.migrate",
        "up",
        "--service",
        "tracking_writeback",
        env={"ORDERSYNC_PG_MIGRATION_DSN": _as(database, MIGRATOR_ROLE)},
    )

    assert code == 0, output
    assert "tracking_writeback: applied platform/0001_outbox_and_processed_events.sql" in output
    await require_migrated(dsn, "tracking_writeback", migrations_dir("tracking_writeback"))


async def test_a_schema_left_behind_by_one_file_names_that_file(infra, database):
    await _bootstrap(infra, database)
    await migrate_services(_as(database, MIGRATOR_ROLE), ["fulfillment_dispatch"])
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(
            "DELETE FROM fulfillment_dispatch.schema_migrations WHERE name = '0002_sync_status_and_operator_actions.sql'"
        )
    finally:
        await admin.close()

    with pytest.raises(SchemaBehindError) as behind:
        await require_migrated(
            _as(database, "fulfillment_dispatch"), "fulfillment_dispatch", migrations_dir("fulfillment_dispatch")
        )
    assert behind.value.pending == ["0002_sync_status_and_operator_actions.sql"]


async def test_migrating_a_schema_another_role_owns_is_refused(infra, database):
    await _bootstrap(infra, database)
    admin = await asyncpg.connect(database)
    try:
        await admin.execute("CREATE SCHEMA compliance_routing")  # owned by the admin, as before roles
    finally:
        await admin.close()

    with pytest.raises(MigrationError, match="owned by role .*, not compliance_routing"):
        await migrate_services(_as(database, MIGRATOR_ROLE), ["compliance_routing"])


async def test_concurrent_bootstraps_of_the_shared_roles_both_succeed(infra, database):
    await asyncio.gather(_bootstrap(infra, database), _bootstrap(infra, database))

    roles = await _fetch(
        database,
        "SELECT rolname, rolcanlogin, rolinherit, rolsuper FROM pg_roles"
        f" WHERE rolname IN ({', '.join(repr(r) for r in LOCAL_ROLE_PASSWORDS)})",
    )
    assert {(r["rolname"], r["rolcanlogin"], r["rolinherit"], r["rolsuper"]) for r in roles} == {
        *((service, True, True, False) for service in SERVICES),
        (MIGRATOR_ROLE, True, False, False),
    }


async def test_bootstrap_hands_a_schema_migrated_before_roles_to_its_service_role(infra, database):
    # The way every database was migrated before service roles: as the admin, which owns it all.
    await migrate(database, "order_intake", migrations_dir("order_intake"))
    admin = await asyncpg.connect(database)
    try:
        await admin.execute("CREATE TYPE order_intake.mood AS ENUM ('calm')")
        await admin.execute("CREATE DOMAIN order_intake.positive AS int CHECK (VALUE > 0)")
        await admin.execute("INSERT INTO order_intake.outbox (topic, key, value) VALUES ('t', 'k', 'v')")
    finally:
        await admin.close()

    await _bootstrap(infra, database)
    applied = await migrate_services(_as(database, MIGRATOR_ROLE), ["order_intake"])

    assert applied == {"order_intake": []}
    owners = await _fetch(
        database,
        "SELECT DISTINCT relowner::regrole::text AS owner FROM pg_class WHERE relnamespace = 'order_intake'::regnamespace"
        " UNION SELECT DISTINCT proowner::regrole::text FROM pg_proc WHERE pronamespace = 'order_intake'::regnamespace"
        " UNION SELECT DISTINCT typowner::regrole::text FROM pg_type WHERE typnamespace = 'order_intake'::regnamespace",
    )
    assert [r["owner"] for r in owners] == ["order_intake"]
    conn = await asyncpg.connect(_as(database, "order_intake"))
    try:
        await conn.execute("INSERT INTO order_intake.outbox (topic, key, value) VALUES ('t', 'k', 'v')")
        assert await conn.fetchval("SELECT count(*) FROM order_intake.outbox") == 2
    finally:
        await conn.close()


async def test_the_password_verifier_is_the_one_postgres_computes(database):
    role = f"scram_check_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database)
    try:
        await admin.execute(f"CREATE ROLE {role} PASSWORD 'pencil'")  # Postgres hashes it itself
        stored = await admin.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()
    iterations, _, salt = stored.removeprefix("SCRAM-SHA-256$").partition("$")[0].partition(":")

    assert scram_verifier("pencil", salt=base64.b64decode(salt), iterations=int(iterations)) == stored
