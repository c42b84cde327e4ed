"""Benchmark: N orders through the five services, beside a bare Kafka relay on the same broker.

End to end: from the webhook's 202 at order intake to the order's arrival at the Vinoshipper
simulator (both stamped with this machine's clock). The ceiling: the same number of messages of
the same size relayed by plain aiokafka through the same number of Kafka hops (intake.orders,
compliance.decisions), with no database and no HTTP. The ratio says how much of the broker's
ceiling the services keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.system.stack import REPO, STORE, Stack, TenantSpec

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


async def main(orders: int, concurrency: int, paced_orders: int, paced_rate: float) -> int:
    run_dir = REPO / ".run" / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    async with Stack([TENANT], run_dir=run_dir) as stack:
        print(f"bench: {orders} orders, {concurrency} concurrent webhook senders; services up")
        throughput, latencies = await run_e2e(stack, first=0, count=orders, concurrency=concurrency)
        p50, p99 = statistics.median(latencies), percentile(latencies, 99)
        print(
            f"bench: saturated: {throughput:.0f} orders/s; latency (mostly queueing) p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
        _, paced = await run_e2e(stack, first=orders, count=paced_orders, concurrency=concurrency, rate=paced_rate)
        print(
            f"bench: paced at {paced_rate:.0f} orders/s ({paced_orders} orders): latency p50 "
            f"{statistics.median(paced):.0f} ms, p99 {percentile(paced, 99):.0f} ms"
        )
        size = len(webhook_body(0))
        bare = await run_bare_relay(stack.kafka_bootstrap, orders, size)
    print(f"bench: bare aiokafka relay of {orders} messages of {size} bytes through {KAFKA_HOPS} hops")
    print(
        f"bench: e2e {throughput:.0f} orders/s, p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
        f"bare relay {bare:.0f} msgs/s; ratio {throughput / bare:.2f}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--paced-orders", type=int, default=1000, help="orders of the paced latency run")
    parser.add_argument("--paced-rate", type=float, default=50.0, help="orders/s of the paced latency run")
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.orders, arguments.concurrency, arguments.paced_orders, arguments.paced_rate)))
