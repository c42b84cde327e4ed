"""The fault scenarios, each a short story: a burst of orders, a fault in the middle, recovery, the verdict.

Every scenario ends in Harness.settle, which waits for the backlog to drain and checks the
invariant (docs in tests/faults/harness.py): accepted = terminal, nothing lost, no duplicate
submission at the provider. "fault_over" is when the system was whole again: the killed service
healthy, the broker or database answering, the provider's last injected fault served; recovery
time is counted from there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial

from tests.faults.harness import SUBMIT_ROUTE, Harness, Result
from tests.system.stack import SERVICES

OUTAGE_S = 3.0  # how long Kafka or PostgreSQL stays down before it is started again
SLOW_CREATE_S = 9.0  # a slow create at the provider: three times the tenant's 3 s timeout

Scenario = tuple[str, Callable[[Harness], Awaitable[Result]]]


async def service_killed(h: Harness, service: str) -> Result:
    """A service dies (SIGKILL: no clean shutdown) halfway through a burst and is started again."""
    before = await h.provider_stats()
    burst = h.burst().start()
    await burst.wait_accepted(h.profile.orders // 2)
    await h.stack.kill_service(service)
    await h.stack.start_service(service)  # returns once its health check answers SERVING
    return await h.settle(f"kill -9 {service}", burst, before, fault_over=time.time())


async def kafka_restarted(h: Harness) -> Result:
    """The broker stops halfway through a burst, stays down a few seconds, and comes back on its data."""
    before = await h.provider_stats()
    burst = h.burst().start()
    await burst.wait_accepted(h.profile.orders // 2)
    await h.infra.restart_kafka(down_s=OUTAGE_S)
    return await h.settle("restart Kafka", burst, before, fault_over=time.time())


async def postgres_restarted(h: Harness) -> Result:
    """PostgreSQL stops halfway through a burst (every session cut), stays down, and comes back."""
    before = await h.provider_stats()
    burst = h.burst().start()
    await burst.wait_accepted(h.profile.orders // 2)
    await h.infra.restart_postgres(down_s=OUTAGE_S)
    return await h.settle("restart PostgreSQL", burst, before, fault_over=time.time())


async def provider_5xx(h: Harness) -> Result:
    """The provider answers 503 and then 500 to two thirds of a burst's creates, creating nothing."""
    before = await h.provider_stats()
    failing = h.profile.orders // 3
    await h.provider_fault(route=SUBMIT_ROUTE, status=503, count=failing)
    await h.provider_fault(route=SUBMIT_ROUTE, status=500, count=failing)
    burst = h.burst().start()
    await h.provider_faults_served()
    return await h.settle("provider 5xx", burst, before, fault_over=time.time())


async def provider_429(h: Harness) -> Result:
    """The provider rate-limits (429, Retry-After: 1) as many creates as the burst has orders."""
    before = await h.provider_stats()
    await h.provider_fault(route=SUBMIT_ROUTE, status=429, count=h.profile.orders)
    burst = h.burst().start()
    await h.provider_faults_served()
    return await h.settle("provider 429", burst, before, fault_over=time.time())


async def provider_slow_creates(h: Harness) -> Result:
    """Some creates take 9 s at the provider, which stores the order although the 3 s client gave up."""
    before = await h.provider_stats()
    await h.provider_fault(route=SUBMIT_ROUTE, delay_s=SLOW_CREATE_S, count=max(3, h.profile.orders // 10))
    burst = h.burst().start()
    await h.provider_faults_served()
    return await h.settle("provider slow creates", burst, before, fault_over=time.time())


SCENARIOS: list[Scenario] = [
    *((f"kill -9 {name}", partial(service_killed, service=name)) for name in SERVICES),
    ("restart Kafka", kafka_restarted),
    ("restart PostgreSQL", postgres_restarted),
    ("provider 5xx", provider_5xx),
    ("provider 429", provider_429),
    ("provider slow creates", provider_slow_creates),
]
