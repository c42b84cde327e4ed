"""Schema migrations as a command of their own, run as the migration role before services start.

    python -m libs.platform.migrate up [--service NAME ...]       ORDERSYNC_PG_MIGRATION_DSN
    python -m libs.platform.migrate bootstrap-roles [--database DB] ORDERSYNC_PG_ADMIN_DSN

`up` applies each service's pending migrations (all five unless --service names some) as that
service's role (SET ROLE), so the service role owns its schema and objects; the migration role
that logs in owns nothing. It is what a Kubernetes Job, the compose `migrate` service and the
test stack run; services then start with ORDERSYNC_MIGRATE=off and only check their schema.

`bootstrap-roles` creates what a DBA creates in production, idempotently: one LOGIN role per
service, named like its schema, and the migration role `ordersync_migrator`, a member of each
(NOINHERIT: it acts as a service only through SET ROLE). On the database it lets those roles
connect, lets the migration role create schemas, and takes PUBLIC's rights on the database and
on schema public, so a service role reaches its own schema and nothing else. A service schema
another role owns (a database migrated before these roles existed) is handed, with its objects, to
its service role. Passwords come from ORDERSYNC_PG_PASSWORD_<ROLE> (such as
ORDERSYNC_PG_PASSWORD_ORDER_INTAKE); without one a new role gets none and an existing role keeps
its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import importlib.util
import logging
import secrets
import sys
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from libs.platform.config import ConfigError, env_optional, env_str
from libs.platform.db import MigrationError, check_schema_name, migrate

log = logging.getLogger(__name__)

SERVICES = ("order_intake", "compliance_routing", "fulfillment_dispatch", "tracking_writeback", "carrier_mapping")
MIGRATOR_ROLE = "ordersync_migrator"


def migrations_dir(service: str) -> Path:
    """The migrations folder of `service`'s package (services/<service>/<service>/migrations)."""
    spec = importlib.util.find_spec(service)
    if spec is None or spec.origin is None:
        raise MigrationError(f"no package {service!r} on the import path")
    return Path(spec.origin).parent / "migrations"


async def migrate_services(migration_dsn: str, services: Iterable[str] = SERVICES) -> dict[str, list[str]]:
    """Apply pending migrations of each service to its schema, as its role; return what was applied.

    Idempotent: a second run applies nothing. Stops at the first service that fails, leaving the
    ones before it migrated (each migration file is one transaction).
    """
    applied = {}
    for service in services:
        applied[service] = await migrate(migration_dsn, service, migrations_dir(service), owner=service)
    return applied


def passwords_from_env(roles: Iterable[str]) -> dict[str, str | None]:
    """Each role's password from ORDERSYNC_PG_PASSWORD_<ROLE>, None where unset."""
    return {role: env_optional(f"ORDERSYNC_PG_PASSWORD_{role.upper()}") for role in roles}


async def bootstrap_roles(
    admin_dsn: str,
    *,
    database: str | None = None,
    services: Iterable[str] = SERVICES,
    passwords: Mapping[str, str | None] | None = None,
) -> None:
    """Create the service roles and the migration role, and grant them `database` (see the module docstring).

    `admin_dsn` logs in as a role that may create roles (a superuser locally); `database` defaults
    to the DSN's own. Roles are cluster-wide, so several databases (test stacks) share them: the
    role changes run under an advisory lock in the admin DSN's database, which serialises
    bootstraps that connect there, and are safe to repeat.
    """
    services = [check_schema_name(s) for s in services]
    passwords = passwords or {}
    admin = await asyncpg.connect(admin_dsn)
    try:
        database = database or await admin.fetchval("SELECT current_database()")
        lock = zlib.crc32(b"ordersync-bootstrap-roles")
        await admin.execute("SELECT pg_advisory_lock($1)", lock)
        try:
            for role in [*services, MIGRATOR_ROLE]:
                await _ensure_role(admin, role, passwords.get(role), inherit=role != MIGRATOR_ROLE)
            for service in services:
                await admin.execute(f"GRANT {service} TO {MIGRATOR_ROLE}")
        finally:
            await admin.execute("SELECT pg_advisory_unlock($1)", lock)
        await _grant_database(admin, database, services)
    finally:
        await admin.close()
    target = await asyncpg.connect(_with_database(admin_dsn, database))
    try:
        # PUBLIC may use schema public by default; no service keeps anything there.
        await target.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for service in services:
            await _hand_over_schema(target, service)
    finally:
        await target.close()


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None, *, inherit: bool) -> None:
    options = "LOGIN " + ("INHERIT" if inherit else "NOINHERIT")
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    await conn.execute(f"{'ALTER' if exists else 'CREATE'} ROLE {role} {options}")
    if password is not None:
        # The verifier, never the password itself: a failing statement is written to the
        # server's log with its text, and so would a plain password be.
        await conn.execute(f"ALTER ROLE {role} PASSWORD '{scram_verifier(password)}'")


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802, RFC 7677).

    Hand-written because no library we keep exposes it (asyncpg computes only the client's
    side). ASCII only: Postgres normalises other passwords with SASLprep, which this does not.
    """
    if not password.isascii():
        raise MigrationError("database role passwords must be ASCII")
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


async def _hand_over_schema(conn: asyncpg.Connection, schema: str) -> None:
    """Give `schema` and its objects to the role of the same name, if another role owns them.

    Databases migrated before there were service roles have everything owned by the admin; the
    migration role refuses those schemas until they belong to their service.
    """
    owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema)
    if owner is None or owner == schema:
        return
    async with conn.transaction():
        await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {schema}")
        # ALTER TABLE also hands over a table's indexes and the sequences its columns own, and
        # refuses to hand those over on their own; hence only relations no other relation owns.
        relations = await conn.fetch(
            "SELECT c.oid::regclass::text AS name FROM pg_class c"
            " WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')"
            " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
            " AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))",
            schema,
        )
        for relation in relations:
            await conn.execute(f"ALTER TABLE {relation['name']} OWNER TO {schema}")
        functions = await conn.fetch(
            "SELECT oid::regprocedure::text AS name FROM pg_proc WHERE pronamespace = $1::regnamespace", schema
        )
        for function in functions:
            await conn.execute(f"ALTER ROUTINE {function['name']} OWNER TO {schema}")
        # Enums, ranges and domains; a table's row type and a range's multirange follow their owner.
        types = await conn.fetch(
            "SELECT oid::regtype::text AS name, typtype = 'd' AS domain FROM pg_type"
            " WHERE typnamespace = $1::regnamespace AND typtype IN ('e', 'r', 'd')",
            schema,
        )
        for type_ in types:
            await conn.execute(f"ALTER {'DOMAIN' if type_['domain'] else 'TYPE'} {type_['name']} OWNER TO {schema}")
    log.warning("handed schema over to its service role", extra={"fields": {"schema": schema, "from": owner}})


async def _grant_database(conn: asyncpg.Connection, database: str, services: list[str]) -> None:
    db = await conn.fetchval("SELECT quote_ident($1)", database)
    await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
    await conn.execute(f"GRANT CONNECT ON DATABASE {db} TO {', '.join(services)}")
    await conn.execute(f"GRANT CONNECT, CREATE ON DATABASE {db} TO {MIGRATOR_ROLE}")


def role_dsn(dsn: str, role: str, password: str | None, *, database: str | None = None) -> str:
    """`dsn` with its user and password replaced by `role`'s (and its database by `database`)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    user = quote(role, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit(parts._replace(netloc=f"{user}@{host}", path=path))


def _with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m libs.platform.migrate", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="apply pending migrations as the migration role (ORDERSYNC_PG_MIGRATION_DSN)")
    up.add_argument("--service", action="append", choices=SERVICES, help="only this service (repeatable)")
    bootstrap = commands.add_parser("bootstrap-roles", help="create roles and grants (ORDERSYNC_PG_ADMIN_DSN)")
    bootstrap.add_argument("--database", help="database to grant (default: the DSN's)")
    bootstrap.add_argument("--service", action="append", choices=SERVICES, help="only this service (repeatable)")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    services = args.service or SERVICES
    if args.command == "bootstrap-roles":
        passwords = passwords_from_env([*services, MIGRATOR_ROLE])
        await bootstrap_roles(
            env_str("ORDERSYNC_PG_ADMIN_DSN"), database=args.database, services=services, passwords=passwords
        )
        print(f"roles ready: {', '.join(services)}, {MIGRATOR_ROLE}")
        return
    for service, names in (await migrate_services(env_str("ORDERSYNC_PG_MIGRATION_DSN"), services)).items():
        print(f"{service}: {'applied ' + ', '.join(names) if names else 'up to date'}")


def main(argv: list[str] | None = None) -> None:
    """Run the command; failures print one line naming what to fix and exit 1."""
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        asyncio.run(_main(args))
    except (ConfigError, MigrationError, asyncpg.PostgresError, OSError) as error:
        sys.exit(f"migrate {args.command}: {type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
