"""CellarPass → VinSuite under kill -9: a service killed mid-batch leaves exactly one VinSuite
order per reservation, and CellarPass is told each one's OrderID once the restarted service
catches up.

Both simulators run in this test process, so a hook can SIGKILL a service at the exact moment:
when VinSuite has stored the k-th order of the batch, before the AddOrder answer reached anyone.
VinSuite's AddOrder has no upsert, so a dispatch that forgot what it sent would make a second
order; the connector's read-back (SearchOrders on the order number) must find the first. Each
test has its own stack, the killed service restarted as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tests.simulators import cellarpass, vinsuite
from tests.simulators.common import SimulatorServer
from tests.system.cellarpass_vinsuite import Club, Hub, Winery, eventually
from tests.system.stack import Stack, TenantSpec

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e, pytest.mark.timeout(300)]

RESERVATIONS = 24
KILL_AT = 7  # the order VinSuite stores just before the kill
# A restarted poller or sender takes the account's lease over once the dead one's lapses.
SERVICE_ENV = {"ORDERSYNC_INTAKE_PULL_LEASE_S": "3", "ORDERSYNC_DISPATCH_LEASE_S": "2"}


class Crashing:
    """A stack whose CellarPass and VinSuite simulators run in this process, for hooks to kill by."""

    def __init__(self, stack: Stack, vinsuite_state: vinsuite.VinSuiteState):
        self.stack = stack
        self.vinsuite = vinsuite_state
        self.killed = asyncio.Event()

    def kill_at_order(self, service: str, k: int) -> None:
        """SIGKILL `service` once VinSuite has stored its k-th order (before answering it)."""

        def hook(_order) -> None:
            if len(self.vinsuite.orders) == k and not self.killed.is_set():
                os.kill(self.stack.services[service].process.pid, signal.SIGKILL)
                self.killed.set()

        self.vinsuite.on_order_created.append(hook)

    async def restart(self, service: str) -> None:
        await asyncio.wait_for(self.killed.wait(), 120)
        await self.stack.services[service].process.wait()
        await self.stack.start_service(service)


@contextlib.asynccontextmanager
async def crashing_stack(infra, tenant_id: str, tmp_path) -> AsyncIterator[tuple[Crashing, Winery, Club]]:
    spec = TenantSpec.cellarpass_vinsuite(
        tenant_id,
        # Pages of 5: the batch spans pages, so a kill lands between a page's commit and the next.
        cellarpass={"poll_interval_s": 1, "page_size": 5},
        vinsuite={"order_number_prefix": "CRASH-", "requests_per_minute": 1200},
    )
    cellarpass_app = cellarpass.create_app(cellarpass.CellarPassConfig(rate_limit_per_minute=0))
    vinsuite_app = vinsuite.create_app(vinsuite.VinSuiteConfig(requests_per_minute=0))
    async with SimulatorServer(cellarpass_app) as cellarpass_sim, SimulatorServer(vinsuite_app) as vinsuite_sim:
        stack = Stack(
            [spec],
            run_dir=tmp_path,
            pg_dsn=infra.pg_dsn,
            kafka_bootstrap=infra.kafka_bootstrap,
            external_simulators={"cellarpass": cellarpass_sim.base_url, "vinsuite": vinsuite_sim.base_url},
            service_env=SERVICE_ENV,
        )
        async with stack, Hub(stack):
            yield Crashing(stack, vinsuite_app[vinsuite.STATE_KEY]), Winery(stack, spec), Club(stack, spec)


async def every_reservation_once(winery: Winery, club: Club, booked: list[dict]) -> None:
    """Every reservation Processed in CellarPass with the OrderID of its one VinSuite order."""
    ids = {r["reservationId"] for r in booked}
    shown = await eventually(
        winery.reservations,
        lambda rows: all(rows[i]["syncStatus"] == "Processed" for i in ids),
        "every reservation Processed",
        timeout_s=180,
    )
    orders = await club.orders()
    per_number = Counter(o["OrderNumber"] for o in orders)
    assert {number: count for number, count in per_number.items() if count != 1} == {}, "duplicates in VinSuite"
    by_number = {o["OrderNumber"]: o for o in orders}
    assert set(by_number) == {club.order_number(r) for r in booked}
    for reservation in booked:
        order = by_number[club.order_number(reservation)]
        assert shown[reservation["reservationId"]]["externalOrderId"] == str(order["OrderID"])
        assert [i["SKU"] for i in order["OrderItems"]] == ["TAST-EST"]
    assert (await club.stats())["orders_created"] == len(booked)


async def test_dispatch_killed_as_vinsuite_stores_an_order_mid_batch_sends_every_reservation_once(infra, tmp_path):
    async with crashing_stack(infra, "crash-cp-dispatch", tmp_path) as (crashing, winery, club):
        crashing.kill_at_order("fulfillment_dispatch", KILL_AT)
        booked = await winery.book_many([{"guestNotes": f"party {n}"} for n in range(RESERVATIONS)])

        await crashing.restart("fulfillment_dispatch")

        await every_reservation_once(winery, club, booked)
        assert (await club.stats())["requests"].get("SearchOrders", 0) >= 1, "the restarted sender read back"
        notes = [o["Notes"] for o in await club.orders()]
        assert all(len(n) <= 1 for n in notes), "a note added twice"


async def test_intake_killed_mid_batch_sends_every_reservation_once(infra, tmp_path):
    async with crashing_stack(infra, "crash-cp-intake", tmp_path) as (crashing, winery, club):
        crashing.kill_at_order("order_intake", KILL_AT)
        booked = await winery.book_many([{} for _ in range(RESERVATIONS)])

        await crashing.restart("order_intake")

        await every_reservation_once(winery, club, booked)
