"""End-to-end fixtures: one stack of five service processes and both simulators per module."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest_asyncio

from tests.system.journey import Journey, JourneyReader
from tests.system.stack import Stack, TenantSpec


def tenant(tenant_id: str = "acme-cellars", prefix: str = "ACME") -> TenantSpec:
    return TenantSpec(
        tenant_id=tenant_id,
        chosen_states=["CA", "OR", "NY"],
        products=["SKU-CAB", "SKU-CHARD"],
        licensed_states=["CA", "OR"],
        order_number_prefix=prefix,
    )


def web_order(state: str = "CA", sku: str = "SKU-CAB", code: str = "03", **extra) -> dict:
    address = {
        "firstName": "Sam",
        "lastName": "Lee",
        "address": "9 Oak St",
        "city": "Napa",
        "stateCode": state,
        "zipCode": "94558",
        "countryCode": "US",
    }
    return {
        "channel": "Web",
        "orderDeliveryMethod": "Ship",
        "customer": {
            "firstName": "Sam",
            "lastName": "Lee",
            "emails": [{"email": "sam@example.com"}],
            "birthDate": "1975-01-01",
        },
        "shipTo": address,
        "billTo": address,
        "items": [{"sku": sku, "quantity": 2, "price": 3000, "purchaseTitle": "Cabernet"}],
        "shipping": [{"carrier": "UPS", "service": "Ground", "code": code, "title": "UPS Ground", "price": 1200}],
        **extra,
    }


class Driver:
    """What a test does to the system: place orders in the channel, move them at the provider, read journeys."""

    def __init__(self, stack: Stack, reader: JourneyReader, tenant_id: str):
        self.stack = stack
        self.reader = reader
        self.tenant_id = tenant_id

    @property
    def c7(self) -> str:
        return self.stack.sim_urls["commerce7"]

    @property
    def vs(self) -> str:
        return self.stack.sim_urls["vinoshipper"]

    async def place(self, order: dict) -> dict:
        response = await self.stack.http.post(
            f"{self.c7}/_sim/orders", json={"tenant_id": self.tenant_id, "order": order, "wait": True}
        )
        response.raise_for_status()
        return response.json()

    async def journey(self, external_id: str) -> Journey:
        return await self.reader.read(self.tenant_id, "commerce7", external_id)

    async def wait_for(self, external_id: str, done: Callable[[Journey], bool], timeout_s: float = 45.0) -> Journey:
        deadline = time.monotonic() + timeout_s
        while True:
            journey = await self.journey(external_id)
            if done(journey):
                return journey
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; journey so far: {journey}")
            await asyncio.sleep(0.3)

    async def provider(self, order_number: str, step: str, **body) -> dict:
        response = await self.stack.http.post(
            f"{self.vs}/_sim/orders/{order_number}/{step}", json={"wait": True, **body}
        )
        response.raise_for_status()
        return response.json()

    async def provider_stats(self) -> dict:
        return (await self.stack.http.get(f"{self.vs}/_sim/stats")).json()

    async def channel_order(self, external_id: str) -> dict:
        return (await self.stack.http.get(f"{self.c7}/_sim/orders/{external_id}")).json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def driver(infra, tmp_path_factory):
    spec = tenant()
    run_dir = tmp_path_factory.mktemp("stack")
    async with Stack([spec], run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses) as reader:
            yield Driver(stack, reader, spec.tenant_id)
