"""The wineries of the demo: CellarPass reservations sent to VinSuite as Customer Pickup orders.

Three wineries, each with a CellarPass account and a VinSuite winery, differ in the VinSuite
account's date options: "oak-hollow" dates an order on the booked day and picks it up on the
event's day (the defaults), "sage-creek" dates it on the event's day and picks it up on the
booked day, "mesa-alta" dates it on the day it is synced. VinSuite is also each winery's
customer directory.

At oak-hollow (intake polls every second) the demo looks a club member up by e-mail and by last
name, asks for her club membership, resolves a club discount and a customer-type one, upserts a
new guest (created, then found again on a retry), and books four reservations: a paid one with a
guest note and a complimentary one are synced (CellarPass shows them Processed with VinSuite's
OrderID), an unpaid one and a ticket order are kept out with their rules' reasons. The paid one
is then edited in CellarPass: the change is refused as locked, with the operator's message.
sage-creek syncs a paid and a complimentary reservation with its other date options. mesa-alta
polls hourly: an operator asks for a dry run of what the next poll would send, then Sync Now.
Finally Test Login fails for an inactive VinSuite account and a wrong password, then passes,
and VinSuite's member types are mirrored into CellarPass as customer types, then one removed.

Run by tests/system/demo.py after the other merchants, on the same stack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
from ordersync.common.v1 import order_pb2
from ordersync.common.v1 import postal_address_pb2 as address_pb
from ordersync.directory.v1 import directory_admin_service_pb2 as admin_pb
from ordersync.directory.v1 import directory_admin_service_pb2_grpc as admin_grpc
from ordersync.directory.v1 import directory_service_pb2 as directory_pb
from ordersync.directory.v1 import directory_service_pb2_grpc as directory_grpc
from ordersync.intake.v1 import intake_service_pb2 as intake_pb
from ordersync.intake.v1 import intake_service_pb2_grpc as intake_grpc

from libs.platform.testing import authorized
from tests.system.stack import CLUB, PICKUP_ROUTE, READER, RESERVATIONS, RouteSpec, Stack, TenantSpec

TENANT_ID, EVENT_TENANT_ID, SYNC_DAY_TENANT_ID = "oak-hollow", "sage-creek", "mesa-alta"
OPERATORS = {t: f"ops@{t}.example" for t in (TENANT_ID, EVENT_TENANT_ID, SYNC_DAY_TENANT_ID)}
BOOKED_AT, EVENT_DATE = "2026-11-20T18:30:00Z", "2026-12-12"  # booked weeks before the event
CLUB_NAME, TRADE = "Reserve Club", "Trade"
MEMBER_TYPES = ["Reserve Club Member", TRADE, "Wholesale"]  # "Wholesale" is removed in VinSuite later
MEMBERS = [
    {
        "FirstName": "Maya",
        "LastName": "Lindqvist",
        "Email": "maya.lindqvist@example.com",
        "Phone": "707-555-0190",
        "MemberTypes": ["Reserve Club Member"],
        "ClubMemberships": [{"ClubID": "7", "ClubName": CLUB_NAME, "Status": "Active"}],
    },
    {"FirstName": "Theo", "LastName": "Lindqvist", "Email": "theo.l@example.com", "MemberTypes": [TRADE]},
]
DISCOUNT_RULES = (
    {"name": "reserve-club-tasting", "when_club": CLUB_NAME, "experiences": ["TAST-RES"], "percent_off": "20"},
    {"name": "trade-guests", "when_customer_type": TRADE, "amount_off": "10.00"},
)
PRODUCTS = ["TAST-EST", "TAST-RES", "TOUR-CAVE"]


def _winery(tenant_id: str, winery_id: str, prefix: str, poll_interval_s: int, **vinsuite: Any) -> TenantSpec:
    spec = TenantSpec.cellarpass_vinsuite(
        tenant_id,
        cellarpass={"poll_interval_s": poll_interval_s},
        vinsuite={"winery_id": winery_id, "order_number_prefix": prefix, "products": PRODUCTS, **vinsuite},
        discount_rules=DISCOUNT_RULES if tenant_id == TENANT_ID else (),
        operators=(OPERATORS[tenant_id],),
    )
    # Reservations are their own order kind: the route must name it, or routing keeps them here.
    route = RouteSpec(PICKUP_ROUTE, RESERVATIONS, CLUB, order_kinds=("reservation",))
    return dataclasses.replace(spec, routes=(route,))


TENANT = _winery(TENANT_ID, "4101", "OH-", 1, member_types=MEMBER_TYPES, members=MEMBERS)
EVENT_TENANT = _winery(EVENT_TENANT_ID, "4102", "SC-", 1, order_date="event", pickup_date="booked")
SYNC_DAY_TENANT = _winery(SYNC_DAY_TENANT_ID, "4103", "MA-", 3600, order_date="sync_day")  # polled on demand
TENANTS = (TENANT, EVENT_TENANT, SYNC_DAY_TENANT)
TENANTS_BY_ID = {spec.tenant_id: spec for spec in TENANTS}


@dataclasses.dataclass
class Booking:
    """One CellarPass reservation and what the integration prescribes for it."""

    label: str
    tenant_id: str
    fields: dict[str, Any]
    skipped: str = ""  # the rule that keeps it out of VinSuite; "" = synced

    @property
    def reservation_id(self) -> str:
        return self.fields["reservationId"]


def _guest(first: str, last: str, email: str) -> dict[str, Any]:
    address = {"address1": "4 Cellar Lane", "address2": "", "city": "Sonoma", "state": "CA", "zipCode": "95476"}
    return {"firstName": first, "lastName": last, "email": email, "phone": "707-555-0111", "address": address}


def bookings() -> list[Booking]:
    paid = {"total": 120.0, "totalPaid": 120.0, "balanceDue": 0.0, "bookedAt": BOOKED_AT, "eventDate": EVENT_DATE}
    comp = {**paid, "total": 0.0, "totalPaid": 0.0, "isComplimentary": True, "eventSku": "TOUR-CAVE"}
    comp["eventName"] = "Cave Tour"
    maya = _guest("Maya", "Lindqvist", "maya.lindqvist@example.com")
    return [
        Booking(
            "paid reserve tasting, guest note",
            TENANT_ID,
            {
                **paid,
                "reservationId": "OH-1001",
                "bookingCode": "B1001",
                "eventSku": "TAST-RES",
                "eventName": "Reserve Tasting",
                "guest": maya,
                "guestNotes": "Celebrating an anniversary: window table please",
                "customerTypes": ["Reserve Club Member"],
            },
        ),
        Booking("complimentary cave tour", TENANT_ID, {**comp, "reservationId": "OH-1002", "bookingCode": "B1002"}),
        Booking(
            "estate tasting, balance due",
            TENANT_ID,
            {**paid, "reservationId": "OH-1003", "bookingCode": "B1003", "totalPaid": 80.0, "balanceDue": 40.0},
            skipped="NOT_PAID",
        ),
        Booking(
            "harvest party ticket",
            TENANT_ID,
            {**paid, "reservationId": "OH-1004", "bookingCode": "B1004", "orderType": "Ticket"},
            skipped="TICKET_ORDER",
        ),
        Booking("paid estate tasting", EVENT_TENANT_ID, {**paid, "reservationId": "SC-2001", "bookingCode": "S2001"}),
        Booking(
            "complimentary cave tour", EVENT_TENANT_ID, {**comp, "reservationId": "SC-2002", "bookingCode": "S2002"}
        ),
        Booking(
            "paid estate tasting", SYNC_DAY_TENANT_ID, {**paid, "reservationId": "MA-3001", "bookingCode": "M3001"}
        ),
        Booking(
            "complimentary cave tour", SYNC_DAY_TENANT_ID, {**comp, "reservationId": "MA-3002", "bookingCode": "M3002"}
        ),
    ]


async def eventually(what: str, probe: Callable[[], Awaitable[Any]], timeout_s: float = 60.0) -> Any:
    """Ask `probe` until it answers something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo {TENANT_ID}: gave up waiting for {what}")
        await asyncio.sleep(0.5)


class WineryDemo:
    """The simulators' control APIs and the hub's gRPC APIs, as the demo uses them."""

    def __init__(self, stack: Stack, intake: grpc.aio.Channel, dispatch: grpc.aio.Channel):
        self.stack = stack
        self.cp, self.vs = stack.sim_urls["cellarpass"], stack.sim_urls["vinsuite"]
        self.intake = authorized(intake_grpc.OrderIntakeServiceStub(intake), stack.token(READER))
        self._intake_channel, self._dispatch_channel = intake, dispatch
        self.directory = authorized(
            directory_grpc.CustomerDirectoryServiceStub(dispatch), stack.token(OPERATORS[TENANT_ID])
        )

    def operator_stub(self, factory, tenant_id: str, channel: grpc.aio.Channel):
        return authorized(factory(channel), self.stack.token(OPERATORS[tenant_id]))

    def admin(self, tenant_id: str) -> admin_grpc.DirectoryAdminServiceStub:
        return self.operator_stub(admin_grpc.DirectoryAdminServiceStub, tenant_id, self._dispatch_channel)

    def intake_operator(self, tenant_id: str) -> intake_grpc.OrderIntakeServiceStub:
        return self.operator_stub(intake_grpc.OrderIntakeServiceStub, tenant_id, self._intake_channel)

    def winery_id(self, tenant_id: str) -> str:
        return str(self.stack.tenants[tenant_id].account(CLUB)["winery_id"])

    def cp_account(self, tenant_id: str) -> str:
        return str(self.stack.tenants[tenant_id].account(RESERVATIONS)["account_id"])

    async def book(self, booking: Booking) -> None:
        body = {"account_id": self.cp_account(booking.tenant_id), "reservations": [booking.fields]}
        (await self.stack.http.post(f"{self.cp}/_sim/reservations", json=body)).raise_for_status()

    async def reservation(self, booking: Booking) -> dict[str, Any]:
        response = await self.stack.http.get(
            f"{self.cp}/_sim/reservations", params={"account_id": self.cp_account(booking.tenant_id)}
        )
        response.raise_for_status()
        return next(r for r in response.json()["reservations"] if r["reservationId"] == booking.reservation_id)

    async def vinsuite_order(self, booking: Booking) -> dict[str, Any] | None:
        prefix = self.stack.tenants[booking.tenant_id].account(CLUB)["order_number_prefix"]
        number = f"{prefix}{booking.fields['bookingCode']}"
        params = {"winery_id": self.winery_id(booking.tenant_id), "order_number": number}
        response = await self.stack.http.get(f"{self.vs}/_sim/orders", params=params)
        response.raise_for_status()
        orders = response.json()["orders"]
        return orders[0] if len(orders) == 1 else None

    async def record(self, booking: Booking) -> intake_pb.IntakeRecord | None:
        ref = order_pb2.ChannelOrderRef(channel="cellarpass", external_id=booking.reservation_id, account=RESERVATIONS)
        try:
            answer = await self.intake.GetOrder(
                intake_pb.GetOrderRequest(tenant_id=booking.tenant_id, channel_ref=ref), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return answer.record

    async def settled(self, booking: Booking) -> bool:
        if booking.skipped:
            record = await self.record(booking)
            return record is not None and record.status == intake_pb.INTAKE_STATUS_NOT_IMPORTED
        reservation = await self.reservation(booking)
        return reservation["syncStatus"] == "Processed" and await self.vinsuite_order(booking) is not None

    async def patch_winery(self, tenant_id: str, **changes: Any) -> None:
        url = f"{self.vs}/_sim/wineries/{self.winery_id(tenant_id)}"
        (await self.stack.http.patch(url, json=changes)).raise_for_status()


async def run(stack: Stack) -> tuple[int, str]:
    """Run the CellarPass → VinSuite scenarios on a started stack; return (exit code, summary line)."""
    items = bookings()
    async with (
        grpc.aio.insecure_channel(stack.grpc_address("order_intake")) as intake,
        grpc.aio.insecure_channel(stack.grpc_address("fulfillment_dispatch")) as dispatch,
    ):
        demo = WineryDemo(stack, intake, dispatch)
        counts: dict[str, int] = {}
        counts["discounts"] = await look_up(demo)
        await wait_polled(demo, SYNC_DAY_TENANT_ID)  # its first poll is behind it: the next is an hour off
        for booking in items:
            await demo.book(booking)
        print(f"demo: booked {len(items)} reservations in the CellarPass simulator at three wineries")
        polled = [b for b in items if b.tenant_id != SYNC_DAY_TENANT_ID]
        await eventually("the reservations synced or kept out", all_settled(demo, polled))
        await sync_now(demo, [b for b in items if b.tenant_id == SYNC_DAY_TENANT_ID])
        print()
        counts.update(await report(demo, items))
        counts["locked"] = await edit_after_sync(demo, items[0])
        login = await check_logins(demo)
        counts["lists"] = await mirror_invite_lists(demo)
    failed = counts.pop("failed")
    summary = (
        f"demo {TENANT_ID}, {EVENT_TENANT_ID}, {SYNC_DAY_TENANT_ID}: {len(items)} reservations, "
        f"{counts['synced']} synced to VinSuite and Processed in CellarPass, {counts['skipped']} kept out, "
        f"{counts['locked']} locked change, {counts['discounts']} discounts applied, "
        f"Test Login {login}, {counts['lists']} invite lists mirrored, {failed} unexpected"
    )
    return (1 if failed else 0), summary


def all_settled(demo: WineryDemo, items: list[Booking]) -> Callable[[], Awaitable[bool]]:
    """A probe for `eventually`: each booking synced (Processed, in VinSuite) or kept out."""

    async def probe() -> bool:
        return all([await demo.settled(b) for b in items])

    return probe


# ---- the customer look-ups -------------------------------------------------------------------


async def look_up(demo: WineryDemo) -> int:
    """FindCustomers, GetClubMembership, ResolveDiscount and UpsertCustomer for oak-hollow."""
    directory, t = demo.directory, TENANT_ID
    print(f"demo: {t}'s customer look-ups (VinSuite is the directory)")
    by_email = await directory.FindCustomers(
        directory_pb.FindCustomersRequest(tenant_id=t, email="MAYA.Lindqvist@example.com"), timeout=30
    )
    for c in by_email.customers:
        clubs = ", ".join(f"{m.club_name} ({m.status})" for m in c.clubs) or "none"
        print(
            f"    by e-mail: {c.first_name} {c.last_name} <{c.email}>, member {c.member_id}, types "
            f"{', '.join(c.member_types)}, clubs {clubs}"
        )
    by_name = await directory.FindCustomers(
        directory_pb.FindCustomersRequest(tenant_id=t, last_name="lindqvist"), timeout=30
    )
    print(f"    by last name 'lindqvist': {', '.join(f'{c.first_name} <{c.email}>' for c in by_name.customers)}")
    club = await directory.GetClubMembership(
        directory_pb.GetClubMembershipRequest(tenant_id=t, email="maya.lindqvist@example.com"), timeout=30
    )
    print(
        f"    club membership: known {club.known}, club member {club.is_club_member}, active "
        f"{', '.join(c.club_name for c in club.active_clubs)}"
    )
    applied: list[str] = []
    for label, request in (
        ("club member, reserve tasting", dict(email="maya.lindqvist@example.com", experience_sku="TAST-RES")),
        (
            "trade guest (CellarPass type)",
            dict(email="sam.ortiz@example.com", experience_sku="TAST-EST", customer_types=[TRADE]),
        ),
        ("walk-in guest", dict(email="sam.ortiz@example.com", experience_sku="TAST-EST")),
    ):
        d = await directory.ResolveDiscount(directory_pb.ResolveDiscountRequest(tenant_id=t, **request), timeout=30)
        off = f"{d.percent_off}% off" if d.HasField("percent_off") else (f"{d.amount_off} off" if d.amount_off else "-")
        print(f"    discount, {label}: {d.rule_name or 'none'} {off} ({d.why})")
        applied.append(d.rule_name if d.applies else "")
    guest = order_pb2.Customer(
        first_name="Rosa", last_name="Almeida", email="rosa.almeida@example.com", phone="707-555-0177"
    )
    address = address_pb.PostalAddress(
        address_lines=["9 Oak Row"], locality="Sonoma", administrative_area="CA", postal_code="95476", region_code="US"
    )
    request = directory_pb.UpsertCustomerRequest(tenant_id=t, customer=guest, address=address)
    first = await directory.UpsertCustomer(request, timeout=30)
    retry = await directory.UpsertCustomer(request, timeout=30)
    found = await directory.FindCustomers(
        directory_pb.FindCustomersRequest(tenant_id=t, email="rosa.almeida@example.com"), timeout=30
    )
    print(
        f"    upsert new guest Rosa Almeida: member {first.member_id} created={first.created}; "
        f"retry member {retry.member_id} created={retry.created}; then found "
        f"{[c.member_id for c in found.customers]}"
    )
    ok = (
        len(by_email.customers) == 1
        and len(by_name.customers) == 2
        and club.is_club_member
        and first.created
        and not retry.created
        and first.member_id == retry.member_id
        and [c.member_id for c in found.customers] == [first.member_id]
        and applied == ["reserve-club-tasting", "trade-guests", ""]
    )
    if not ok:
        raise RuntimeError(f"demo {t}: a look-up answered other than the directory holds")
    return len([name for name in applied if name])


# ---- syncing ------------------------------------------------------------------------------


async def wait_polled(demo: WineryDemo, tenant_id: str) -> None:
    async def polled() -> bool:
        answer = await demo.intake.ListPullCursors(intake_pb.ListPullCursorsRequest(tenant_id=tenant_id), timeout=10)
        return any(c.HasField("last_poll_time") and not c.last_error for c in answer.cursors)

    await eventually(f"{tenant_id}'s first poll", polled)


async def sync_now(demo: WineryDemo, items: list[Booking]) -> None:
    """mesa-alta polls hourly: a dry run shows what its next poll would send, then Sync Now polls."""
    t = SYNC_DAY_TENANT_ID
    stub = demo.intake_operator(t)
    dry = await stub.SyncNow(intake_pb.SyncNowRequest(tenant_id=t, account=RESERVATIONS, dry_run=True), timeout=60)
    print(
        f"demo: {t} polls CellarPass hourly; Sync Now, dry run ({dry.pages} page(s)): {dry.message or 'nothing sent'}"
    )
    for record in dry.records:
        print(f"    {record.external_number:<8} {intake_pb.DryRunAction.Name(record.action):<26} {record.detail}")
    if [r.external_id for r in dry.records if r.action == intake_pb.DRY_RUN_ACTION_WOULD_SEND] != [
        b.reservation_id for b in items
    ] or any([await demo.record(b) for b in items]):
        raise RuntimeError(f"demo {t}: the dry run did not list exactly what the next poll would send")
    now = await stub.SyncNow(intake_pb.SyncNowRequest(tenant_id=t, account=RESERVATIONS), timeout=30)
    due = now.previous_next_poll_time.ToDatetime(UTC).strftime("%H:%M UTC")
    print(f"demo: {t}'s operator pressed Sync Now: the poll due at {due} runs now")
    sent = all_in_vinsuite(demo, items)
    await eventually("mesa-alta's orders in VinSuite", sent)
    # Sync results are posted at the start of a poll: the next one, made due now again.
    await stub.SyncNow(intake_pb.SyncNowRequest(tenant_id=t, account=RESERVATIONS), timeout=30)
    await eventually("mesa-alta's reservations Processed", all_settled(demo, items))


def all_in_vinsuite(demo: WineryDemo, items: list[Booking]) -> Callable[[], Awaitable[bool]]:
    """A probe for `eventually`: each booking has its VinSuite order."""

    async def probe() -> bool:
        return all([await demo.vinsuite_order(b) is not None for b in items])

    return probe


def expected_dates(tenant_id: str) -> tuple[str, str]:
    booked, today = BOOKED_AT[:10], datetime.now(UTC).date().isoformat()
    return {
        TENANT_ID: (booked, EVENT_DATE),
        EVENT_TENANT_ID: (EVENT_DATE, booked),
        SYNC_DAY_TENANT_ID: (today, EVENT_DATE),
    }[tenant_id]


async def report(demo: WineryDemo, items: list[Booking]) -> dict[str, int]:
    counts = {"synced": 0, "skipped": 0, "failed": 0}
    for booking in items:
        reservation = await demo.reservation(booking)
        order = await demo.vinsuite_order(booking)
        record = await demo.record(booking)
        ok = (_skipped if booking.skipped else _synced)(booking, reservation, order, record)
        counts["failed" if not ok else ("skipped" if booking.skipped else "synced")] += 1
    return counts


def _synced(booking: Booking, reservation: dict, order: dict | None, record) -> bool:
    account = TENANTS_BY_ID[booking.tenant_id].account(CLUB)
    options = f"order_date={account.options.get('order_date', 'booked')}, pickup_date={account.options.get('pickup_date', 'event')}"
    print(f"{booking.tenant_id} {booking.fields['bookingCode']} {booking.label} ({options})")
    if order is None:
        print("    vinsuite: no order  [UNEXPECTED]")
        return False
    ok = (
        reservation["syncStatus"] == "Processed"
        and str(reservation["externalOrderId"]) == str(order["OrderID"])
        and (order["OrderDate"], order["PickupDate"]) == expected_dates(booking.tenant_id)
        and order["IsWillCallOrder"] is True
        and order["Notes"] == ([booking.fields["guestNotes"]] if booking.fields.get("guestNotes") else [])
    )
    items = ", ".join(f"{i['SKU']} x{i['Quantity']} @ {i['Price']}" for i in order["OrderItems"])
    print(
        f"    vinsuite: order {order['OrderID']} {order['OrderNumber']}: {items}; order date {order['OrderDate']},"
        f" pickup {order['PickupDate']}, will-call {order['IsWillCallOrder']}, confirmation e-mail "
        f"{order['IsSendOrderConfirmation']}"
    )
    if order["Notes"]:
        print(f"    vinsuite note: {order['Notes'][0]}")
    print(
        f"    cellarpass: {reservation['syncStatus']}, externalOrderId {reservation['externalOrderId']}"
        f"  [{'as expected' if ok else 'UNEXPECTED'}]"
    )
    return ok


def _skipped(booking: Booking, reservation: dict, order: dict | None, record) -> bool:
    print(f"{booking.tenant_id} {booking.fields['bookingCode']} {booking.label}")
    codes = [f.code for f in record.rule_failures] if record is not None else []
    ok = order is None and codes == [booking.skipped] and reservation["syncStatus"] == "Pending"
    status = intake_pb.IntakeStatus.Name(record.status) if record is not None else "no record"
    print(f"    intake: {status}")
    for failure in record.rule_failures if record is not None else ():
        print(f"      {failure.code}: {failure.sentence}")
    print(
        f"    vinsuite: {'no order' if order is None else order['OrderID']}; cellarpass: {reservation['syncStatus']}"
        f"  [{'as expected' if ok else 'UNEXPECTED'}]"
    )
    return ok


# ---- after the sync -------------------------------------------------------------------------


async def edit_after_sync(demo: WineryDemo, booking: Booking) -> int:
    """CellarPass staff add two guests to a synced reservation: intake keeps the synced order."""
    url = f"{demo.cp}/_sim/reservations/{booking.reservation_id}"
    changes = {"guestCount": 4, "total": 240.0, "totalPaid": 240.0}
    (await demo.stack.http.patch(url, json=changes)).raise_for_status()

    async def locked():
        record = await demo.record(booking)
        return record is not None and list(record.locked_changes)

    changes_seen = await eventually("the locked change", locked)
    orders = await demo.vinsuite_order(booking)
    print(f"\ndemo: CellarPass staff made {booking.fields['bookingCode']} 4 guests after it was synced; intake says:")
    print(f"    {changes_seen[-1].message}")
    if orders is None:
        raise RuntimeError(f"demo {TENANT_ID}: the edited reservation's VinSuite order changed")
    return len(changes_seen)


async def check_logins(demo: WineryDemo) -> str:
    t, admin = TENANT_ID, demo.admin(TENANT_ID)
    password = str(demo.stack.tenants[t].account(CLUB)["password"])
    shown = []
    for label, change in (
        ("VinSuite web-service account switched off", {"active": False}),
        ("VinSuite password changed at VinSuite", {"active": True, "password": "not-the-tenants-password"}),
        ("the tenant's password again", {"password": password}),
    ):
        await demo.patch_winery(t, **change)
        answer = await admin.TestLogin(admin_pb.TestLoginRequest(tenant_id=t), timeout=30)
        print(f"demo: {t} Test Login, {label}: all ok {answer.all_ok}")
        for check in answer.checks:
            problem = admin_pb.ConnectionProblem.Name(check.problem) if not check.ok else "ok"
            print(f"    {check.connector_label or check.connector} ({check.account}): {problem} {check.detail}")
        shown.append(answer.all_ok)
    if shown != [False, False, True]:
        raise RuntimeError(f"demo {t}: Test Login answered {shown}")
    return "failed twice, then passed"


async def mirror_invite_lists(demo: WineryDemo) -> int:
    """Dispatch mirrored the member types when it started (and hourly); on demand again, then
    after a type is deleted in VinSuite: its customer type goes from CellarPass."""
    t, admin = TENANT_ID, demo.admin(TENANT_ID)
    first = await admin.SyncInviteLists(admin_pb.SyncInviteListsRequest(tenant_id=t), timeout=30)
    _print_mirror(t, "mirrored again on demand (dispatch mirrored the member types as it started)", first)
    # The control API answers a winery's member types with any it adds: none here.
    url = f"{demo.vs}/_sim/wineries/{demo.winery_id(t)}/member-types"
    types = (await demo.stack.http.post(url, json={"names": []})).json()["member_types"]
    wholesale = next(x["MemberTypeID"] for x in types if x["Name"] == "Wholesale")
    (await demo.stack.http.delete(f"{url}/{wholesale}")).raise_for_status()
    second = await admin.SyncInviteLists(admin_pb.SyncInviteListsRequest(tenant_id=t), timeout=30)
    _print_mirror(t, "'Wholesale' deleted in VinSuite, mirrored again", second)
    params = {"account_id": demo.cp_account(t)}
    listed = (await demo.stack.http.get(f"{demo.cp}/_sim/customer-types", params=params)).json()["types"]
    names = sorted(x["name"] for x in listed if x.get("sourceId"))
    print(f"    CellarPass customer types now: {', '.join(names)}")
    mirrored = sorted([*first.mirrors[0].created, *first.mirrors[0].unchanged])
    removed = list(second.mirrors[0].removed)
    if mirrored != sorted(MEMBER_TYPES) or removed != ["Wholesale"] or "Wholesale" in names:
        raise RuntimeError(f"demo {t}: the mirror held {mirrored} and removed {removed}")
    return len(mirrored)


def _print_mirror(tenant_id: str, label: str, answer: admin_pb.SyncInviteListsResponse) -> None:
    print(f"demo: {tenant_id} invite lists, {label}:")
    for m in answer.mirrors:
        renamed = [f"{r.old_name} -> {r.new_name}" for r in m.renamed]
        print(
            f"    {m.provider_account} -> {m.channel_account}: created {list(m.created)}, renamed {renamed}, "
            f"removed {list(m.removed)}, unchanged {list(m.unchanged)}"
        )
