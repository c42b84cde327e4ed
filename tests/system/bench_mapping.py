"""Carrier-mapping benchmark: the real service beside a bare grpc.aio server, same requests.

    python -m tests.system.bench_mapping [--seconds 5] [--concurrency 32] [--batch 1000]

Both servers run as their own processes: the service as `python -m carrier_mapping` on a fresh
schema (real auth, OpenTelemetry installed as in production), the bare one as a servicer that
returns a prebuilt answer of the same shape without any lookup. One client in this process drives
both alike: unary TranslateCode at `--concurrency` in flight, then BatchTranslateCodes of `--batch`
queries, two in flight. The last line is what `make bench-mapping` reports.
"""

from __future__ import annotations

import argparse
import asyncio
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
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
TENANT = "bench"
QUERY = pb.CodeQuery(from_system="commerce7", code="03", to_system="vinoshipper")
ANSWER = pb.CodeTranslation(
    code="03", name="UPS Ground", carrier="UPS", canonical_carrier="UPS", canonical_service="UPS_GROUND"
)
BATCH_IN_FLIGHT = 2


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float


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


async def unary(address: str, token: str, seconds: float, concurrency: int) -> Result:
    metadata = (("authorization", f"Bearer {token}"),)
    request = pb.TranslateCodeRequest(tenant_id=TENANT, query=QUERY)
    async with grpc.aio.insecure_channel(address) as channel:
        call = pb_grpc.CarrierMappingServiceStub(channel).TranslateCode
        await _drive(call, request, metadata, 1.0, concurrency, [])  # warm up
        latencies: list[float] = []
        elapsed = await _drive(call, request, metadata, seconds, concurrency, latencies)
    latencies.sort()
    return Result(
        rps=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
    )


async def batch(address: str, token: str, seconds: float, size: int) -> float:
    metadata = (("authorization", f"Bearer {token}"),)
    request = pb.BatchTranslateCodesRequest(tenant_id=TENANT, queries=[QUERY] * size)
    async with grpc.aio.insecure_channel(address) as channel:
        call = pb_grpc.CarrierMappingServiceStub(channel).BatchTranslateCodes
        await _drive(call, request, metadata, 1.0, BATCH_IN_FLIGHT, [])
        latencies: list[float] = []
        elapsed = await _drive(call, request, metadata, seconds, BATCH_IN_FLIGHT, latencies)
    return len(latencies) * size / elapsed


async def _drive(call, request, metadata, seconds: float, concurrency: int, latencies: list[float]) -> float:
    started = time.perf_counter()
    stop_at = started + seconds

    async def worker() -> None:
        while (now := time.perf_counter()) < stop_at:
            await call(request, metadata=metadata, timeout=10)
            latencies.append(time.perf_counter() - now)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


# ---- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start(args: list[str], env: dict[str, str], port: int, log: Path) -> asyncio.subprocess.Process:
    with open(log, "ab") as out:  # noqa: ASYNC230 - handed to the child process
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=out
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


async def main(seconds: float, concurrency: int, size: int) -> None:
    dsn = os.environ.get("ORDERSYNC_PG_DSN")
    if not dsn:
        sys.exit("ORDERSYNC_PG_DSN is not set: run through `make bench-mapping` or source .run/infra.env")
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
            processes.append(await start(["-m", "carrier_mapping"], env, service_port, log))
            bare_args = ["-m", "tests.system.bench_mapping", "--serve-bare", str(bare_port)]
            processes.append(await start(bare_args, {}, bare_port, log))
            await report(f"127.0.0.1:{service_port}", f"127.0.0.1:{bare_port}", token, seconds, concurrency, size)
        finally:
            for process in processes:
                await stop(process)
            await _drop_schema(dsn, schema)


async def report(service: str, bare: str, token: str, seconds: float, concurrency: int, size: int) -> None:
    print(f"bench-mapping: {seconds:g} s per run, unary at concurrency {concurrency}, batches of {size}")
    bare_unary = await unary(bare, token, seconds, concurrency)
    real_unary = await unary(service, token, seconds, concurrency)
    bare_batch = await batch(bare, token, seconds, size)
    real_batch = await batch(service, token, seconds, size)
    for name, r in (("bare grpc.aio", bare_unary), ("carrier-mapping", real_unary)):
        print(f"  unary  {name:<16} {r.rps:8.0f} rps   p50 {r.p50_ms:6.2f} ms   p99 {r.p99_ms:6.2f} ms")
    for name, rate in (("bare grpc.aio", bare_batch), ("carrier-mapping", real_batch)):
        print(f"  batch  {name:<16} {rate:8.0f} translations/s")
    ratio = real_unary.rps / bare_unary.rps
    print(
        f"bench-mapping: unary {real_unary.rps:.0f} rps (bare {bare_unary.rps:.0f} rps, ratio {ratio:.2f}), "
        f"p99 {real_unary.p99_ms:.2f} ms; batch {real_batch:.0f} translations/s"
    )


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        asyncio.run(serve_bare(options.serve_bare))
    else:
        asyncio.run(main(options.seconds, options.concurrency, options.batch))
