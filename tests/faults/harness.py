"""What a fault scenario does to the system: send a burst of orders, inject a fault, then settle and judge.

A burst posts Commerce7 order webhooks to order intake at a steady rate, as the channel does: each
one is retried (connection refused, 5xx) until intake takes it with a 2xx, for at most a minute.
Settling waits until every accepted order has a terminal sync status in the admin API and the
provider holds no request any more, then judges the burst against the suite's invariant:

- every accepted order is terminal (Sent, Not Required, Failed or Voided), a non-sent one with its
  reason, a sent one held by the provider; none lost on the way, none stuck;
- the provider saw no duplicate submission (the simulator counts them in /_sim/stats).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import aiohttp
import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb

from tests.e2e.conftest import Driver
from tests.faults.infra import OwnInfra
from tests.system.bench import webhook_body
from tests.system.stack import STORE, Stack

TERMINAL = {
    admin_pb.SYNC_STATUS_SENT,
    admin_pb.SYNC_STATUS_NOT_REQUIRED,
    admin_pb.SYNC_STATUS_FAILED,
    admin_pb.SYNC_STATUS_VOIDED,
}
NEVER_DISPATCHED = "never reached dispatch"
NOT_AT_PROVIDER = "sent but unknown to the provider"
LOST = (NEVER_DISPATCHED, NOT_AT_PROVIDER)
# Dispatch submits an order with Vinoshipper's create-or-update (PUT /api/v3/p/orders), which the
# simulator names "upsert": provider faults aimed at order submission match that route.
SUBMIT_ROUTE = "upsert"
SUBMIT_ROUTES = ("create", "upsert")
CHANNEL_RETRY_S = 60.0  # how long the channel keeps redelivering one webhook
FIRST_ORDER_NUMBER = 100000  # bench.webhook_body numbers its orders from here


@dataclass(frozen=True)
class Profile:
    """How hard a run pushes: orders per burst, their pace, how often each scenario runs."""

    name: str
    orders: int
    rate: float  # webhooks per second
    rounds: int
    drain_timeout_s: float  # after the fault ends, how long the backlog may take to drain


SHORT = Profile("short", orders=60, rate=15.0, rounds=1, drain_timeout_s=120.0)
FULL = Profile("full", orders=200, rate=25.0, rounds=2, drain_timeout_s=300.0)


@dataclass
class Result:
    """One scenario's verdict: the table's row, and every violation found."""

    scenario: str
    accepted: int = 0
    terminal: int = 0
    stuck: int = 0
    lost: int = 0
    duplicates: int = 0
    submissions: int = 0  # create and create-or-update requests the provider received for the burst
    recovery_s: float | None = None  # None: the backlog never drained
    outcomes: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations


class AdminUnreachable(Exception):
    """The admin API did not answer when the backlog should have drained."""


class Burst:
    """`profile.orders` webhooks posted at `profile.rate` per second, in the background once started."""

    def __init__(self, url: str, headers: dict[str, str], first: int, profile: Profile):
        self._url = url
        self._headers = headers
        self._indexes = range(first, first + profile.orders)
        self._rate = profile.rate
        self.accepted: set[str] = set()  # channel order numbers intake took with a 2xx
        self.refused: dict[str, str] = {}  # channel order number -> intake's last answer
        self._progress = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self.started_at = 0.0

    def start(self) -> Burst:
        self.started_at = time.time()
        self._task = asyncio.create_task(self._post_all())
        return self

    async def wait_accepted(self, count: int) -> None:
        """Return once `count` orders are accepted (or the burst is over)."""
        async with self._progress:
            await self._progress.wait_for(lambda: len(self.accepted) >= count or self._task.done())

    async def finished(self) -> None:
        await self._task

    async def _post_all(self) -> None:
        # aiohttp, as in the benchmark: the load generator shares the cores with the system under test.
        async with aiohttp.ClientSession(headers=self._headers, timeout=aiohttp.ClientTimeout(total=10)) as session:
            await asyncio.gather(*(self._post(session, i, k) for k, i in enumerate(self._indexes)))

    async def _post(self, session: aiohttp.ClientSession, index: int, position: int) -> None:
        await asyncio.sleep(max(0.0, self.started_at + position / self._rate - time.time()))
        number, body = str(FIRST_ORDER_NUMBER + index), webhook_body(index)
        deadline = time.monotonic() + CHANNEL_RETRY_S
        while True:
            try:
                async with session.post(self._url, data=body) as response:
                    answer = f"{response.status} {await response.text()}"
                    if 200 <= response.status < 300:  # 200: an earlier delivery was stored, its answer lost
                        return await self._accept(number)
                    if response.status < 500:
                        self.refused[number] = answer  # a 4xx is final: the channel would not retry
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer = f"no answer ({exc.__class__.__name__})"
            if time.monotonic() > deadline:
                self.refused[number] = answer
                return
            await asyncio.sleep(0.5)

    async def _accept(self, number: str) -> None:
        async with self._progress:
            self.accepted.add(number)
            self._progress.notify_all()


class Harness:
    """The running system (own infrastructure, stack, driver) and the steps every scenario shares."""

    def __init__(self, infra: OwnInfra, stack: Stack, driver: Driver, profile: Profile):
        self.infra = infra
        self.stack = stack
        self.driver = driver
        self.profile = profile
        self._next_index = 0

    # ---- load ------------------------------------------------------------------------------

    def burst(self) -> Burst:
        """A new burst of orders never sent before; call start() on it."""
        tenant = self.stack.tenants[self.driver.tenant_id]
        store = tenant.account(STORE)
        url = f"{self.stack.http_url('order_intake')}/webhooks/commerce7/{tenant.tenant_id}"
        headers = {
            "Content-Type": "application/json",
            "Authorization": aiohttp.encode_basic_auth(store["webhook_user"], store["webhook_password"]),
        }
        burst = Burst(url, headers, self._next_index, self.profile)
        self._next_index += self.profile.orders
        return burst

    # ---- provider faults (the Vinoshipper simulator's /_sim/faults) ------------------------

    async def provider_fault(self, **fault) -> None:
        """Queue a fault for the provider's next matching requests (route, status, count, delay_s)."""
        response = await self.stack.http.post(f"{self.driver.vs}/_sim/faults", json=fault)
        response.raise_for_status()

    async def provider_faults_served(self) -> None:
        """Wait until the provider has served every queued fault."""
        deadline = time.monotonic() + self.profile.drain_timeout_s
        while (await self.stack.http.get(f"{self.driver.vs}/_sim/faults")).json()["pending"]:
            if time.monotonic() > deadline:
                raise TimeoutError("the provider still has faults queued: nothing asked for them")
            await asyncio.sleep(0.2)

    async def restore(self) -> None:
        """After a scenario that could not finish: no provider fault left queued, every service running."""
        with contextlib.suppress(httpx.HTTPError):
            await self.stack.http.delete(f"{self.driver.vs}/_sim/faults")
        for name, service in self.stack.services.items():
            if service.process is None or service.process.returncode is not None:
                await self.stack.start_service(name)

    # ---- settle and judge ------------------------------------------------------------------

    async def provider_stats(self) -> dict:
        return await self.driver.provider_stats()

    async def settle(self, name: str, burst: Burst, stats_before: dict, fault_over: float) -> Result:
        """Wait for the backlog to drain after the fault ended at `fault_over` (time.time()); judge it."""
        await burst.finished()
        result = Result(name, accepted=len(burst.accepted))
        try:
            syncs, drained_at = await self._drain(burst, fault_over)
        except AdminUnreachable as exc:
            result.stuck = result.accepted
            result.violations.append(f"{exc}: none of the {result.accepted} accepted orders can be seen")
            return result
        if drained_at is not None:
            result.recovery_s = max(0.0, drained_at - fault_over)
        await self._provider_quiet()
        await self._judge(result, burst, syncs)
        stats = await self.provider_stats()
        result.duplicates = stats["duplicate_submissions"] - stats_before["duplicate_submissions"]
        result.submissions = sum(
            stats["requests"].get(r, 0) - stats_before["requests"].get(r, 0) for r in SUBMIT_ROUTES
        )
        if result.duplicates:
            result.violations.append(f"{result.duplicates} duplicate submissions at the provider")
        if result.recovery_s is None:
            result.violations.append(f"backlog not drained {self.profile.drain_timeout_s:.0f} s after the fault")
        return result

    async def _drain(self, burst: Burst, fault_over: float) -> tuple[dict[str, admin_pb.OrderSync], float | None]:
        """Poll the admin API until every accepted order is terminal; return the last view and when.

        Raises AdminUnreachable when the admin API still fails at the deadline: then nothing can be
        said of the orders, rather than calling them lost.
        """
        deadline = max(time.time(), fault_over) + self.profile.drain_timeout_s
        while True:
            try:
                syncs, error = await self._syncs_since(burst.started_at - 5), None
            except grpc.aio.AioRpcError as exc:  # dispatch or its database may still be coming back
                syncs, error = {}, exc
            if not error and all(n in syncs and syncs[n].status in TERMINAL for n in burst.accepted):
                return syncs, time.time()
            if time.time() > deadline:
                if error:
                    raise AdminUnreachable(f"the admin API still fails: {error.code().name} {error.details()}")
                return syncs, None
            await asyncio.sleep(0.5)

    async def _syncs_since(self, since: float) -> dict[str, admin_pb.OrderSync]:
        """Every order of the tenant updated since `since`, by channel order number."""
        after = Timestamp()
        after.FromSeconds(int(since))
        found, token = {}, ""
        while True:
            page = await self.driver.admin().ListOrders(
                admin_pb.ListOrdersRequest(
                    tenant_id=self.driver.tenant_id, updated_after=after, page_size=500, page_token=token
                ),
                timeout=10,
            )
            found.update({sync.channel_ref.external_number: sync for sync in page.orders})
            token = page.next_page_token
            if not token:
                return found

    async def _provider_quiet(self, timeout_s: float = 30.0) -> None:
        """Wait until the provider holds no request: a slow create may still land, and be a duplicate."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = await self.provider_stats()
            if sum(stats["requests"].values()) == sum(stats["responses"].values()):
                return
            await asyncio.sleep(0.5)

    async def _judge(self, result: Result, burst: Burst, syncs: dict[str, admin_pb.OrderSync]) -> None:
        lost: dict[str, list[str]] = {}  # why -> channel order numbers
        for number in sorted(burst.accepted):
            sync = syncs.get(number)
            verdict = await self._verdict(sync)
            if verdict == "terminal":
                result.terminal += 1
                result.outcomes[sync.status_title] = result.outcomes.get(sync.status_title, 0) + 1
                continue
            result.stuck += 1
            if verdict in LOST:
                result.lost += 1
                lost.setdefault(verdict, []).append(number)
            else:
                result.violations.append(f"order {number}: {verdict}")
        for why, numbers in lost.items():
            shown = ", ".join(numbers[:10]) + (" ..." if len(numbers) > 10 else "")
            result.violations.append(f"{len(numbers)} accepted orders lost, {why}: {shown}")
        for number, answer in sorted(burst.refused.items()):
            result.violations.append(f"order {number}: never accepted by intake; last answer {answer[:200]}")

    async def _verdict(self, sync: admin_pb.OrderSync | None) -> str:
        """'terminal', one of LOST, or what keeps the order from being terminal."""
        if sync is None:
            return NEVER_DISPATCHED
        if sync.status not in TERMINAL:
            return f"stuck in {sync.status_title!r} after {sync.attempts} attempts ({sync.reason or 'no reason'})"
        if sync.status == admin_pb.SYNC_STATUS_SENT:
            try:
                await self.driver.provider_order(sync.provider_order_number)
            except httpx.HTTPStatusError:
                return NOT_AT_PROVIDER
            return "terminal"
        return "terminal" if sync.reason else f"{sync.status_title!r} without a reason"
