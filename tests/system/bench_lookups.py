"""Customer look-up benchmark: dispatch's CustomerDirectoryService with a warm cache, beside the
same calls made straight to the directory's HTTP server, in one run.

    python -m tests.system.bench_lookups [--requests 20000] [--concurrency 32] [--members 200]

Processes: the directory, seeded with `--members` members, and the real dispatch (`python -m
fulfillment_dispatch` on a fresh schema and topic prefix, real auth, OpenTelemetry as in
production). The directory is the VinSuite simulator with the vinsuite connector when the
simulator is registered (tests/simulators/registry.py; its rate limit off, see `_vinsuite`),
else the stand-in of services/fulfillment_dispatch/tests/directory_server.py with its test
connector, which dispatch loads through ORDERSYNC_CONNECTOR_MODULES.

One client in this process warms the cache (each member's e-mail once), then makes `--requests`
look-ups at `--concurrency` in flight, rotating FindCustomers, GetClubMembership and
ResolveDiscount over the members; then the same number of GetMembers calls straight to the
directory. The hit ratio is the cache's own (CacheStats, logged by dispatch when it stops) and,
from outside, 1 - directory calls / look-ups during the timed run. The last line is what
`make bench-lookups` reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import grpc
import httpx
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ordersync.directory.v1 import directory_service_pb2 as pb
from ordersync.directory.v1 import directory_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
TENANT = "bench"
DIRECTORY_MODULE = "services.fulfillment_dispatch.tests.directory_server"
RULES = """
[[tenants.bench.discount_rules]]
name = "club-members-tasting"
when_club = "Reserve Club"
experiences = ["TASTING-FLIGHT"]
percent_off = "20"
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float


def email(index: int) -> str:
    return f"guest{index}@example.com"


# ---- the directory ---------------------------------------------------------------------------


def member_rows(members: int) -> list[dict]:
    """The seeded members, as GetMembers lists them: a third in a club, a fifth of type Trade."""
    return [
        {
            "FirstName": f"Guest{i}",
            "LastName": f"Family{i % 20}",
            "Email": email(i),
            "MemberTypes": ["Trade"] if i % 5 == 0 else [],
            "ClubMemberships": [{"ClubID": "7", "ClubName": "Reserve Club", "Status": "Active"}] if i % 3 == 0 else [],
        }
        for i in range(members)
    ]


def serve_directory(port: int, members: int) -> None:
    from services.fulfillment_dispatch.tests.directory_server import STATE, DirectoryState, create_app

    state = DirectoryState()
    for row in member_rows(members):
        clubs = [(c["ClubID"], c["ClubName"], c["Status"]) for c in row["ClubMemberships"]]
        state.add(row["FirstName"], row["LastName"], row["Email"], types=row["MemberTypes"], clubs=clubs)
    app = create_app(state)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": dict(request.app[STATE].calls)})  # type: ignore[attr-defined]

    app.router.add_get("/_sim/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


@dataclass
class Directory:
    """A running directory: its process, the tenants-file account section and environment
    pointing dispatch at it, and the GetMembers call a look-up makes there (path and body)."""

    name: str
    process: asyncio.subprocess.Process
    base: str
    section: str
    env: dict[str, str]
    get_members: str
    request: dict


async def start_directory(port: int, members: int, log: Path) -> Directory:
    """The VinSuite simulator when one is registered (with the vinsuite connector), else the
    stand-in directory (with its test connector, loaded by dispatch from DIRECTORY_MODULE)."""
    from tests.simulators.registry import default_simulators

    base = f"http://127.0.0.1:{port}"
    if "vinsuite" in default_simulators():
        directory = await _vinsuite(default_simulators().get("vinsuite"), port, members, log)
    else:
        args = ["-m", "tests.system.bench_lookups", "--serve-directory", str(port), "--members", str(members)]
        section = (
            f'[tenants.{TENANT}.accounts.vinsuite]\nconnector = "testdirectory"\nbase_url = "{base}"\n'
            'password = "env:BENCH_DIRECTORY_PASSWORD"\nrequests_per_minute = 600000\n'
        )
        env = {"ORDERSYNC_CONNECTOR_MODULES": DIRECTORY_MODULE, "BENCH_DIRECTORY_PASSWORD": "ws-pass"}
        request = {"WineryID": "1001", "Username": "ws-user", "Password": "ws-pass"}
        directory = Directory(
            "the stand-in directory", await _spawn(args, {}, log), base, section, env, "/GetMembers", request
        )
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                (await http.get(f"{base}/_sim/stats")).raise_for_status()
                return directory
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"the directory did not start; see {log}")


async def _vinsuite(entry, port: int, members: int, log: Path) -> Directory:
    """The VinSuite simulator with one winery holding the members, its rate limit off: the
    bench measures the cache, and 60 a minute would make the warm-up alone take minutes."""
    from tests.simulators.registry import SimulatedAccount
    from tests.simulators.vinsuite.app import SERVICE

    spec = entry.new_account("vinsuite", TENANT, members=member_rows(members), member_types=["Trade"])
    config = {**entry.build_config([SimulatedAccount(TENANT, spec, push_url="", notice_url="")])}
    config["requests_per_minute"] = 0
    config_file = log.parent / "vinsuite.json"
    config_file.write_text(json.dumps(config))
    args = [
        "-m",
        "tests.simulators",
        "vinsuite",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(config_file),
    ]
    base = f"http://127.0.0.1:{port}"
    lines = [f"[tenants.{TENANT}.accounts.vinsuite]", 'connector = "vinsuite"', f'base_url = "{entry.base_url(base)}"']
    options = {**entry.file_options(spec), "requests_per_minute": 600000}
    lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    env = {f"BENCH_VINSUITE_{key.upper()}": value for key, value in spec.secrets.items()}
    lines += [f'{key} = "env:BENCH_VINSUITE_{key.upper()}"' for key in spec.secrets]
    security = {"Username": spec["username"], "Password": spec["password"]}
    request = {"WineryID": str(spec["winery_id"]), "Security": security}
    return Directory(
        "the VinSuite simulator",
        await _spawn(args, {}, log),
        base,
        "\n".join(lines) + "\n",
        env,
        f"{SERVICE}/GetMembers",
        request,
    )


async def directory_calls(base: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{base}/_sim/stats")).json()["requests"].get("GetMembers", 0)


# ---- the clients -----------------------------------------------------------------------------


def lookups(stub, members: int) -> Callable[[int], Awaitable[object]]:
    """The i-th look-up: the three read RPCs in turn over the members' e-mails."""
    metadata = (("authorization", f"Bearer {os.environ['BENCH_LOOKUPS_TOKEN']}"),)

    def call(i: int):
        address = email(i % members)
        if i % 3 == 0:
            return stub.FindCustomers(pb.FindCustomersRequest(tenant_id=TENANT, email=address), metadata=metadata)
        if i % 3 == 1:
            club = pb.GetClubMembershipRequest(tenant_id=TENANT, email=address)
            return stub.GetClubMembership(club, metadata=metadata)
        discount = pb.ResolveDiscountRequest(tenant_id=TENANT, email=address, experience_sku="TASTING-FLIGHT")
        return stub.ResolveDiscount(discount, metadata=metadata)

    return call


def straight(http: aiohttp.ClientSession, directory: Directory, members: int) -> Callable[[int], Awaitable[object]]:
    """The i-th call straight to the directory: the GetMembers the look-up would make (with
    aiohttp's client: httpx's pool queues badly at 32 in flight and would measure itself)."""

    async def call(i: int):
        body = {"request": {**directory.request, "Email": email(i % members)}}
        async with http.post(directory.get_members, json=body) as answer:
            answer.raise_for_status()
            await answer.read()

    return call


async def drive(call: Callable[[int], Awaitable[object]], requests: int, concurrency: int) -> Result:
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < requests:
            i, next_index = next_index, next_index + 1
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(
        len(latencies) / elapsed, statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    )


# ---- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _spawn(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with open(log, "ab") as out:  # noqa: ASYNC230 - handed to the child process
        return await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=out
        )


async def start_dispatch(env: dict[str, str], port: int, log: Path) -> asyncio.subprocess.Process:
    process = await _spawn(["-m", "fulfillment_dispatch"], env, log)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(600):
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return process
            except grpc.aio.AioRpcError:
                pass
            if process.returncode is not None:
                break
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError(f"dispatch did not become ready; see {log}")


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


def cache_counters(log: Path) -> dict[str, int]:
    """The CacheStats dispatch logged when it stopped (empty when it did not)."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if '"directory cache counters"' in line:
            entry = json.loads(line)
            return {k: entry[k] for k in ("hits", "misses", "coalesced", "invalidations")}
    return {}


async def main(requests: int, concurrency: int, members: int) -> None:
    from deploy.local.create_topics import create_topics, read_topic_file

    dsn, bootstrap = os.environ.get("ORDERSYNC_PG_DSN"), os.environ.get("ORDERSYNC_KAFKA_BOOTSTRAP")
    if not dsn or not bootstrap:
        sys.exit("ORDERSYNC_PG_DSN/ORDERSYNC_KAFKA_BOOTSTRAP are not set: run through `make bench-lookups`")
    run = secrets.token_hex(4)
    schema, prefix = f"fulfillment_dispatch_bench_{run}", f"bench{run}."
    token = secrets.token_urlsafe(24)
    os.environ["BENCH_LOOKUPS_TOKEN"] = token
    grpc_port, http_port, directory_port = free_port(), free_port(), free_port()
    await create_topics(bootstrap, read_topic_file(REPO / "deploy" / "topics.txt"), prefix)
    with tempfile.TemporaryDirectory(prefix="bench-lookups-") as tmp:
        log = Path(tmp) / "servers.log"
        processes = []
        try:
            directory = await start_directory(directory_port, members, log)
            processes.append(directory.process)
            (Path(tmp) / "tenants.toml").write_text(directory.section + RULES)
            callers = Path(tmp) / "callers.toml"
            callers.write_text(f'[callers.bench]\ntoken = "env:BENCH_LOOKUPS_TOKEN"\ntenants = ["{TENANT}"]\n')
            env = {
                "ORDERSYNC_DB_SCHEMA": schema,
                "ORDERSYNC_TOPIC_PREFIX": prefix,
                "ORDERSYNC_GRPC_PORT": str(grpc_port),
                "ORDERSYNC_HTTP_PORT": str(http_port),
                "ORDERSYNC_TENANTS_FILE": str(Path(tmp) / "tenants.toml"),
                "ORDERSYNC_GRPC_CALLERS_FILE": str(callers),
                "CARRIER_MAPPING_ADDR": "127.0.0.1:9",  # never called: no orders in this run
                "CARRIER_MAPPING_TOKEN": "unused",
                **directory.env,
            }
            dispatch = await start_dispatch(env, grpc_port, log)
            processes.append(dispatch)
            await report(f"127.0.0.1:{grpc_port}", directory, requests, concurrency, members)
            await stop(dispatch)
            counters = cache_counters(log)
            asked = sum(counters.get(k, 0) for k in ("hits", "misses", "coalesced"))
            if asked:
                print(f"  dispatch CacheStats over the whole run: {counters}, hit ratio {counters['hits'] / asked:.3f}")
        finally:
            for process in processes:
                await stop(process)
            await _drop_schema(dsn, schema)


async def report(address: str, directory: Directory, requests: int, concurrency: int, members: int) -> None:
    print(
        f"bench-lookups: {requests} look-ups at concurrency {concurrency} over {members} members of {directory.name}, cache warm"
    )
    async with grpc.aio.insecure_channel(address) as channel:
        call = lookups(pb_grpc.CustomerDirectoryServiceStub(channel), members)
        await drive(call, members * 3, concurrency)  # warm: every e-mail at least once
        before = await directory_calls(directory.base)
        service = await drive(call, requests, concurrency)
        misses = await directory_calls(directory.base) - before
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=directory.base, connector=connector) as http:
        await drive(straight(http, directory, members), members, concurrency)
        direct = await drive(straight(http, directory, members), requests, concurrency)
    hit_ratio = 1 - misses / requests
    for name, r in (("dispatch gRPC, cached", service), ("directory HTTP", direct)):
        print(f"  {name:<22} {r.rps:8.0f} rps   p50 {r.p50_ms:6.2f} ms   p99 {r.p99_ms:6.2f} ms")
    print(
        f"bench-lookups: {service.rps:.0f} rps, p50 {service.p50_ms:.2f} ms, p99 {service.p99_ms:.2f} ms, "
        f"hit ratio {hit_ratio:.3f} (directory {direct.rps:.0f} rps, p99 {direct.p99_ms:.2f} ms; "
        f"ratio {service.rps / direct.rps:.2f})"
    )


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--serve-directory", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_directory:
        serve_directory(options.serve_directory, options.members)
    else:
        asyncio.run(main(options.requests, options.concurrency, options.members))
