"""The product map applied by the sender, on real Postgres with a fake warehouse: a bundle sent
as its components, an alternative code, an unmapped SKU passing as it is, each tenant's own map,
one query for a whole pass, providers that map nothing unchanged, and an unknown SKU failing the
order with UNKNOWN_SKU until the mapping exists and an operator's Retry sends it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import pytest_asyncio

from carrier_mapping.testing import ACME_READER, CALLERS, running_service
from fulfillment_dispatch.domain.product_map import Component, ProductMapping
from fulfillment_dispatch.operator_actions import Operator, OperatorActions, OrderSelector
from fulfillment_dispatch.sender import Sender
from fulfillment_dispatch.storage.product_map import put_mapping
from libs.clients.carrier_mapping import CarrierMappingClient
from libs.connectors.base.contract import SubmissionItem
from services.fulfillment_dispatch.tests.fake_provider import recorder
from services.fulfillment_dispatch.tests.fake_warehouse import queue, world

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(90)]

GIFT_SET = ProductMapping(
    "GRP-GIFT-SET", (Component("MUG-BLUE", 1, "Blue mug"), Component("TEA-EARLGREY", 3, "Earl Grey tea"))
)
HOODIE = ProductMapping("GRP-HOODIE-M", (Component("HD-0042-M"),))


@pytest_asyncio.fixture
async def carriers(infra):
    async with (
        running_service(infra.pg_dsn, CALLERS) as service,
        CarrierMappingClient(service.address, token=ACME_READER) as client,
    ):
        await asyncio.wait_for(client.synced.wait(), 5)
        yield client


@pytest_asyncio.fixture
async def shop():
    built = world()
    built.warehouse.catalog.update({"MUG-BLUE": "Blue mug", "TEA-EARLGREY": "Earl Grey tea", "HD-0042-M": "Hoodie M"})
    yield built
    await built.accounts.stop()


class CountingPool:
    """The pool, noting the queries of its `fetch` (the sender reads the map with it)."""

    def __init__(self, pool):
        self._pool = pool
        self.queries: list[str] = []

    async def fetch(self, query, *args, **kwargs):
        self.queries.append(query)
        return await self._pool.fetch(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._pool, name)


def sender(pool, shop, carriers) -> Sender:
    return Sender(
        pool,
        shop.accounts,
        carriers,
        topic="dispatch.orders.v1",
        producer="test",
        lease_s=30,
        batch=50,
        max_attempts=5,
        concurrency=8,
        first_check_after=timedelta(minutes=15),
    )


async def status_of(pool, tenant_id: str, number: str) -> tuple[str, str, str]:
    row = await pool.fetchrow(
        "SELECT status, reason_code, reason FROM dispatches WHERE tenant_id = $1 AND external_number = $2",
        tenant_id,
        number,
    )
    return row["status"], row["reason_code"], row["reason"]


def sent_items(shop, order_number: str) -> list[SubmissionItem]:
    return list(shop.warehouse.taken[order_number].items)


async def test_a_bundle_goes_as_its_components_times_the_line_quantity_with_the_channel_line_id(pool, shop, carriers):
    await put_mapping(pool, "acme", GIFT_SET, "test")
    await queue(pool, "acme", "1001", [("ci-501", "GRP-GIFT-SET", 2)])

    await sender(pool, shop, carriers).run_once()

    assert await status_of(pool, "acme", "1001") == ("sent", "", "")
    assert sent_items(shop, "A-1001") == [
        SubmissionItem("ci-501", "MUG-BLUE", 2, "Blue mug"),
        SubmissionItem("ci-501", "TEA-EARLGREY", 6, "Earl Grey tea"),
    ]


async def test_an_alternative_code_replaces_the_sku_and_an_unmapped_one_passes_as_it_is(pool, shop, carriers):
    await put_mapping(pool, "acme", HOODIE, "test")
    await queue(pool, "acme", "1002", [("ci-601", "GRP-HOODIE-M", 1), ("ci-602", "MUG-BLUE", 4)])

    await sender(pool, shop, carriers).run_once()

    assert sent_items(shop, "A-1002") == [
        SubmissionItem("ci-601", "HD-0042-M", 1, "deal GRP-HOODIE-M"),
        SubmissionItem("ci-602", "MUG-BLUE", 4, "deal MUG-BLUE"),
    ]


async def test_each_tenant_gets_its_own_map_and_a_pass_reads_the_map_in_one_query(pool, shop, carriers):
    await put_mapping(pool, "acme", HOODIE, "test")
    await put_mapping(pool, "globex", ProductMapping("GRP-HOODIE-M", (Component("MUG-BLUE", 2),)), "test")
    for n in range(3):
        await queue(pool, "acme", f"200{n}", [("l1", "GRP-HOODIE-M", 1), ("l2", "TEA-EARLGREY", 1)])
    await queue(pool, "globex", "2009", [("l1", "GRP-HOODIE-M", 1)])
    counted = CountingPool(pool)

    await sender(counted, shop, carriers).run_once()

    assert sum("product_map_components" in q for q in counted.queries) == 1
    assert [i.sku for i in sent_items(shop, "A-2001")] == ["HD-0042-M", "TEA-EARLGREY"]
    assert sent_items(shop, "G-2009") == [SubmissionItem("l1", "MUG-BLUE", 2, "deal GRP-HOODIE-M")]


async def test_a_provider_that_maps_no_products_gets_no_items(pool, shop, carriers):
    await put_mapping(pool, "acme", HOODIE, "test")
    await queue(pool, "acme", "3001", [("l1", "GRP-HOODIE-M", 1)], account="plain")

    await sender(pool, shop, carriers).run_once()

    [[submission]] = shop.warehouse.calls
    assert submission.items == () and submission.order.lines[0].sku == "GRP-HOODIE-M"
    assert await status_of(pool, "acme", "3001") == ("sent", "", "")


async def test_an_unknown_sku_fails_the_order_naming_it_and_a_retry_after_the_mapping_sends_it(pool, shop, carriers):
    await queue(pool, "acme", "4001", [("ci-701", "GRP-TOWEL-2PK", 1)])
    send = sender(pool, shop, carriers)

    await send.run_once()

    status, code, reason = await status_of(pool, "acme", "4001")
    assert (status, code) == ("failed", "UNKNOWN_SKU")
    assert "GRP-TOWEL-2PK" in reason
    assert "A-4001" not in shop.warehouse.taken

    await put_mapping(pool, "acme", ProductMapping("GRP-TOWEL-2PK", (Component("MUG-BLUE", 2),)), "test")
    actions = OperatorActions(
        pool, shop.accounts, recorder(pool, shop.registry), registry=shop.registry, on_requeued=lambda: None
    )
    await actions.retry(
        OrderSelector("acme", channel_order_number="4001"), Operator("jane@acme.example", "mapped the SKU")
    )
    await send.run_once()

    assert await status_of(pool, "acme", "4001") == ("sent", "", "")
    assert sent_items(shop, "A-4001") == [SubmissionItem("ci-701", "MUG-BLUE", 2, "deal GRP-TOWEL-2PK")]
