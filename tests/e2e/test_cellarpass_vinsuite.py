"""CellarPass → VinSuite: paid and complimentary reservations become one Customer Pickup order
each, CellarPass is told the outcome (Processed with VinSuite's OrderID, or Error with the
reason), the sync rules keep the rest out (also a reservation CellarPass's own sync sent before
the hub took over), a change after sync is locked, and sync now (with its dry run) answers an
operator.

One stack (five service processes, real Kafka and Postgres) with both simulators in this process
(so their rate limits can be raised: the connectors still pace themselves) serves five wineries:
"oak" with the default dates (order date booked, pickup date the event's), "elm" with the dates
the other way round, "ash" dated the day of the sync, "fir" for VinSuite's refusals and "yew"
polling once an hour, for sync now. All but "yew" poll every second.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import pytest_asyncio
from ordersync.intake.v1 import intake_service_pb2 as intake_pb

from tests.simulators import cellarpass, vinsuite
from tests.simulators.common import SimulatorServer
from tests.system.cellarpass_vinsuite import Club, Hub, Winery, eventually
from tests.system.stack import Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

OAK, ELM, ASH, FIR, YEW = "oak-winery", "elm-winery", "ash-winery", "fir-winery", "yew-winery"
BOOKED_AT, BOOKED_DAY = "2026-11-20T18:30:00.000Z", "2026-11-20"
EVENT_DAY = "2026-12-12"  # the simulator's default eventDate
GUEST = {
    "firstName": "Mara",
    "lastName": "Okafor",
    "email": "mara.okafor@example.com",
    "phone": "707-555-0190",
    "address": {
        "address1": "4 Cellar Lane",
        "address2": "",
        "city": "Sonoma",
        "state": "CA",
        "zipCode": "95476",
        "country": "US",
    },
}


def tenant(tenant_id: str, poll_interval_s: int = 1, **vinsuite_options) -> TenantSpec:
    return TenantSpec.cellarpass_vinsuite(
        tenant_id,
        cellarpass={"poll_interval_s": poll_interval_s},
        # VinSuite's own pace is 60 calls a minute; raised so a test's handful is not paced.
        vinsuite={"order_number_prefix": tenant_id[:3].upper() + "-", "requests_per_minute": 600, **vinsuite_options},
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hub(infra, tmp_path_factory):
    specs = [
        tenant(OAK),
        tenant(ELM, order_date="event", pickup_date="booked"),
        tenant(ASH, order_date="sync_day"),
        tenant(FIR),
        tenant(YEW, poll_interval_s=3600),
    ]
    cellarpass_app = cellarpass.create_app(cellarpass.CellarPassConfig(rate_limit_per_minute=0))
    vinsuite_app = vinsuite.create_app(vinsuite.VinSuiteConfig(requests_per_minute=6000))
    async with (
        SimulatorServer(cellarpass_app) as cellarpass_sim,
        SimulatorServer(vinsuite_app) as vinsuite_sim,
        Stack(
            specs,
            run_dir=tmp_path_factory.mktemp("cellarpass"),
            pg_dsn=infra.pg_dsn,
            kafka_bootstrap=infra.kafka_bootstrap,
            external_simulators={"cellarpass": cellarpass_sim.base_url, "vinsuite": vinsuite_sim.base_url},
        ) as stack,
        Hub(stack) as hub,
    ):
        yield hub


def sides(hub: Hub, tenant_id: str) -> tuple[Winery, Club]:
    spec = hub.stack.tenants[tenant_id]
    return Winery(hub.stack, spec), Club(hub.stack, spec)


async def test_a_paid_and_a_complimentary_reservation_each_become_one_will_call_order(hub):
    winery, club = sides(hub, OAK)
    paid = await winery.book(guest=GUEST, guestNotes="Celebrating an anniversary; one guest is vegetarian.")
    comp = await winery.book(
        guest=GUEST, isComplimentary=True, total=0, totalPaid=0, balanceDue=0, eventSku="TAST-RES", guestCount=4
    )

    for reservation, sku, quantity in ((paid, "TAST-EST", 2), (comp, "TAST-RES", 4)):
        shown = await winery.synced(reservation)
        order = await club.order(reservation)
        assert shown["externalOrderId"] == str(order["OrderID"])
        assert order["IsWillCallOrder"] is True
        assert order["IsSendOrderConfirmation"] is False
        assert [(item["SKU"], item["Quantity"]) for item in order["OrderItems"]] == [(sku, quantity)]
        buyer = order["BillingMember"]
        assert (buyer["FirstName"], buyer["LastName"], buyer["Email"]) == ("Mara", "Okafor", "mara.okafor@example.com")
        assert buyer["City"] == "Sonoma" and buyer["ZipCode"] == "95476"
        [result] = await winery.sync_results(reservation)
        assert result["success"] is True and result["externalOrderId"] == str(order["OrderID"])

    assert (await club.order(paid))["Notes"] == ["Celebrating an anniversary; one guest is vegetarian."]
    assert (await club.order(comp))["Notes"] == []  # no guest notes, no note
    assert [item["Price"] for item in (await club.order(paid))["OrderItems"]] == [40.0]


@pytest.mark.parametrize(
    ("tenant_id", "order_date", "pickup_date"),
    [(OAK, BOOKED_DAY, EVENT_DAY), (ELM, EVENT_DAY, BOOKED_DAY), (ASH, "today", EVENT_DAY)],
    ids=["order-booked-pickup-event", "order-event-pickup-booked", "order-sync-day"],
)
async def test_each_date_option_dates_the_vinsuite_order(hub, tenant_id, order_date, pickup_date):
    winery, club = sides(hub, tenant_id)
    before = datetime.now(UTC).date().isoformat()
    reservation = await winery.book(bookedAt=BOOKED_AT, eventDate=EVENT_DAY)

    await winery.synced(reservation)
    order = await club.order(reservation)

    after = datetime.now(UTC).date().isoformat()
    if order_date == "today":
        assert order["OrderDate"] in {before, after}
    else:
        assert order["OrderDate"] == order_date
    assert order["PickupDate"] == pickup_date


async def test_unpaid_and_ticket_reservations_are_skipped_and_say_why(hub):
    winery, club = sides(hub, OAK)
    unpaid = await winery.book(status="Booked", total=120, totalPaid=80, balanceDue=40)
    ticket = await winery.book(orderType="Ticket")
    later = await winery.book()  # read after both: once it is synced, both were judged

    await winery.synced(later)

    for reservation, code, sentence in (
        (unpaid, "NOT_PAID", "balance due 40.00 of 120.00: only fully paid or complimentary reservations are synced"),
        (ticket, "TICKET_ORDER", "CellarPass ticket orders are never synced to VinSuite"),
    ):
        record = await eventually(
            lambda r=reservation: hub.intake_record(OAK, r),
            lambda rec: rec is not None and rec.status == intake_pb.INTAKE_STATUS_NOT_IMPORTED,
            f"{reservation['reservationId']} not imported",
        )
        assert [(f.code, f.sentence) for f in record.rule_failures] == [(code, sentence)]
        assert await club.orders(reservation) == []
        shown = await winery.shown(reservation)
        assert (shown["syncStatus"], shown["externalOrderId"]) == ("Pending", None)
        assert await winery.sync_results(reservation) == []


async def test_paid_later_an_unpaid_reservation_is_synced_then(hub):
    winery, club = sides(hub, OAK)
    reservation = await winery.book(status="Booked", total=120, totalPaid=80, balanceDue=40)
    await eventually(
        lambda: hub.intake_record(OAK, reservation),
        lambda rec: rec is not None and rec.status == intake_pb.INTAKE_STATUS_NOT_IMPORTED,
        "not imported",
    )

    await winery.edit(reservation, status="Paid", totalPaid=120, balanceDue=0)

    shown = await winery.synced(reservation)
    assert shown["externalOrderId"] == str((await club.order(reservation))["OrderID"])


async def test_a_refusing_vinsuite_shows_error_in_cellarpass_until_an_operator_retries(hub):
    winery, club = sides(hub, FIR)
    await club.fault("AddOrder", status=400, count=50)
    try:
        reservation = await winery.book()
        shown = await winery.synced(reservation, status="Error")
        assert "HTTP 400" in shown["syncError"], shown["syncError"]
        assert await club.orders(reservation) == []
    finally:
        await club.clear_faults()

    await hub.retry(FIR, reservation)

    shown = await winery.synced(reservation)
    [order] = await club.orders(reservation)
    assert shown["externalOrderId"] == str(order["OrderID"])
    results = await winery.sync_results(reservation)
    assert [(r["success"], r["externalOrderId"]) for r in results] == [(False, ""), (True, str(order["OrderID"]))]


async def test_an_inactive_vinsuite_account_shows_its_reason_until_reactivated_and_retried(hub):
    winery, club = sides(hub, FIR)
    inactive = await hub.stack.http.patch(f"{club.base}/wineries/{club.winery_id}", json={"active": False})
    inactive.raise_for_status()
    try:
        reservation = await winery.book()
        shown = await winery.synced(reservation, status="Error")
        assert "Web service account is inactive." in shown["syncError"], shown["syncError"]
    finally:
        active = await hub.stack.http.patch(f"{club.base}/wineries/{club.winery_id}", json={"active": True})
        active.raise_for_status()
    assert await club.orders(reservation) == []

    await hub.retry(FIR, reservation, reason="VinSuite account reactivated")

    shown = await winery.synced(reservation)
    assert shown["externalOrderId"] == str((await club.order(reservation))["OrderID"])


async def test_a_refund_and_a_cancellation_after_sync_are_locked_and_vinsuite_keeps_one_order(hub):
    winery, club = sides(hub, OAK)
    reservation = await winery.book(total=120, totalPaid=120, guestCount=3)
    await winery.synced(reservation)
    [order] = await club.orders(reservation)

    await winery.edit(reservation, total=80, totalPaid=80)  # a partial refund
    record = await eventually(
        lambda: hub.intake_record(OAK, reservation), lambda rec: len(rec.locked_changes) == 1, "the refund locked"
    )
    [refund] = record.locked_changes
    assert refund.message.startswith("Changed in CellarPass after sync:"), refund.message
    assert "120.00" in refund.message and "80.00" in refund.message, refund.message
    assert f"as {order['OrderID']}" in refund.message and "VinSuite" in refund.message, refund.message
    # The lock says it was synced: the rule saying CellarPass shows it synced is not repeated.
    assert "ALREADY_SYNCED" not in refund.message and "not imported" not in refund.message, refund.message

    # Cancelled also fails the CANCELLED rule: for an order already synced the lock still wins.
    await winery.edit(reservation, status="Cancelled")
    record = await eventually(
        lambda: hub.intake_record(OAK, reservation), lambda rec: len(rec.locked_changes) == 2, "the cancel locked"
    )
    assert record.status == intake_pb.INTAKE_STATUS_ACCEPTED
    assert record.order.totals.total.minor_units == 12000, "the order keeps its synced content"
    cancel = next(change for change in record.locked_changes if change.message != refund.message)
    assert "Cancelled" in cancel.message, cancel.message
    assert "now not imported: CANCELLED: cancelled reservations are not synced" in cancel.message, cancel.message
    assert "ALREADY_SYNCED" not in cancel.message, cancel.message
    listed = {
        change.message for change in await hub.locked_changes(OAK) if change.external_id == reservation["reservationId"]
    }
    assert listed == {refund.message, cancel.message}

    assert [o["OrderID"] for o in await club.orders(reservation)] == [order["OrderID"]]
    shown = await winery.shown(reservation)
    assert (shown["syncStatus"], shown["externalOrderId"]) == ("Processed", str(order["OrderID"]))
    assert {(r["success"], r["externalOrderId"]) for r in await winery.sync_results(reservation)} == {
        (True, str(order["OrderID"]))
    }


async def test_sync_now_dry_run_lists_what_a_poll_would_do_and_changes_nothing(hub):
    winery, club = sides(hub, YEW)
    first = await eventually(lambda: hub.cursor(YEW), lambda c: c.HasField("last_poll_time"), "the first poll")
    paid = await winery.book()
    unpaid = await winery.book(status="Booked", total=80, totalPaid=0, balanceDue=80)

    dry = await hub.sync_now(YEW, dry_run=True)

    actions = {r.external_id: (r.action, [f.code for f in r.rule_failures]) for r in dry.records}
    assert actions == {
        paid["reservationId"]: (intake_pb.DRY_RUN_ACTION_WOULD_SEND, []),
        unpaid["reservationId"]: (intake_pb.DRY_RUN_ACTION_NOT_IMPORTED, ["NOT_PAID"]),
    }
    after = await hub.cursor(YEW)
    assert (after.cursor, after.last_poll_time, after.orders_pulled) == (
        first.cursor,
        first.last_poll_time,
        first.orders_pulled,
    )
    assert await hub.intake_record(YEW, paid) is None
    assert await club.orders() == []
    assert (await winery.shown(paid))["syncStatus"] == "Pending"

    await hub.sync_now(YEW)  # the next poll was an hour away

    shown = await winery.synced(paid, timeout_s=60)
    assert shown["externalOrderId"] == str((await club.order(paid))["OrderID"])
    assert [o["OrderNumber"] for o in await club.orders()] == [club.order_number(paid)]


async def test_a_reservation_cellarpass_synced_before_the_hub_is_never_sent(hub):
    winery, club = sides(hub, YEW)
    reservation = await winery.book()
    await winery.mark_processed(reservation, "812345")  # by CellarPass's own VinSuite sync

    dry = await hub.sync_now(YEW, dry_run=True)
    [judged] = [r for r in dry.records if r.external_id == reservation["reservationId"]]
    assert (judged.action, [f.code for f in judged.rule_failures]) == (
        intake_pb.DRY_RUN_ACTION_NOT_IMPORTED,
        ["ALREADY_SYNCED"],
    )
    await hub.sync_now(YEW)

    record = await eventually(
        lambda: hub.intake_record(YEW, reservation),
        lambda rec: rec is not None and rec.status == intake_pb.INTAKE_STATUS_NOT_IMPORTED,
        "not imported",
    )
    [failure] = record.rule_failures
    assert failure.code == "ALREADY_SYNCED" and "812345" in failure.sentence, failure
    assert await club.orders(reservation) == []
    shown = await winery.shown(reservation)
    assert (shown["syncStatus"], shown["externalOrderId"]) == ("Processed", "812345")
