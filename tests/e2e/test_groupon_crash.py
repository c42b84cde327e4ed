"""Groupon → Mintsoft under kill -9: a crash between the Mintsoft create and mark_exported leaves
one Mintsoft order, and the lines are marked exported once the restarted service catches up.

Both simulators run in this test process, so a hook can SIGKILL a service at the exact moment:
when Mintsoft has stored the order (before anyone heard the answer), or when CommerceInterface
receives mark_exported (before it marks the lines). Each test has its own stack, the killed
service restarted as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import pytest

from tests.simulators import groupon, mintsoft
from tests.simulators.common import SimulatorServer
from tests.system.groupon_warehouse import Hub, Warehouse, eventually
from tests.system.stack import Stack, TenantSpec

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e, pytest.mark.timeout(240)]

SKUS = ["GRP-SKU-1", "GRP-SKU-2"]
# A restarted poller takes the account's lease over once the dead one's lapses.
SERVICE_ENV = {"ORDERSYNC_INTAKE_PULL_LEASE_S": "3", "ORDERSYNC_DISPATCH_LEASE_S": "2"}


class Crashing:
    """A stack whose Groupon and Mintsoft simulators run in this process, for hooks to kill by."""

    def __init__(self, stack: Stack, groupon_state: groupon.GrouponState, mintsoft_state: mintsoft.MintsoftState):
        self.stack = stack
        self.groupon = groupon_state
        self.mintsoft = mintsoft_state
        self.killed = asyncio.Event()

    def kill_once(self, service: str) -> None:
        if not self.killed.is_set():
            os.kill(self.stack.services[service].process.pid, signal.SIGKILL)
            self.killed.set()

    async def restart(self, service: str) -> None:
        await asyncio.wait_for(self.killed.wait(), 60)
        await self.stack.services[service].process.wait()
        await self.stack.start_service(service)


@contextlib.asynccontextmanager
async def crashing_stack(infra, tenant_id: str, tmp_path) -> AsyncIterator[tuple[Crashing, Warehouse, Hub]]:
    spec = TenantSpec.groupon_mintsoft(
        tenant_id,
        groupon={"mark_exported": True, "poll_interval_s": 1},
        mintsoft={"products": SKUS, "order_number_prefix": "CRASH-"},
    )
    groupon_app = groupon.create_app(groupon.GrouponConfig())
    mintsoft_app = mintsoft.create_app(mintsoft.MintsoftConfig())
    async with SimulatorServer(groupon_app) as groupon_sim, SimulatorServer(mintsoft_app) as mintsoft_sim:
        stack = Stack(
            [spec],
            run_dir=tmp_path,
            pg_dsn=infra.pg_dsn,
            kafka_bootstrap=infra.kafka_bootstrap,
            external_simulators={"groupon": groupon_sim.base_url, "mintsoft": mintsoft_sim.base_url},
            service_env=SERVICE_ENV,
        )
        crashing = Crashing(stack, groupon_app[groupon.STATE_KEY], mintsoft_app[mintsoft.STATE_KEY])
        async with stack, Hub(stack) as hub:
            yield crashing, Warehouse(stack, spec), hub


async def exported_once(shop: Warehouse, order) -> None:
    """Every line of the order marked exported, by exactly one successful mark_exported each."""
    lines = await eventually(
        lambda: shop.groupon_lines(order), lambda ls: all(line["exported"] for line in ls), "lines exported"
    )
    ids = {line["ci_lineitemid"] for line in lines}
    marking = [c for c in await shop.groupon_calls("mark_exported") if c["success"] and ids & set(c["ci_lineitem_ids"])]
    assert marking, "mark_exported was called for the order's lines"


async def test_intake_killed_as_mintsoft_creates_the_order_leaves_one_order_and_exports_it_once(infra, tmp_path):
    async with crashing_stack(infra, "crash-intake-create", tmp_path) as (crashing, shop, _hub):
        crashing.mintsoft.on_order_created.append(lambda _order: crashing.kill_once("order_intake"))
        order = await shop.place(lines=2)

        await crashing.restart("order_intake")

        created = await shop.sent(order)
        await exported_once(shop, order)
        await asyncio.sleep(3)  # more polls: the lines are gone, nothing is created again
        assert [o["ID"] for o in await shop.in_mintsoft(order)] == [created["ID"]]
        [mark] = [c for c in await shop.groupon_calls("mark_exported") if c["success"]]
        assert mark["at"] >= created["created_at"]


async def test_intake_killed_while_calling_mark_exported_leaves_one_order_and_exports_it_after_restart(infra, tmp_path):
    async with crashing_stack(infra, "crash-intake-mark", tmp_path) as (crashing, shop, _hub):
        crashing.groupon.on_mark_exported.append(lambda _ids: crashing.kill_once("order_intake"))
        order = await shop.place(lines=2)
        created = await shop.sent(order)

        await crashing.restart("order_intake")

        await exported_once(shop, order)
        assert [o["ID"] for o in await shop.in_mintsoft(order)] == [created["ID"]]
        assert (await shop.mintsoft_stats())["orders_created"] == 1


async def test_dispatch_killed_before_hearing_the_create_answer_sends_nothing_twice(infra, tmp_path):
    async with crashing_stack(infra, "crash-dispatch", tmp_path) as (crashing, shop, hub):
        crashing.mintsoft.on_order_created.append(lambda _order: crashing.kill_once("fulfillment_dispatch"))
        order = await shop.place(lines=2)
        await asyncio.wait_for(crashing.killed.wait(), 60)
        assert not any(line["exported"] for line in await shop.groupon_lines(order)), "exported before recorded"

        await crashing.restart("fulfillment_dispatch")

        journey = await eventually(
            lambda: hub.journey(shop.spec.tenant_id, order), lambda j: j.dispatch == "sent", "sent"
        )
        assert journey.provider_order_number == shop.order_number(order)
        assert len(await shop.in_mintsoft(order)) == 1
        assert (await shop.mintsoft_stats())["orders_created"] == 1
        await exported_once(shop, order)
