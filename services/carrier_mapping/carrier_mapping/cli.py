"""Operator CLI for tenant mappings, over the gRPC API so callers' grants apply to it too.

    python -m carrier_mapping.cli --addr HOST:PORT --token-env VAR list TENANT [--system S]
    python -m carrier_mapping.cli ... add TENANT SYSTEM CODE NAME CARRIER CANONICAL_CARRIER [CANONICAL_SERVICE] [--alias A ...]
    python -m carrier_mapping.cli ... remove TENANT SYSTEM CODE
    python -m carrier_mapping.cli ... import FILE.csv        (all rows or none)
    python -m carrier_mapping.cli ... export TENANT [TENANT ...] > FILE.csv
    python -m carrier_mapping.cli ... catalog SYSTEM [--tenant T]

The bearer token is read from the variable --token-env names (CARRIER_MAPPING_TOKEN), or from
--token-file, never from the command line. With ORDERSYNC_GRPC_CA_FILE set (and
ORDERSYNC_GRPC_CLIENT_CERT_FILE/KEY_FILE for mTLS) the channel is TLS.

CSV columns: tenant_id, system, code, name, carrier, canonical_carrier, canonical_service,
aliases (separated by '|'). Export writes what import reads. Exit status: 0 done, 1 refused by
the service (the message says why), 2 bad usage or unreadable file.
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import csv
import io
import os
import sys
from collections.abc import AsyncIterator, Sequence

import grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from libs.platform.auth import bearer, cli_token
from libs.platform.config import ConfigError, grpc_client_tls_from_env
from libs.platform.grpc_server import client_channel

COLUMNS = (
    "tenant_id",
    "system",
    "code",
    "name",
    "carrier",
    "canonical_carrier",
    "canonical_service",
    "aliases",
)
ALIAS_SEPARATOR = "|"
TIMEOUT_S = 30.0


class UsageError(Exception):
    """The command line or the input file is wrong; exit status 2."""


def parse_csv(text: str) -> list[pb.ImportRow]:
    """Read import rows from CSV text with a COLUMNS header; raise UsageError naming every line
    whose shape is wrong (field values are checked by the service)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise UsageError(f"line 1: header lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    rows, problems = [], []
    for record in reader:
        line = reader.line_num
        if None in record or any(record[c] is None for c in COLUMNS):
            problems.append(f"line {line}: expected {len(COLUMNS)} fields")
            continue
        rows.append(pb.ImportRow(line=line, tenant_id=record["tenant_id"], mapping=_mapping(record)))
    if problems:
        raise UsageError("; ".join(problems))
    if not rows:
        raise UsageError("the file has no rows after the header")
    return rows


def _mapping(record: dict) -> pb.Mapping:
    aliases = [a for a in record["aliases"].split(ALIAS_SEPARATOR) if a] if record["aliases"] else []
    fields = {c: record[c] for c in COLUMNS if c not in ("tenant_id", "aliases")}
    return pb.Mapping(**fields, aliases=aliases)


def write_csv(mappings: Sequence[pb.Mapping], out) -> None:
    """Write `mappings` as CSV that parse_csv reads back."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for m in mappings:
        writer.writerow([m.tenant_id, m.system, m.code, m.name, m.carrier, m.canonical_carrier,
                         m.canonical_service, ALIAS_SEPARATOR.join(m.aliases)])  # fmt: skip


class Cli:
    """The commands, each one or a few RPCs with the operator's token."""

    def __init__(self, stub: pb_grpc.CarrierMappingServiceStub, token: str, out):
        self._stub = stub
        self._metadata = bearer(token)
        self._out = out

    async def _call(self, method, request):
        return await method(request, metadata=self._metadata, timeout=TIMEOUT_S)

    async def list(self, tenant_id: str, system: str) -> None:
        async for m in self._tenant_mappings(tenant_id, system):
            aliases = f" (also {', '.join(m.aliases)})" if m.aliases else ""
            target = f"{m.canonical_carrier}/{m.canonical_service or '*'}"
            print(f"{m.tenant_id}\t{m.system}\t{m.code}{aliases}\t{m.name}\t-> {target}", file=self._out)

    async def catalog(self, system: str, tenant_id: str) -> None:
        token = ""
        while True:
            request = pb.ListCatalogRequest(system=system, tenant_id=tenant_id, page_size=1000, page_token=token)
            page = await self._call(self._stub.ListCatalog, request)
            for m in page.entries:
                owner = m.tenant_id or "(global)"
                aliases = f" (also {', '.join(m.aliases)})" if m.aliases else ""
                target = f"{m.canonical_carrier}/{m.canonical_service or '*'}"
                print(f"{owner}\t{m.code}{aliases}\t{m.name}\t-> {target}", file=self._out)
            token = page.next_page_token
            if not token:
                return

    async def add(self, tenant_id: str, mapping: pb.Mapping) -> None:
        response = await self._call(
            self._stub.CreateMapping, pb.CreateMappingRequest(tenant_id=tenant_id, mapping=mapping)
        )
        print(f"added {mapping.system} code {mapping.code!r} for tenant {tenant_id!r} (version {response.version})",
              file=self._out)  # fmt: skip

    async def remove(self, tenant_id: str, system: str, code: str) -> None:
        request = pb.DeleteMappingRequest(tenant_id=tenant_id, system=system, code=code)
        response = await self._call(self._stub.DeleteMapping, request)
        print(f"removed {system} code {code!r} of tenant {tenant_id!r} (version {response.version})", file=self._out)

    async def import_rows(self, rows: builtins.list[pb.ImportRow]) -> None:  # `list` is a method here
        response = await self._call(self._stub.ImportMappings, pb.ImportMappingsRequest(rows=rows))
        print(f"imported {len(rows)} row(s): {response.created} created, {response.updated} updated "
              f"(version {response.version})", file=self._out)  # fmt: skip

    async def export(self, tenant_ids: Sequence[str]) -> None:
        mappings = [m for tenant_id in tenant_ids async for m in self._tenant_mappings(tenant_id, "")]
        write_csv(mappings, self._out)

    async def _tenant_mappings(self, tenant_id: str, system: str) -> AsyncIterator[pb.Mapping]:
        token = ""
        while True:
            request = pb.ListMappingsRequest(tenant_id=tenant_id, system=system, page_size=1000, page_token=token)
            page = await self._call(self._stub.ListMappings, request)
            for m in page.mappings:
                yield m
            token = page.next_page_token
            if not token:
                return


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m carrier_mapping.cli", description=__doc__.split("\n")[0])
    parser.add_argument("--addr", default="localhost:50055", help="carrier mapping's host:port")
    parser.add_argument("--token-env", default="CARRIER_MAPPING_TOKEN",
                        help="environment variable holding the bearer token (never pass a token itself)")  # fmt: skip
    parser.add_argument("--token-file", help="file holding the bearer token, instead of --token-env")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="a tenant's own mappings")
    listing.add_argument("tenant_id")
    listing.add_argument("--system", default="")
    catalog = commands.add_parser("catalog", help="a system's catalog: global codes, plus a tenant's with --tenant")
    catalog.add_argument("system")
    catalog.add_argument("--tenant", default="")
    add = commands.add_parser("add", help="add one mapping for a tenant")
    for name in ("tenant_id", "system", "code", "name", "carrier", "canonical_carrier"):
        add.add_argument(name)
    add.add_argument("canonical_service", nargs="?", default="", help="omit for a carrier-level code")
    add.add_argument("--alias", action="append", default=[], help="another accepted spelling; repeatable")
    remove = commands.add_parser("remove", help="remove one mapping of a tenant")
    for name in ("tenant_id", "system", "code"):
        remove.add_argument(name)
    importing = commands.add_parser("import", help="create or replace mappings from CSV, all or nothing")
    importing.add_argument("file")
    export = commands.add_parser("export", help="write tenants' mappings as CSV to stdout")
    export.add_argument("tenant_ids", nargs="+")
    return parser


async def run(argv: Sequence[str], out=sys.stdout, err=sys.stderr) -> int:
    """Run one command; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        token = cli_token(args.token_env, args.token_file, os.environ)
        rows = parse_csv(_read(args.file)) if args.command == "import" else None
        async with client_channel(args.addr, grpc_client_tls_from_env()) as channel:
            await _dispatch(Cli(pb_grpc.CarrierMappingServiceStub(channel), token, out), args, rows)
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    except grpc.aio.AioRpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=err)
        return 1
    return 0


async def _dispatch(cli: Cli, args, rows) -> None:
    if args.command == "list":
        await cli.list(args.tenant_id, args.system)
    elif args.command == "catalog":
        await cli.catalog(args.system, args.tenant)
    elif args.command == "add":
        fields = {k: getattr(args, k) for k in ("system", "code", "name", "carrier", "canonical_carrier")}
        await cli.add(
            args.tenant_id, pb.Mapping(**fields, canonical_service=args.canonical_service, aliases=args.alias)
        )
    elif args.command == "remove":
        await cli.remove(args.tenant_id, args.system, args.code)
    elif args.command == "import":
        await cli.import_rows(rows)
    elif args.command == "export":
        await cli.export(args.tenant_ids)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as file:
            return file.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


if __name__ == "__main__":
    sys.exit(asyncio.run(run(sys.argv[1:])))
