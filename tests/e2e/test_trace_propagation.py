"""One order, one trace: every event it produces on every topic, and the spans of all five
services, share the trace id it got at intake; and an idle system exports no trace at all."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer

from libs.platform.events import parse_envelope
from tests.e2e.conftest import Driver, tenant, web_order
from tests.system.journey import JourneyReader
from tests.system.stack import READER, Stack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]

# Every topic an order's journey writes to, in journey order.
TOPICS = (
    "intake.orders.v1",
    "compliance.decisions.v1",
    "dispatch.orders.v1",
    "dispatch.shipments.v1",
    "tracking.writebacks.v1",
)
SERVICES = ("order-intake", "compliance-routing", "fulfillment-dispatch", "tracking-writeback")
# Spans reach the trace file within a schedule delay of the batch span processor (set short here).
EXPORT_DELAY_S = 0.5


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def traced(infra, tmp_path_factory):
    spec = tenant()
    run_dir = tmp_path_factory.mktemp("traced")
    trace_file = run_dir / "traces.jsonl"
    fast_polls = {
        "OTEL_BSP_SCHEDULE_DELAY": str(int(EXPORT_DELAY_S * 1000)),
        # Shipments are polled too (idle passes that call the provider over HTTP), not only queues.
        "ORDERSYNC_DISPATCH_SHIPMENT_POLL_S": "1",
    }
    async with Stack(
        [spec],
        run_dir=run_dir,
        pg_dsn=infra.pg_dsn,
        kafka_bootstrap=infra.kafka_bootstrap,
        trace_file=trace_file,
        service_env=fast_polls,
    ) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses, stack.token(READER)) as reader:
            driver = Driver(stack, reader, spec.tenant_id)
            yield driver, trace_file
            await driver.close()


def _spans(trace_file: Path) -> list[dict]:
    if not trace_file.exists():
        return []
    return [json.loads(line) for line in trace_file.read_text().splitlines() if line.strip()]


async def _events_of(stack: Stack, order_id: str) -> dict[str, list[str]]:
    """The trace id in the traceparent header of each event of `order_id`, per topic."""
    consumer = AIOKafkaConsumer(
        *(stack.topic_prefix + topic for topic in TOPICS),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        found: dict[str, list[str]] = {topic: [] for topic in TOPICS}
        empty_fetches = 0
        while empty_fetches < 3:  # every event of the journey is written before the writeback is read back
            batches = await consumer.getmany(timeout_ms=500)
            empty_fetches = 0 if batches else empty_fetches + 1
            for record in (r for batch in batches.values() for r in batch):
                if parse_envelope(record.value).aggregate_id != order_id:
                    continue
                headers = {key: value.decode() for key, value in record.headers}
                traceparent = headers.get("traceparent", "")
                found[record.topic.removeprefix(stack.topic_prefix)].append(
                    traceparent.split("-")[1:2][0] if traceparent else ""
                )
        return found
    finally:
        await consumer.stop()


async def _settled(trace_file: Path, quiet_s: float, timeout_s: float = 30.0) -> int:
    """Wait until the trace file stopped growing for `quiet_s`; return its line count."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(_spans(trace_file))
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return count
        await asyncio.sleep(0.2)
    raise AssertionError(f"spans kept coming for {timeout_s} s: the journey never settled")


async def test_one_order_has_one_trace_from_webhook_to_writeback(traced):
    driver, trace_file = traced
    placed = await driver.place(web_order(state="CA", code="02"))
    order = placed["order"]
    sent = await driver.wait_for(order["id"], lambda j: j.dispatch == "sent")
    await driver.provider(sent.provider_order_number, "fulfil")
    await driver.provider(sent.provider_order_number, "ship", trackingNumbers=["1ZTRACEPROP000001"])
    done = await driver.wait_for(order["id"], lambda j: j.written_back == "shipped")
    assert len(done.trace_id) == 32

    events = await _events_of(driver.stack, done.order_id)
    assert all(events[topic] for topic in TOPICS), f"an order's event is missing: {events}"
    assert {topic: set(ids) for topic, ids in events.items()} == {topic: {done.trace_id} for topic in TOPICS}

    await _settled(trace_file, quiet_s=3 * EXPORT_DELAY_S)
    in_trace = [span for span in _spans(trace_file) if span["trace_id"] == done.trace_id]
    assert {span["service"] for span in in_trace} >= set(SERVICES)
    # carrier_mapping has no server spans (it answers in microseconds): its calls are the
    # callers' client spans inside the order's trace.
    mapping_calls = [s for s in in_trace if "CarrierMappingService" in str(s["attributes"].get("rpc.service", ""))]
    assert mapping_calls and {s["kind"] for s in mapping_calls} == {"CLIENT"}


async def test_an_idle_system_exports_no_trace(traced):
    driver, trace_file = traced
    # Whatever work the previous test left (late consumers, read-backs) is exported first.
    before = await _settled(trace_file, quiet_s=3 * EXPORT_DELAY_S)
    polls_before = sum((await driver.provider_stats())["requests"].values())
    # 15 s: every service polls its queues, outbox, schedules and tenants file at least once a
    # second and dispatch polls Vinoshipper's shipments every second, so this is dozens of idle
    # passes per service (each of which used to export a trace of SQL spans), while staying
    # within CI's time; spans of the first 14.5 s would have been exported by its end.
    await asyncio.sleep(15)
    new = _spans(trace_file)[before:]
    assert new == [], f"idle passes exported {len(new)} spans, e.g. {new[:3]}"
    # The period had idle passes that called out, not only SQL: dispatch polled the provider.
    assert sum((await driver.provider_stats())["requests"].values()) > polls_before
