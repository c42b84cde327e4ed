"""Groupon → Mintsoft: Groupon SKUs through the tenant's product map, the Mintsoft key expiring,
and despatches recovered by polling when a callback never comes.

One stack (five service processes, real Kafka and Postgres, the CommerceInterface and Mintsoft
simulators) serves one merchant, "rimu-deals": mark exported on, polled every second, its
Mintsoft client catalog knowing only the warehouse's own SKUs (WAREHOUSE_SKUS); Groupon lists
deals under its own SKUs, mapped by the tenant's product map or not.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.system.groupon_warehouse import Hub, Warehouse, eventually
from tests.system.stack import Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

TENANT = "rimu-deals"
WAREHOUSE_SKUS = ["TENT-2P", "POLE-SET", "PEG-10", "MAT-SELF-INFLATE"]
ROYAL_MAIL = "Royal Mail Tracked 48"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(infra, tmp_path_factory):
    spec = TenantSpec.groupon_mintsoft(
        TENANT,
        groupon={"mark_exported": True, "poll_interval_s": 1},
        mintsoft={"products": WAREHOUSE_SKUS, "order_number_prefix": "RIMU-"},
    )
    run_dir = tmp_path_factory.mktemp("groupon-products")
    async with (
        Stack([spec], run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap) as stack,
        Hub(stack) as hub,
    ):
        await hub.map_courier(TENANT, ROYAL_MAIL, "ROYAL_MAIL_TRACKED")
        yield hub


@pytest.fixture
def shop(hub) -> Warehouse:
    return Warehouse(hub.stack, hub.stack.tenants[TENANT])


def items_of(created) -> list[tuple[str, int, str]]:
    return sorted((item["SKU"], item["Quantity"], item.get("Details") or "") for item in created["OrderItems"])


async def test_a_bundle_reaches_mintsoft_as_its_components_and_ships_back_as_its_groupon_line(hub, shop):
    await hub.map_product(TENANT, "GRP-CAMP-BUNDLE", ("TENT-2P", 1), ("POLE-SET", 1), ("PEG-10", 2))
    order = await shop.place(line_items=[{"sku": "GRP-CAMP-BUNDLE", "quantity": 2}])
    [line] = order["line_items"]
    line_id = str(line["ci_lineitemid"])

    created = await shop.sent(order)

    assert items_of(created) == [("PEG-10", 4, line_id), ("POLE-SET", 2, line_id), ("TENT-2P", 2, line_id)]
    await shop.despatch(created, ROYAL_MAIL, "RM000000001GB")
    [written] = await eventually(
        lambda: shop.groupon_lines(order), lambda ls: bool(ls[0]["tracking"]), "tracking uploaded"
    )
    assert (written["tracking"]["carrier"], written["tracking"]["tracking"]) == ("RYM", "RM000000001GB")
    [upload] = [
        c for c in await shop.groupon_calls("tracking_notification") if c["success"] and lines_of(c) == {line_id}
    ]
    assert [int(item["quantity"]) for item in upload["tracking_info"]] == [2]  # the Groupon line's quantity


async def test_an_alternative_code_replaces_the_groupon_sku(hub, shop):
    await hub.map_product(TENANT, "GRP-MAT-DEAL", ("MAT-SELF-INFLATE", 1))
    order = await shop.place(line_items=[{"sku": "GRP-MAT-DEAL", "quantity": 3}])

    created = await shop.sent(order)

    assert [(sku, qty) for sku, qty, _ in items_of(created)] == [("MAT-SELF-INFLATE", 3)]


async def test_an_unmapped_sku_fails_naming_it_is_never_marked_exported_and_a_retry_after_mapping_sends_it(hub, shop):
    order = await shop.place(line_items=[{"sku": "GRP-LANTERN", "quantity": 1}])
    journey = await eventually(
        lambda: hub.journey(TENANT, order), lambda j: j.dispatch == "failed", "the order failed to send"
    )
    assert journey.dispatch_code == "UNKNOWN_SKU" and "GRP-LANTERN" in journey.dispatch_reason
    assert await shop.in_mintsoft(order) == []
    assert not any(line["exported"] for line in await shop.groupon_lines(order))

    await shop.add_products("LANTERN-LED")
    await hub.map_product(TENANT, "GRP-LANTERN", ("LANTERN-LED", 1))
    await hub.retry(TENANT, journey.order_id)

    created = await shop.sent(order)
    assert [(sku, qty) for sku, qty, _ in items_of(created)] == [("LANTERN-LED", 1)]
    await eventually(
        lambda: shop.groupon_lines(order), lambda ls: all(line["exported"] for line in ls), "lines marked exported"
    )


async def test_product_sync_creates_the_mapped_products_the_warehouse_lacks(hub, shop):
    await hub.map_product(TENANT, "GRP-STOVE-KIT", ("STOVE-MINI", 1), ("GAS-CAN", 2))

    dry = await hub.sync_products(TENANT, dry_run=True)
    assert {p.sku for p in dry.created} >= {"STOVE-MINI", "GAS-CAN"}
    assert "TENT-2P" in dry.present
    synced = await hub.sync_products(TENANT)
    again = await hub.sync_products(TENANT)

    assert {p.sku for p in synced.created} == {p.sku for p in dry.created}
    assert list(again.created) == [] and {"STOVE-MINI", "GAS-CAN"} <= set(again.present)
    order = await shop.place(line_items=[{"sku": "GRP-STOVE-KIT", "quantity": 1}])
    created = await shop.sent(order)
    assert [(sku, qty) for sku, qty, _ in items_of(created)] == [("GAS-CAN", 2), ("STOVE-MINI", 1)]


async def test_an_expired_mintsoft_key_is_renewed_without_failing_the_order(hub, shop):
    before = await shop.mintsoft_stats()
    response = await shop.http.put(f"{shop.mintsoft}/_sim/key-ttl", json={"key_ttl_s": 86400, "expire_now": True})
    response.raise_for_status()
    await hub.map_product(TENANT, "GRP-TENT-DEAL", ("TENT-2P", 1))
    order = await shop.place(line_items=[{"sku": "GRP-TENT-DEAL", "quantity": 1}])

    await shop.sent(order)

    after = await shop.mintsoft_stats()
    assert after["expired_key_refusals"] > before["expired_key_refusals"]
    assert after["keys_issued"] > before["keys_issued"]
    journey = await eventually(lambda: hub.journey(TENANT, order), lambda j: j.dispatch == "sent", "sent")
    assert journey.dispatch_code == ""


async def test_a_despatch_whose_callback_never_came_is_found_by_polling(hub, shop):
    await hub.map_product(TENANT, "GRP-PEGS", ("PEG-10", 1))
    order = await shop.place(line_items=[{"sku": "GRP-PEGS", "quantity": 1}])
    created = await shop.sent(order)

    await shop.despatch(created, ROYAL_MAIL, "RM000000009GB", callback=False)

    await eventually(
        lambda: shop.groupon_lines(order), lambda ls: bool(ls[0]["tracking"]), "tracking uploaded", timeout_s=120
    )


def lines_of(call) -> set[str]:
    return {str(item["ci_lineitem_id"]) for item in call["tracking_info"]}
