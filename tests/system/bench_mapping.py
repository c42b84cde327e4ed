"""Carrier-mapping benchmark: the real service beside a bare grpc.aio server, same requests.

    python -m tests.system.bench_mapping [--ghz PATH] [--seconds 5] [--concurrency 32] [--batch 1000]
                                         [--rounds 3] [--profile]

Both servers run as their own processes: the service as `python -m carrier_mapping` on a fresh
schema (real auth, OpenTelemetry installed as in production), the bare one as a servicer that
returns a prebuilt answer of the same shape without any lookup. Two load generators drive both
alike: ghz (Go, a few microseconds of CPU a call, so the servers are what is measured) for
`--rounds` rounds, then this process's Python client for one. Each round runs unary
TranslateCode at `--concurrency` in flight, then BatchTranslateCodes of `--batch` queries, two in
flight. Where the machine has two cores or more, the servers are pinned to the last core and the
load generators to the others. The last line, ghz's median round, is what `make bench-mapping`
reports.
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
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

from tests.system.bench import Profiler
from tests.system.cpu_usage import MeteredProcess, cpu_seconds

REPO = Path(__file__).resolve().parents[2]
TENANT = "bench"
QUERY = pb.CodeQuery(from_system="commerce7", code="03", to_system="vinoshipper")
ANSWER = pb.CodeTranslation(
    code="03", name="UPS Ground", carrier="UPS", canonical_carrier="UPS", canonical_service="UPS_GROUND"
)
BATCH_IN_FLIGHT = 2
WARM_UP_S = 1.0
PROTO = "ordersync/carriers/v1/carriers_service.proto"
SERVICE = "ordersync.carriers.v1.CarrierMappingService"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float  # the server's CPU per call over the measured run


@dataclass
class BatchResult:
    rate: float  # translations/s
    server_cpu_ms: float  # the server's CPU per 1,000 translations
    client_cpu_ms: float | None = None  # the load generator's, where it runs as its own process


@dataclass(frozen=True)
class Server:
    address: str
    pid: int

    def cpu_seconds(self) -> float:
        return cpu_seconds(MeteredProcess("server", self.pid))


# ---- the bare server -----------------------------------------------------------------------


class BareServicer(pb_grpc.CarrierMappingServiceServicer):
    """Answers every query with the same prebuilt translation: the floor any service pays."""

    async def TranslateCode(self, request, context):
        return pb.TranslateCodeResponse(translation=ANSWER)

    async def BatchTranslateCodes(self, request, context):
        response = pb.BatchTranslateCodesResponse()
        add = response.results.add
        for query in request.queries:
            add(query=query, translation=ANSWER, status=pb.TRANSLATION_STATUS_OK)
        return response


async def serve_bare(port: int) -> None:
    server = grpc.aio.server()
    pb_grpc.add_CarrierMappingServiceServicer_to_server(BareServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


# ---- the client ----------------------------------------------------------------------------


async def unary(server: Server, token: str, seconds: float, concurrency: int) -> Result:
    metadata = (("authorization", f"Bearer {token}"),)
    request = pb.TranslateCodeRequest(tenant_id=TENANT, query=QUERY)
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = pb_grpc.CarrierMappingServiceStub(channel).TranslateCode
        await _drive(call, request, metadata, WARM_UP_S, concurrency, [])
        latencies: list[float] = []
        cpu_before = server.cpu_seconds()
        elapsed = await _drive(call, request, metadata, seconds, concurrency, latencies)
        cpu = server.cpu_seconds() - cpu_before
    latencies.sort()
    return Result(
        rps=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        server_cpu_us=cpu / len(latencies) * 1e6,
    )


async def batch(server: Server, token: str, seconds: float, size: int) -> BatchResult:
    metadata = (("authorization", f"Bearer {token}"),)
    request = pb.BatchTranslateCodesRequest(tenant_id=TENANT, queries=[QUERY] * size)
    async with grpc.aio.insecure_channel(server.address) as channel:
        call = pb_grpc.CarrierMappingServiceStub(channel).BatchTranslateCodes
        await _drive(call, request, metadata, WARM_UP_S, BATCH_IN_FLIGHT, [])
        latencies: list[float] = []
        cpu_before = server.cpu_seconds()
        elapsed = await _drive(call, request, metadata, seconds, BATCH_IN_FLIGHT, latencies)
        cpu = server.cpu_seconds() - cpu_before
    translations = len(latencies) * size
    return BatchResult(translations / elapsed, server_cpu_ms=cpu / translations * 1e6)


async def _drive(call, request, metadata, seconds: float, concurrency: int, latencies: list[float]) -> float:
    started = time.perf_counter()
    stop_at = started + seconds

    async def worker() -> None:
        while (now := time.perf_counter()) < stop_at:
            await call(request, metadata=metadata, timeout=10)
            latencies.append(time.perf_counter() - now)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


# ---- the ghz client ------------------------------------------------------------------------


class Ghz:
    """ghz driving one method: with `--proto` (Python's reflection service lacks the method
    lookup ghz asks for), its JSON report read back. A run with any status but OK fails the
    bench: a server that refuses every call fast must not look fast."""

    def __init__(self, binary: str, token: str, workdir: Path, cores: set[int] | None):
        self.binary, self.workdir, self.cores = binary, workdir, cores
        self.metadata = workdir / "metadata.json"
        self.metadata.write_text(json.dumps({"authorization": f"Bearer {token}"}))

    async def unary(self, server: Server, seconds: float, concurrency: int) -> Result:
        data = self._data("unary", pb.TranslateCodeRequest(tenant_id=TENANT, query=QUERY))
        await self._run(server, "TranslateCode", data, WARM_UP_S, concurrency)
        cpu_before = server.cpu_seconds()
        report = await self._run(server, "TranslateCode", data, seconds, concurrency)
        cpu = server.cpu_seconds() - cpu_before
        latency = {row["percentage"]: row["latency"] / 1e6 for row in report["latencyDistribution"]}
        return Result(report["rps"], latency[50], latency[99], server_cpu_us=cpu / report["count"] * 1e6)

    async def batch(self, server: Server, seconds: float, size: int) -> BatchResult:
        request = pb.BatchTranslateCodesRequest(tenant_id=TENANT, queries=[QUERY] * size)
        data = self._data("batch", request)
        await self._run(server, "BatchTranslateCodes", data, WARM_UP_S, BATCH_IN_FLIGHT)
        cpu_before, own_before = server.cpu_seconds(), _children_cpu_seconds()
        report = await self._run(server, "BatchTranslateCodes", data, seconds, BATCH_IN_FLIGHT)
        cpu, own = server.cpu_seconds() - cpu_before, _children_cpu_seconds() - own_before
        translations = report["count"] * size
        return BatchResult(report["rps"] * size, cpu / translations * 1e6, client_cpu_ms=own / translations * 1e6)

    def _data(self, name: str, request) -> Path:
        path = self.workdir / f"{name}.json"
        path.write_text(json_format.MessageToJson(request))
        return path

    async def _run(self, server: Server, method: str, data: Path, seconds: float, concurrency: int) -> dict:
        cpus = len(self.cores or os.sched_getaffinity(0))
        args = [
            *("--insecure", "--proto", str(REPO / "protos" / PROTO), "--import-paths", str(REPO / "protos")),
            *("--call", f"{SERVICE}.{method}", "--data-file", str(data), "--metadata-file", str(self.metadata)),
            *("--concurrency", str(concurrency), "--connections", "1", "--cpus", str(cpus)),
            # Calls still in flight when the time is up are left out, not counted as errors.
            *("--duration", f"{seconds}s", "--duration-stop", "ignore", "--format", "json"),
        ]
        process = await asyncio.create_subprocess_exec(
            self.binary,
            *args,
            server.address,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=pinned_to(self.cores),
        )
        out, err = await process.communicate()
        if process.returncode != 0 and not out:
            raise RuntimeError(f"ghz {method} exited {process.returncode}: {err.decode()[-2000:]}")
        report = json.loads(out)
        statuses = report.get("statusCodeDistribution") or {}
        if set(statuses) != {"OK"}:
            raise RuntimeError(
                f"ghz {method} against {server.address}: statuses {statuses}, errors {report.get('errorDistribution')}"
            )
        return report


def _children_cpu_seconds() -> float:
    """CPU of this process's children that have exited: the ghz runs."""
    times = os.times()
    return times.children_user + times.children_system


# ---- cores ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cores:
    """Which cores the servers and the load generators run on (None: all of them)."""

    servers: set[int] | None
    clients: set[int] | None

    @classmethod
    def split(cls) -> Cores:
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            return cls(None, None)
        return cls({available[-1]}, set(available[:-1]))

    def describe(self) -> str:
        if self.servers is None:
            return "one core: nothing pinned"
        return f"servers pinned to cpu {_cpus(self.servers)}, load generators to cpu {_cpus(self.clients)}"


def _cpus(cores: set[int] | None) -> str:
    return ",".join(str(core) for core in sorted(cores or ()))


def pinned_to(cores: set[int] | None):
    """A preexec_fn running the child on `cores` (before exec, so every thread it starts inherits
    them), or None to leave it alone."""
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


# ---- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start(
    args: list[str], env: dict[str, str], port: int, log: Path, cores: set[int] | None
) -> asyncio.subprocess.Process:
    with open(log, "ab") as out:  # noqa: ASYNC230 - handed to the child process
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
            preexec_fn=pinned_to(cores),
        )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            try:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                return process
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # bare server: up, without health
                    return process
                await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{args} did not become ready; see {log}")


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass
class Settings:
    seconds: float
    concurrency: int
    size: int
    rounds: int
    ghz: str
    profile: bool


async def main(settings: Settings) -> None:
    dsn = os.environ.get("ORDERSYNC_PG_DSN")
    if not dsn:
        sys.exit("ORDERSYNC_PG_DSN is not set: run through `make bench-mapping` or source .run/infra.env")
    cores = Cores.split()
    if cores.clients is not None:
        os.sched_setaffinity(0, cores.clients)  # the Python client, before gRPC starts its threads
    schema = f"carrier_mapping_bench_{secrets.token_hex(4)}"
    token = secrets.token_urlsafe(24)
    service_port, bare_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="bench-mapping-") as tmp:
        callers = Path(tmp) / "callers.toml"
        callers.write_text(f'[callers.bench]\ntoken = "env:BENCH_MAPPING_TOKEN"\ntenants = ["{TENANT}"]\n')
        env = {
            "ORDERSYNC_DB_SCHEMA": schema,
            "ORDERSYNC_GRPC_PORT": str(service_port),
            "ORDERSYNC_KAFKA_BOOTSTRAP": os.environ.get("ORDERSYNC_KAFKA_BOOTSTRAP", "127.0.0.1:9"),
            "ORDERSYNC_TENANTS_FILE": str(Path(tmp) / "tenants.toml"),
            "CARRIER_MAPPING_CALLERS_FILE": str(callers),
            "BENCH_MAPPING_TOKEN": token,
        }
        log = Path(tmp) / "servers.log"
        processes = []
        try:
            processes.append(await start(["-m", "carrier_mapping"], env, service_port, log, cores.servers))
            bare_args = ["-m", "tests.system.bench_mapping", "--serve-bare", str(bare_port)]
            processes.append(await start(bare_args, {}, bare_port, log, cores.servers))
            servers = Servers(
                service=Server(f"127.0.0.1:{service_port}", processes[0].pid),
                bare=Server(f"127.0.0.1:{bare_port}", processes[1].pid),
            )
            ghz = Ghz(settings.ghz, token, Path(tmp), cores.clients)
            await report(servers, ghz, token, cores, settings)
        finally:
            for process in processes:
                await stop(process)
            await _drop_schema(dsn, schema)


@dataclass(frozen=True)
class Servers:
    service: Server
    bare: Server


@dataclass(frozen=True)
class Round:
    bare: Result
    real: Result
    bare_batch: BatchResult
    real_batch: BatchResult

    @property
    def ratio(self) -> float:
        return self.real.rps / self.bare.rps


async def ghz_round(servers: Servers, ghz: Ghz, settings: Settings) -> Round:
    return Round(
        bare=await ghz.unary(servers.bare, settings.seconds, settings.concurrency),
        real=await ghz.unary(servers.service, settings.seconds, settings.concurrency),
        bare_batch=await ghz.batch(servers.bare, settings.seconds, settings.size),
        real_batch=await ghz.batch(servers.service, settings.seconds, settings.size),
    )


async def python_round(servers: Servers, token: str, settings: Settings) -> Round:
    return Round(
        bare=await unary(servers.bare, token, settings.seconds, settings.concurrency),
        real=await unary(servers.service, token, settings.seconds, settings.concurrency),
        bare_batch=await batch(servers.bare, token, settings.seconds, settings.size),
        real_batch=await batch(servers.service, token, settings.seconds, settings.size),
    )


async def profiled_unary(servers: Servers, ghz: Ghz, settings: Settings) -> str:
    """py-spy on the service through one ghz unary run; the samples' summary."""
    profiler = Profiler(servers.service.pid, REPO / ".run" / "bench-mapping-profile.txt")
    profiler.path.parent.mkdir(parents=True, exist_ok=True)
    await profiler.start()
    try:
        await ghz.unary(servers.service, settings.seconds, settings.concurrency)
    finally:
        await profiler.stop()
    return profiler.summary()


async def report(servers: Servers, ghz: Ghz, token: str, cores: Cores, settings: Settings) -> None:
    print(
        f"bench-mapping: {settings.seconds:g} s per run after {WARM_UP_S:g} s warm-up, unary at concurrency "
        f"{settings.concurrency}, batches of {settings.size} ({BATCH_IN_FLIGHT} in flight); {cores.describe()}"
    )
    by_ghz, by_python = [], []
    for number in range(1, settings.rounds + 1):
        by_ghz.append(await ghz_round(servers, ghz, settings))
        print_round(f"round {number}, ghz", by_ghz[-1])
        by_python.append(await python_round(servers, token, settings))
        print_round(f"round {number}, python client", by_python[-1])
    if settings.profile:
        print("carrier-mapping under ghz unary load, py-spy:")
        print(await profiled_unary(servers, ghz, settings))
    for name, rounds in (("ghz", by_ghz), ("python client", by_python)):
        ratios = ", ".join(f"{r.ratio:.2f}" for r in rounds)
        print(f"  {name}: unary ratio median {median_round(rounds).ratio:.2f} of rounds {ratios}")
    unary_median = median_round(by_ghz)
    # The batch figure is the Python client's: decoding 1,000 results into ghz's dynamic messages
    # costs ghz more CPU than the server spends on them, so ghz, not the server, bounds its batches.
    batch_rate = statistics.median(r.real_batch.rate for r in by_python)
    print(
        f"bench-mapping: unary {unary_median.real.rps:.0f} rps (bare {unary_median.bare.rps:.0f} rps, "
        f"ratio {unary_median.ratio:.2f}), p99 {unary_median.real.p99_ms:.2f} ms; "
        f"batch {batch_rate:.0f} translations/s; client ghz"
    )


def median_round(rounds: list[Round]) -> Round:
    return sorted(rounds, key=lambda r: r.ratio)[len(rounds) // 2]


def print_round(name: str, r: Round) -> None:
    print(f"  {name}: unary ratio {r.ratio:.2f}, batch ratio {r.real_batch.rate / r.bare_batch.rate:.2f}")
    for server, result in (("bare grpc.aio", r.bare), ("carrier-mapping", r.real)):
        print(
            f"    unary  {server:<16} {result.rps:8.0f} rps   p50 {result.p50_ms:6.2f} ms   "
            f"p99 {result.p99_ms:6.2f} ms   server cpu {result.server_cpu_us:4.0f} us/call"
        )
    for server, batch in (("bare grpc.aio", r.bare_batch), ("carrier-mapping", r.real_batch)):
        client = "" if batch.client_cpu_ms is None else f", client {batch.client_cpu_ms:.1f}"
        print(
            f"    batch  {server:<16} {batch.rate:8.0f} translations/s   "
            f"cpu per 1,000: server {batch.server_cpu_ms:.1f} ms{client}"
        )


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ghz", default="ghz", help="the ghz binary (make bench-mapping builds a pinned one)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="py-spy the service through one more ghz unary run")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        asyncio.run(serve_bare(options.serve_bare))
    else:
        settings = Settings(
            options.seconds, options.concurrency, options.batch, options.rounds, options.ghz, options.profile
        )
        asyncio.run(main(settings))
