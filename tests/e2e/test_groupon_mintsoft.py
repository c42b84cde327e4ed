"""Groupon (CommerceInterface) → Mintsoft: orders in whole, marked exported only once the
warehouse has them, tracking back per line with Groupon's approved courier codes.

One stack (five service processes, real Kafka and Postgres, the CommerceInterface and Mintsoft
simulators) serves two merchants: "kea-deals" has mark exported on and lists two line items a
page (so a five-line order spans three pages), "tui-deals" has it off. Both poll every second
and send every order to one Mintsoft warehouse whose courier services are mapped, per tenant,
to Groupon's codes in carrier mapping, except the one the unmapped-courier test uses.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from ordersync.tracking.v1 import tracking_service_pb2 as tracking_pb

from tests.system.groupon_warehouse import Hub, Warehouse, eventually
from tests.system.stack import Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

MARKED, UNMARKED = "kea-deals", "tui-deals"
SKUS = ["GRP-SKU-1", "GRP-SKU-2", "GRP-SKU-3", "GRP-SKU-4", "GRP-SKU-5"]
ROYAL_MAIL = "Royal Mail Tracked 48"  # a courier service of the simulated warehouse
OUTPUT_DATE = "%m/%d/%Y %I:%M%p UTC"  # CommerceInterface's order date


def tenant(tenant_id: str, mark_exported: bool) -> TenantSpec:
    return TenantSpec.groupon_mintsoft(
        tenant_id,
        groupon={"mark_exported": mark_exported, "poll_interval_s": 1, "page_size": 2},
        mintsoft={"products": SKUS, "order_number_prefix": tenant_id.split("-")[0].upper() + "-"},
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(infra, tmp_path_factory):
    specs = [tenant(MARKED, True), tenant(UNMARKED, False)]
    run_dir = tmp_path_factory.mktemp("groupon")
    async with (
        Stack(specs, run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap) as stack,
        Hub(stack) as hub,
    ):
        for spec in specs:
            await hub.map_courier(spec.tenant_id, ROYAL_MAIL, "ROYAL_MAIL_TRACKED")
        yield hub


@pytest.fixture
def marked(hub) -> Warehouse:
    return Warehouse(hub.stack, hub.stack.tenants[MARKED])


@pytest.fixture
def unmarked(hub) -> Warehouse:
    return Warehouse(hub.stack, hub.stack.tenants[UNMARKED])


async def test_an_order_split_across_three_pages_reaches_mintsoft_once_and_whole(marked):
    order = await marked.place(lines=5)

    created = await marked.sent(order)

    items = sorted((item["SKU"], item["Quantity"]) for item in created["OrderItems"])
    assert items == [(sku, 1) for sku in SKUS]
    await asyncio.sleep(3)  # three more polls of the same listing
    assert len(await marked.in_mintsoft(order)) == 1


async def test_lines_are_marked_exported_only_after_the_mintsoft_create(marked):
    order = await marked.place(lines=2)
    created = await marked.sent(order)

    lines = await eventually(
        lambda: marked.groupon_lines(order), lambda ls: all(line["exported"] for line in ls), "lines exported"
    )

    ids = sorted(line["ci_lineitemid"] for line in lines)
    [call] = [c for c in await marked.groupon_calls("mark_exported") if set(ids) <= set(c["ci_lineitem_ids"])]
    assert call["success"] and call["at"] >= created_at(created)


async def test_with_mark_exported_off_the_lines_keep_coming_back_and_stay_one_order(unmarked):
    order = await unmarked.place(lines=2)
    await unmarked.sent(order)

    await asyncio.sleep(4)  # four polls listing the same lines again

    assert len(await unmarked.in_mintsoft(order)) == 1
    assert not any(line["exported"] for line in await unmarked.groupon_lines(order))
    assert await unmarked.groupon_calls("mark_exported") == []


async def test_an_order_younger_than_the_import_delay_waits_for_it(hub, unmarked):
    # CommerceInterface dates orders to the minute, so the delay is measured from a time up to a
    # minute before the order was placed: a 70 s delay holds it back 10 to 70 s.
    stack = hub.stack
    spec = stack.tenants[UNMARKED]
    stack.update_tenant(spec.with_account("deals", import_delay_s=70))
    try:
        await asyncio.sleep(2)  # the services reload the tenants file
        old = await unmarked.place(lines=1, date=groupon_date(datetime.now(UTC) - timedelta(minutes=5)))
        young = await unmarked.place(lines=1)
        await unmarked.sent(old, timeout_s=30)
        assert await unmarked.in_mintsoft(young) == [], "imported before its delay"
        await unmarked.sent(young, timeout_s=90)
    finally:
        stack.update_tenant(spec)


async def test_despatch_sends_tracking_for_every_line_with_the_approved_code(marked):
    order = await marked.place(lines=3)
    created = await marked.sent(order)

    await marked.despatch(created, ROYAL_MAIL, "RM123456789GB")
    uploads = await eventually(
        lambda: marked.groupon_calls("tracking_notification"),
        lambda calls: any(c["success"] and order_lines(order) <= lines_of(c) for c in calls),
        "tracking uploaded to Groupon",
    )

    [upload] = [c for c in uploads if c["success"] and order_lines(order) <= lines_of(c)]
    assert {(i["carrier"], i["tracking"]) for i in upload["tracking_info"]} == {("RYM", "RM123456789GB")}
    assert sorted(int(i["ci_lineitem_id"]) for i in upload["tracking_info"]) == sorted(order_lines(order))


async def test_an_unmapped_courier_is_blocked_then_sent_once_mapped(hub, marked):
    order = await marked.place(lines=1)
    created = await marked.sent(order)

    await marked.despatch(created, "Hermes Next Day", "HM0000000001")
    order_id = (await hub.journey(MARKED, order)).order_id
    blocked = await eventually(
        lambda: hub.writeback(MARKED, order_id),
        lambda wb: wb is not None and wb.status == tracking_pb.WRITEBACK_STATUS_BLOCKED,
        "the writeback blocked",
    )
    assert "courier Hermes Next Day has no Groupon code" in blocked.reason
    assert not (await marked.groupon_lines(order))[0]["tracking"]

    await hub.map_courier(MARKED, "Hermes Next Day", "HERMES")
    await eventually(
        lambda: marked.groupon_lines(order), lambda ls: bool(ls[0]["tracking"]), "tracking uploaded", timeout_s=60
    )
    assert (await marked.groupon_lines(order))[0]["tracking"]["carrier"] == "HMS"


async def test_an_order_cancelled_in_mintsoft_asks_the_operator_to_cancel_it_in_commerceinterface(hub, marked):
    order = await marked.place(lines=1)
    created = await marked.sent(order)

    await marked.cancel(created)

    order_id = (await hub.journey(MARKED, order)).order_id
    failed = await eventually(
        lambda: hub.writeback(MARKED, order_id),
        lambda wb: wb is not None and wb.status == tracking_pb.WRITEBACK_STATUS_FAILED,
        "the writeback failed with what to do",
    )
    assert "cancel or refund its lines in the CommerceInterface portal" in failed.reason
    journey = await hub.journey(MARKED, order)
    assert journey.shipment == "cancelled"


async def test_a_despatch_callback_with_a_wrong_token_is_refused_and_changes_nothing(hub, marked):
    order = await marked.place(lines=1)
    created = await marked.sent(order)
    body = {**created, "OrderStatus": "DESPATCHED", "TrackingNumber": "FORGED-1"}
    url = f"{hub.stack.http_url('fulfillment_dispatch')}/webhooks/mintsoft/{MARKED}/not-the-token"

    answer = await marked.http.post(url, json=body)

    assert answer.status_code == 404
    journey = await hub.journey(MARKED, order)
    assert journey.shipment == "" and journey.tracking == ()


def groupon_date(moment: datetime) -> str:
    return moment.strftime(OUTPUT_DATE)


def created_at(created) -> float:
    return created["created_at"]


def order_lines(order) -> set[int]:
    return {int(line["ci_lineitemid"]) for line in order["line_items"]}


def lines_of(call) -> set[int]:
    return {int(item["ci_lineitem_id"]) for item in call["tracking_info"]}
