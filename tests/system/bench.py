"""Benchmark: N orders through the five services, beside a bare Kafka relay on the same broker.

End to end: from the webhook's 202 at order intake to the order's arrival at the Vinoshipper
simulator (both stamped with this machine's clock). The ceiling: the same number of messages of
the same size relayed by plain aiokafka through the same number of Kafka hops (intake.orders,
compliance.decisions), with no database and no HTTP. The ratio says how much of the broker's
ceiling the services keep.

Phases: saturated (every order posted at once), its tail (until the shipments' and writebacks'
work is drained: no outbox backlog, queued item or consumer lag left in any service's metrics),
then three paced rounds, each from an idle system. For each phase, every process's CPU-seconds
per 1,000 orders (tests/system/cpu_usage.py) says what the product costs apart from the
harness (simulators, load generator), and which process bounds the throughput. `--profile
<service>` samples one service with py-spy through the saturated phase. `--replicas N` runs N
processes of dispatch and of writeback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from tests.system.cpu_usage import CpuMeter, MeteredProcess, listening_pid
from tests.system.stack import REPO, SERVICES, STORE, Stack, TenantSpec

TENANT = TenantSpec.commerce7_vinoshipper(
    "bench-winery",
    chosen_states=["CA"],
    products=[f"BENCH-{i}" for i in range(5)],
    licensed_states=["CA"],
    order_number_prefix="BENCH",
)
STORE_ACCOUNT = TENANT.account(STORE)
KAFKA_HOPS = 2


def webhook_body(i: int) -> bytes:
    """A Commerce7 order webhook as the channel sends it (one shipping order to California)."""
    now = "2026-11-23T10:00:00.000Z"
    address = {
        "firstName": "Ava",
        "lastName": f"Buyer{i}",
        "address": f"{i} Vine St",
        "city": "Napa",
        "stateCode": "CA",
        "zipCode": "94558",
        "countryCode": "US",
        "phone": "555-0100",
    }
    order = {
        "id": str(uuid.uuid4()),
        "orderNumber": 100000 + i,
        "orderSubmittedDate": now,
        "orderPaidDate": now,
        "createdAt": now,
        "updatedAt": now,
        "paymentStatus": "Paid",
        "complianceStatus": "Not Checked",
        "fulfillmentStatus": "Not Fulfilled",
        "channel": "Web",
        "orderDeliveryMethod": "Ship",
        "customer": {
            "id": str(uuid.uuid4()),
            "firstName": "Ava",
            "lastName": f"Buyer{i}",
            "emails": [{"email": f"ava{i}@example.com"}],
            "birthDate": "1980-01-01",
        },
        "shipTo": address,
        "billTo": address,
        "shipping": [{"carrier": "UPS", "service": "Ground", "code": "03", "title": "UPS Ground", "price": 1500}],
        "items": [
            {
                "id": str(uuid.uuid4()),
                "sku": f"BENCH-{i % 5}",
                "quantity": 2,
                "price": 2500,
                "purchaseTitle": "Bench Red",
                "quantityFulfilled": 0,
                "hasShipping": True,
            }
        ],
        "subTotal": 5000,
        "shipTotal": 1500,
        "taxTotal": 400,
        "tipTotal": 0,
        "total": 6900,
    }
    return json.dumps(
        {"object": "Order", "action": "Create", "payload": order, "user": "bench", "tenantId": TENANT.tenant_id}
    ).encode()


async def run_e2e(
    stack: Stack, *, first: int, count: int, concurrency: int, rate: float | None = None
) -> tuple[float, list[float]]:
    """Post orders first..first+count as webhooks (as fast as possible, or at `rate` per second).

    Returns throughput (orders/s from the first 202 to the last arrival at the provider) and each
    order's latency in ms from its 202 to its arrival.
    """
    url = f"{stack.http_url('order_intake')}/webhooks/commerce7/{TENANT.tenant_id}"
    bodies = {i: webhook_body(i) for i in range(first, first + count)}
    accepted_at: dict[int, float] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in bodies:
        queue.put_nowait(i)
    headers = {
        "Content-Type": "application/json",
        "Authorization": aiohttp.encode_basic_auth(STORE_ACCOUNT["webhook_user"], STORE_ACCOUNT["webhook_password"]),
    }
    # aiohttp rather than httpx here: the load generator shares the two cores with the system
    # under test, and aiohttp's client costs a fraction of the CPU per request.
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(60)
    ) as session:
        started = time.time()

        async def post_webhooks():
            while not queue.empty():
                i = queue.get_nowait()
                if rate:
                    await asyncio.sleep(max(0.0, started + (i - first) / rate - time.time()))
                async with session.post(url, data=bodies[i]) as response:
                    if response.status != 202:
                        raise RuntimeError(f"webhook {i} answered {response.status}: {await response.text()}")
                accepted_at[100000 + i] = time.time()

        await asyncio.gather(*(post_webhooks() for _ in range(concurrency)))
        print(f"bench: {count} webhooks accepted in {time.time() - started:.1f} s")
    received = await wait_for_provider(stack, first + count)
    latencies = [(received[f"BENCH-{number}"] - accepted) * 1000 for number, accepted in accepted_at.items()]
    elapsed = max(received[f"BENCH-{n}"] for n in accepted_at) - min(accepted_at.values())
    return count / elapsed, latencies


async def wait_for_provider(stack: Stack, orders: int, timeout_s: float = 1800) -> dict[str, float]:
    """Poll the Vinoshipper simulator until every order arrived; return receivedAt (epoch s) by number."""
    deadline = time.monotonic() + timeout_s
    while True:
        stats = (await stack.http.get(f"{stack.sim_urls['vinoshipper']}/_sim/stats")).json()
        if stats["orders_created"] >= orders:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {stats['orders_created']} of {orders} orders reached the provider")
        await asyncio.sleep(1.0)
    listing = (await stack.http.get(f"{stack.sim_urls['vinoshipper']}/_sim/orders", timeout=120)).json()["orders"]
    if stats["duplicate_submissions"]:
        raise RuntimeError(f"{stats['duplicate_submissions']} duplicate submissions reached the provider")
    return {o["orderNumber"]: o["receivedAt"] / 1000 for o in listing}


async def run_bare_relay(bootstrap: str, messages: int, size: int) -> float:
    """Produce `messages` into topic 0, relay them hop by hop, and time their arrival at the last topic."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}.hop{i}" for i in range(KAFKA_HOPS + 1)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(n, num_partitions=8, replication_factor=1) for n in names])
    await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=512 * 1024
    )
    await producer.start()
    relays = [asyncio.create_task(_relay(bootstrap, names[i], names[i + 1], producer)) for i in range(KAFKA_HOPS)]
    sink = asyncio.create_task(_count(bootstrap, names[-1], messages))
    await asyncio.sleep(3)  # let the relay consumers join their groups before the clock starts
    payload = b"x" * size
    started = time.time()
    for i in range(messages):
        await producer.send(names[0], payload, key=str(i).encode())
    await producer.flush()
    finished = await sink
    for task in relays:
        task.cancel()
    await asyncio.gather(*relays, return_exceptions=True)
    await producer.stop()
    return messages / (finished - started)


async def _relay(bootstrap: str, source: str, target: str, producer: AIOKafkaProducer) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"relay-{source}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            sends = [await producer.send(target, r.value, key=r.key) for rs in batches.values() for r in rs]
            if sends:
                await asyncio.gather(*sends)
                await consumer.commit()
    finally:
        await consumer.stop()


async def _count(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"sink-{topic}", auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = 0
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=200)
            seen += sum(len(rs) for rs in batches.values())
        return time.time()
    finally:
        await consumer.stop()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 1 else values[0]


# ---- where the CPU goes -----------------------------------------------------------------------

HARNESS = "load generator"  # this process: webhook posts, provider polls, idle checks


def cpu_meter(stack: Stack) -> CpuMeter:
    """Every process of the run: the stack's services and simulators, Kafka and Postgres (found by
    the ports they serve), and this process, the load generator."""
    kafka_port = int(stack.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])
    postgres_port = urlsplit(stack.admin_dsn).port or 5432
    processes = [MeteredProcess(name, pid) for name, pid in stack.processes().items()]
    processes += [
        MeteredProcess("kafka", listening_pid(kafka_port)),
        MeteredProcess("postgres", listening_pid(postgres_port), with_children=True),
        MeteredProcess(HARNESS, os.getpid()),
    ]
    return CpuMeter(processes)


def is_ordersync(process: str) -> bool:
    return process.rsplit("-", 1)[0] in SERVICES


@dataclass
class Phase:
    """One stretch of the run: its orders, wall-clock seconds and each process's CPU-seconds."""

    name: str
    orders: int
    seconds: float
    cpu: dict[str, float]

    def per_thousand(self, process: str) -> float:
        return self.cpu[process] * 1000 / self.orders

    @property
    def ordersync_cpu(self) -> float:
        return sum(cpu for process, cpu in self.cpu.items() if is_ordersync(process))

    @property
    def cores_busy(self) -> float:
        return sum(self.cpu.values()) / self.seconds


def cpu_table(phases: list[Phase]) -> str:
    """CPU-seconds per 1,000 orders, a row per process (busiest first), a column per phase."""
    processes = sorted(phases[0].cpu, key=lambda p: -sum(ph.cpu[p] for ph in phases))
    width = max(len(p) for p in processes) + 2
    lines = ["process".ljust(width) + "".join(f"{ph.name:>14}" for ph in phases)]
    for process in processes:
        lines.append(process.ljust(width) + "".join(f"{ph.per_thousand(process):14.2f}" for ph in phases))
    lines.append("ordersync".ljust(width) + "".join(f"{ph.ordersync_cpu * 1000 / ph.orders:14.2f}" for ph in phases))
    lines.append("all".ljust(width) + "".join(f"{sum(ph.cpu.values()) * 1000 / ph.orders:14.2f}" for ph in phases))
    lines.append("cores busy".ljust(width) + "".join(f"{ph.cores_busy:14.2f}" for ph in phases))
    return "\n".join(lines)


def bounding_process(phase: Phase) -> str:
    """What bounds the phase's throughput: the cores, when they are (nearly) all busy, and then the
    process using most of them; otherwise a wait outside the CPU (the provider, a batch timer)."""
    busiest = max(phase.cpu, key=phase.cpu.get)
    share = phase.cpu[busiest] / sum(phase.cpu.values())
    cores = os.cpu_count() or 1
    if phase.cores_busy >= 0.75 * cores:
        return f"the {cores} cores ({phase.cores_busy:.2f} busy), most of them in {busiest} ({share:.0%} of the CPU)"
    return f"not the CPU ({phase.cores_busy:.2f} of {cores} cores busy): a wait; busiest {busiest} ({share:.0%})"


# ---- idle ------------------------------------------------------------------------------------

# The gauges that say work is still in flight, summed over every service (libs/platform/metrics.py).
BACKLOG_GAUGES = ("ordersync_outbox_backlog_events", "ordersync_work_queue_items", "ordersync_kafka_consumer_lag")


async def backlog(stack: Stack) -> float:
    """Events, queued items and consumer lag still to handle, from every process's /metrics."""
    total = 0.0
    for url in stack.metrics_urls():
        text = (await stack.http.get(url)).text
        for family in text_string_to_metric_families(text):
            if family.name in BACKLOG_GAUGES:
                total += sum(sample.value for sample in family.samples)
    return total


async def wait_until_idle(stack: Stack, timeout_s: float = 600) -> float:
    """Wait until nothing is in flight in two readings in a row (each gauge is sampled every second,
    so two readings 1.5 s apart are fresh); returns the seconds waited."""
    started = time.monotonic()
    quiet_readings = 0
    while quiet_readings < 2:
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"still {await backlog(stack):.0f} items in flight after {timeout_s} s")
        quiet_readings = quiet_readings + 1 if await backlog(stack) == 0 else 0
        await asyncio.sleep(1.5)
    return time.monotonic() - started


# ---- profiles ----------------------------------------------------------------------------------

# Libraries by the path py-spy names a frame with (relative to its package root).
PROFILE_GROUPS = {
    "httpx+httpcore": ("httpx/_", "httpcore/", "h11/", "anyio/"),
    "aiohttp": ("aiohttp/", "multidict/", "yarl/"),
    "asyncpg": ("asyncpg/",),
    "aiokafka": ("aiokafka/",),
    # the SDK and API (trace/, context/, ...) and the instrumentations' wrappers
    "opentelemetry": ("trace/", "sdk/", "context/", "propagate/", "attributes/", "instrumentation/", "httpx/__init__"),
    "json": ("json/",),
    "protobuf": ("google/protobuf/",),
    "pydantic": ("pydantic/",),
    "structlog+logging": ("structlog/", "logging/"),
    "asyncio (event loop, sockets)": ("asyncio/", "selectors.py"),
}


def frame_path(frame: str) -> str:
    """ "Client.send (httpx/_client.py:1629)" -> "httpx/_client.py:1629"."""
    return frame[frame.rfind("(") + 1 : -1]


def frame_group(frame: str) -> str | None:
    path = frame_path(frame)
    if "Instrumentor" in frame:
        return "opentelemetry"
    return next((group for group, roots in PROFILE_GROUPS.items() if path.startswith(roots)), None)


class Profiler:
    """py-spy sampling one process (not its idle waits) for a phase; `summary()` says where the
    samples fell: each library's share of them (a sample counts for every library on its stack)
    and the functions most often on top."""

    def __init__(self, pid: int, path: Path):
        self.pid, self.path = pid, path
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *(
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--rate",
                "200",
            ),
            *("--nonblocking", "--output", str(self.path)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        self._process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        await self._process.wait()

    def summary(self, top: int = 12) -> str:
        stacks = []
        for line in self.path.read_text().splitlines():
            frames, _, count = line.rpartition(" ")
            stacks.append((frames.split(";"), int(count)))
        total = sum(count for _, count in stacks) or 1
        lines = [f"{total} samples; per library: on the stack / on top (its own code)"]
        for group in PROFILE_GROUPS:
            inside = sum(c for frames, c in stacks if any(frame_group(f) == group for f in frames))
            on_top = sum(c for frames, c in stacks if frame_group(frames[-1]) == group)
            if inside:
                lines.append(f"  {inside / total:6.1%} / {on_top / total:6.1%}  {group}")
        tops: dict[str, int] = {}
        for frames, count in stacks:
            tops[frames[-1]] = tops.get(frames[-1], 0) + count
        lines.append("  most often on top:")
        for frame, count in sorted(tops.items(), key=lambda item: -item[1])[:top]:
            lines.append(f"  {count / total:6.1%}  {frame}")
        return "\n".join(lines)


# ---- the run ---------------------------------------------------------------------------------

# Production's settings where the test stack shortens them: dispatch reads back a sent order
# after 15 minutes (the stack: 3 s) and services reread the tenants file every 10 s. Gauges stay
# sampled every second for wait_until_idle.
PRODUCTION_SETTINGS = {"ORDERSYNC_STATUS_CHECK_S": "900", "ORDERSYNC_TENANTS_RELOAD_S": "10"}
PACED_ROUNDS = 3


async def measured(meter: CpuMeter, name: str, orders: int, work) -> tuple[Phase, object]:
    reading, started = meter.reading(), time.monotonic()
    result = await work
    return Phase(name, orders, time.monotonic() - started, meter.since(reading)), result


async def main(
    orders: int, concurrency: int, paced_orders: int, paced_rate: float, replicas: int, profile: str | None
) -> int:
    run_dir = REPO / ".run" / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    scaled = {"fulfillment_dispatch": replicas, "tracking_writeback": replicas} if replicas > 1 else {}
    async with Stack([TENANT], run_dir=run_dir, service_env=PRODUCTION_SETTINGS, replicas=scaled) as stack:
        meter = cpu_meter(stack)
        print(f"bench: {orders} orders, {concurrency} concurrent webhook senders, {replicas} of dispatch and writeback")
        profiler = None
        if profile:
            profiler = Profiler(stack.processes()[profile], run_dir / f"profile-{profile}.txt")
            await profiler.start()
        saturated, (throughput, latencies) = await measured(
            meter, "saturated", orders, run_e2e(stack, first=0, count=orders, concurrency=concurrency)
        )
        if profiler:
            await profiler.stop()
        p50, p99 = statistics.median(latencies), percentile(latencies, 99)
        print(
            f"bench: saturated: {throughput:.0f} orders/s; latency (mostly queueing) p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
        tail, waited = await measured(meter, "tail", orders, wait_until_idle(stack))
        print(f"bench: idle again {waited:.1f} s after the last order reached the provider")
        phases = [saturated, tail]
        paced_p50, paced_p99 = [], []
        for round_number in range(PACED_ROUNDS):
            first = orders + round_number * paced_orders
            phase, (_, paced) = await measured(
                meter,
                f"paced {round_number + 1}",
                paced_orders,
                run_e2e(stack, first=first, count=paced_orders, concurrency=concurrency, rate=paced_rate),
            )
            await wait_until_idle(stack)
            phases.append(phase)
            paced_p50.append(statistics.median(paced))
            paced_p99.append(percentile(paced, 99))
            print(f"bench: paced round {round_number + 1}: p50 {paced_p50[-1]:.0f} ms, p99 {paced_p99[-1]:.0f} ms")
        size = len(webhook_body(0))
        bare = await run_bare_relay(stack.kafka_bootstrap, orders, size)
    ordersync_ms = (saturated.ordersync_cpu + tail.ordersync_cpu) * 1000 / orders
    print("bench: CPU-seconds per 1,000 orders (saturated, its tail drained, each paced round):")
    print(cpu_table(phases))
    print(f"bench: the saturated phase is bounded by {bounding_process(saturated)}")
    if profiler:
        print(f"bench: profile of {profile} in the saturated phase ({profiler.path.name}):")
        print(profiler.summary())
    print(
        f"bench: paced at {paced_rate:.0f} orders/s ({paced_orders} orders, median of {PACED_ROUNDS} rounds): "
        f"p50 {statistics.median(paced_p50):.0f} ms, p99 {statistics.median(paced_p99):.0f} ms"
    )
    print(f"bench: bare aiokafka relay of {orders} messages of {size} bytes through {KAFKA_HOPS} hops")
    print(
        f"bench: e2e {throughput:.0f} orders/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
        f"bare relay {bare:.0f} msgs/s; ratio {throughput / bare:.2f}; ordersync cpu {ordersync_ms:.1f} ms/order"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--paced-orders", type=int, default=1000, help="orders of each paced latency round")
    parser.add_argument("--paced-rate", type=float, default=100.0, help="orders/s of the paced latency rounds")
    parser.add_argument("--replicas", type=int, default=1, help="processes of dispatch and of writeback")
    parser.add_argument("--profile", help="py-spy one process in the saturated phase, e.g. fulfillment_dispatch")
    arguments = parser.parse_args()
    sys.exit(
        asyncio.run(
            main(
                arguments.orders,
                arguments.concurrency,
                arguments.paced_orders,
                arguments.paced_rate,
                arguments.replicas,
                arguments.profile,
            )
        )
    )
