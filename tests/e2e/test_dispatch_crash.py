"""Dispatch dies between sending an order and recording it: the order still reaches the provider once."""

import asyncio
import os
import signal

import pytest

from tests.e2e.conftest import Driver, tenant, web_order
from tests.simulators.common import SimulatorServer
from tests.simulators.vinoshipper import STATE_KEY, VinoshipperConfig, create_app
from tests.system.journey import JourneyReader
from tests.system.stack import READER, Stack

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e, pytest.mark.timeout(240)]


async def test_crash_between_sending_and_recording_sends_nothing_twice(infra, tmp_path):
    spec = tenant("crash-winery", prefix="CRASH")
    provider_app = create_app(VinoshipperConfig())
    killed = asyncio.Event()
    async with SimulatorServer(provider_app) as provider:
        stack = Stack(
            [spec],
            run_dir=tmp_path,
            pg_dsn=infra.pg_dsn,
            kafka_bootstrap=infra.kafka_bootstrap,
            external_simulators={"vinoshipper": provider.base_url},
            service_env={"ORDERSYNC_DISPATCH_LEASE_S": "2"},
        )

        def kill_dispatch_once(_order: dict) -> None:
            # The provider has stored the order; dispatch dies before it hears the answer.
            if not killed.is_set():
                os.kill(stack.services["fulfillment_dispatch"].process.pid, signal.SIGKILL)
                killed.set()

        provider_app[STATE_KEY].on_order_created.append(kill_dispatch_once)
        async with stack:
            addresses = {name: stack.grpc_address(name) for name in stack.services}
            async with JourneyReader(addresses, stack.token(READER)) as reader:
                driver = Driver(stack, reader, spec.tenant_id)
                placed = (await driver.place(web_order()))["order"]
                await asyncio.wait_for(killed.wait(), 60)
                await stack.services["fulfillment_dispatch"].process.wait()
                conn = await stack.connect_service_db()
                try:
                    status = await conn.fetchval("SELECT status FROM fulfillment_dispatch.dispatches")
                finally:
                    await conn.close()
                assert status == "sending", "dispatch died before recording the provider's answer"

                await stack.start_service("fulfillment_dispatch")
                journey = await driver.wait_for(placed["id"], lambda j: j.dispatch == "sent", timeout_s=60)

                stats = await driver.provider_stats()
                assert stats["orders_created"] == 1
                assert stats["duplicate_submissions"] == 0
                assert stats["requests"].get("upsert", 0) == 1, "the order must be sent exactly once"
                assert journey.provider_order_number == f"CRASH-{placed['orderNumber']}"
