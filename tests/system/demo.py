"""The main job: the whole system on this machine with a realistic mix of orders, and what happened.

Run with `make demo` (which starts and stops PostgreSQL and Kafka). One stack serves two
merchants. For the winery (Commerce7 → Vinoshipper) it places orders in the Commerce7 simulator,
which sends them to order intake as webhooks; has the Vinoshipper simulator fulfil, ship, deliver
or cancel what it accepted; acts as an operator would through the admin API (Retry after fixing
an SKU, Don't Send, Void Sync); then prints each order's status, journey and activity beside the
outcome the integration prescribes. The clothing store (Cin7 Omni → ShipStation, both modes, a
rate quote, the failed-import mails) is tests/system/demo_harbour.py; the outdoor-gear merchant
(Groupon deals → a Mintsoft warehouse: split, delayed and bundled orders, an unmapped SKU and an
unmapped courier fixed, mark exported on and off) is tests/system/demo_groupon.py; three wineries
(CellarPass reservations → VinSuite Customer Pickup orders, customer look-ups, locked edits, a dry
run, Test Login, invite lists) are tests/system/demo_cellarpass.py. Each merchant
ends with a summary line; it exits non-zero when an order is lost or ends anywhere other than
expected. The demo ends with `ordersync trace` of the winery's first order, printed as the
command prints it to an operator (docs/trace.md).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc

from libs.platform.testing import authorized
from tests.system import demo_cellarpass, demo_groupon, demo_harbour
from tests.system.console import ConsoleProcess, staff_operator
from tests.system.journey import Journey, JourneyReader, ordersync_trace
from tests.system.stack import READER, REPO, WINE_SHIPPING, Stack, TenantSpec

OPERATOR = "ops@cedar-ridge.example"  # the operator's caller name: the activity log shows it
TENANT = TenantSpec.commerce7_vinoshipper(
    "cedar-ridge",
    chosen_states=["CA", "OR", "NY", "WA"],
    products=["CR-CAB-2021", "CR-CHARD-2022", "CR-PINOT-2021", "CR-ROSE-2023"],
    licensed_states=["CA", "OR", "NY"],  # chosen, but Vinoshipper may not ship to WA for this winery
    order_number_prefix="CEDAR",
    operators=(OPERATOR,),
)
# The console's port (http://127.0.0.1:8090 unless ORDERSYNC_CONSOLE_PORT says otherwise), and
# KEEP=1 (`make demo KEEP=1`): leave the system running at the end for a person to browse.
CONSOLE_PORT = int(os.environ.get("ORDERSYNC_CONSOLE_PORT", "8090"))
KEEP = os.environ.get("KEEP", "") not in ("", "0")
UPS = {"01": "UPS Next Day Air", "02": "UPS 2nd Day Air", "03": "UPS Ground", "12": "UPS 3 Day Select"}
TITLES = {
    "sent": "Sent to Vinoshipper",
    "failed": "Failed to Send",
    "not_required": "Not Required to Send",
    "voided": "Voided in Vinoshipper",
}


@dataclass
class Scenario:
    """One sample order, what the provider does with it, and the outcome the integration prescribes."""

    label: str
    order: dict
    expect: str  # the final sync status: sent | not_required | failed | voided
    provider_steps: tuple[str, ...] = ()
    expect_reason: str = ""
    operator_action: str = ""  # retry (after adding the SKU at Vinoshipper) | dont_send | void
    placed: dict = field(default_factory=dict)

    @property
    def expect_final(self) -> str:
        if self.operator_action == "void":
            return "cancel"
        return self.provider_steps[-1] if self.provider_steps else ""


def _ship_to(state: str, zip_code: str, city: str) -> dict:
    return {
        "firstName": "Dana",
        "lastName": "Reyes",
        "address": "1 Vineyard Way",
        "city": city,
        "stateCode": state,
        "zipCode": zip_code,
        "countryCode": "US",
        "phone": "555-0100",
    }


def _order(channel: str, method: str, state: str | None, items, code: str | None = "03", **extra) -> dict:
    order = {
        "channel": channel,
        "orderDeliveryMethod": method,
        "customer": {
            "firstName": "Dana",
            "lastName": "Reyes",
            "emails": [{"email": "dana@example.com"}],
            "birthDate": "1980-04-02",
        },
        "items": [{"sku": sku, "quantity": qty, "price": price, "purchaseTitle": sku} for sku, qty, price in items],
        **extra,
    }
    if state:
        zips = {
            "CA": ("94558", "Napa"),
            "OR": ("97201", "Portland"),
            "NY": ("10001", "New York"),
            "WA": ("98101", "Seattle"),
            "NV": ("89501", "Reno"),
        }
        order["shipTo"] = _ship_to(state, *zips[state])
        order["billTo"] = _ship_to(state, *zips[state])
    if code:
        title = UPS.get(code, "FedEx 2Day")
        order["shipping"] = [
            {
                "carrier": "UPS" if code in UPS else "FedEx",
                "service": title,
                "code": code,
                "title": title,
                "price": 1500,
            }
        ]
    return order


def scenarios() -> list[Scenario]:
    cab, chard, pinot, rose = (
        ("CR-CAB-2021", 2, 4800),
        ("CR-CHARD-2022", 3, 2600),
        ("CR-PINOT-2021", 1, 5500),
        ("CR-ROSE-2023", 6, 2200),
    )
    return [
        Scenario(
            "web, ship to CA, UPS Ground",
            _order("Web", "Ship", "CA", [cab, chard], "03"),
            "sent",
            ("fulfil", "ship", "deliver"),
        ),
        Scenario(
            "club, ship to OR, UPS 2nd Day Air",
            _order("Club", "Ship", "OR", [pinot], "02"),
            "sent",
            ("fulfil", "ship", "deliver"),
        ),
        Scenario(
            "admin, ship to NY, UPS Next Day Air, requested ship date",
            _order("Inbound", "Ship", "NY", [rose], "01", metaData={"requestedShipDate": "2026-12-01"}),
            "sent",
            ("fulfil", "ship"),
        ),
        Scenario(
            "web, ship to CA, UPS 3 Day Select, label only",
            _order("Web", "Ship", "CA", [chard], "12"),
            "sent",
            ("fulfil",),
        ),
        Scenario(
            "web, ship to NV (not a chosen state)",
            _order("Web", "Ship", "NV", [cab], "03"),
            "not_required",
            expect_reason="STATE_NOT_CHOSEN",
        ),
        Scenario(
            "web, pickup at the winery",
            _order("Web", "Pickup", None, [cab], None),
            "not_required",
            expect_reason="PICKUP_ORDER",
        ),
        Scenario(
            "POS carry-out",
            _order("POS", "Carry Out", None, [rose], None),
            "not_required",
            expect_reason="CARRY_OUT_ORDER",
        ),
        Scenario(
            "refund of an earlier order",
            _order("Web", "Ship", "CA", [cab], "03", refund=True),
            "not_required",
            expect_reason="REFUND_NOT_SENT",
        ),
        Scenario(
            "exchange of an earlier order",
            _order("Web", "Ship", "CA", [pinot], "03", exchange=True),
            "not_required",
            expect_reason="EXCHANGE_NOT_SENT",
        ),
        Scenario(
            "web, ship to CA, SKU unknown to Vinoshipper",
            _order("Web", "Ship", "CA", [("CR-MERLOT-2019", 1, 3900)], "03"),
            "failed",
            expect_reason="UNKNOWN_SKU",
        ),
        Scenario(
            "web, ship to WA (Vinoshipper refuses: not compliant)",
            _order("Web", "Ship", "WA", [cab], "03"),
            "failed",
            expect_reason="COMPLIANCE_REJECTED",
        ),
        Scenario(
            "web, ship to CA, FedEx (no Vinoshipper carrier code)",
            _order("Web", "Ship", "CA", [cab], "FX2D"),
            "failed",
            expect_reason="UNMAPPED_CARRIER",
        ),
        Scenario(
            "web, ship to OR, cancelled by the winery in Vinoshipper",
            _order("Web", "Ship", "OR", [chard], "03"),
            "voided",
            ("cancel",),
            expect_reason="VOIDED_AT_PROVIDER",
        ),
        Scenario(
            "web, ship to CA, address wrong: operator voids before refunding",
            _order("Web", "Ship", "CA", [pinot], "03"),
            "voided",
            expect_reason="VOIDED_AT_PROVIDER",
            operator_action="void",
        ),
        Scenario(
            "web, ship to CA, SKU added in Vinoshipper, then operator retries",
            _order("Web", "Ship", "CA", [(RETRIED_SKU, 2, 3100)], "03"),
            "sent",
            ("fulfil", "ship"),
            operator_action="retry",
        ),
        Scenario(
            "web, ship to WA, rejected; operator chooses Don't Send",
            _order("Web", "Ship", "WA", [rose], "03"),
            "not_required",
            expect_reason="DONT_SEND",
            operator_action="dont_send",
        ),
    ]


RETRIED_SKU = "CR-SYRAH-2020"  # unknown to Vinoshipper until the operator's fix


class Demo:
    def __init__(self, stack: Stack, reader: JourneyReader, admin: admin_grpc.OrderAdminServiceStub):
        self.stack = stack
        self.reader = reader
        self.admin = admin
        self.c7 = stack.sim_urls["commerce7"]
        self.vs = stack.sim_urls["vinoshipper"]

    async def place(self, scenario: Scenario, original: dict | None) -> None:
        order = dict(scenario.order)
        if order.pop("refund", False):
            order.update(refundOrderId=original["id"], refundOrderNumber=original["orderNumber"])
        if order.pop("exchange", False):
            order.update(previousOrderId=original["id"], previousOrderNumber=original["orderNumber"])
        response = await self.stack.http.post(
            f"{self.c7}/_sim/orders", json={"tenant_id": TENANT.tenant_id, "order": order, "wait": True}
        )
        response.raise_for_status()
        scenario.placed = response.json()["order"]

    async def journey(self, scenario: Scenario) -> Journey:
        return await self.reader.read(TENANT.tenant_id, "commerce7", scenario.placed["id"])

    async def wait_for(self, items: list[Scenario], done, timeout_s: float = 60.0) -> dict[int, Journey]:
        deadline = time.monotonic() + timeout_s
        while True:
            journeys = {id(s): await self.journey(s) for s in items}
            if all(done(s, journeys[id(s)]) for s in items) or time.monotonic() > deadline:
                return journeys
            await asyncio.sleep(0.5)

    async def provider_step(self, number: str, step: str) -> None:
        response = await self.stack.http.post(f"{self.vs}/_sim/orders/{number}/{step}", json={"wait": True})
        response.raise_for_status()

    async def operator(self, scenario: Scenario) -> None:
        """Do what an operator would for this order, through the admin API."""
        action = scenario.operator_action
        if action == "retry":
            products = self.stack.tenants[TENANT.tenant_id].account(WINE_SHIPPING)["products"]
            await self.stack.update_account(TENANT.tenant_id, WINE_SHIPPING, products=[*products, RETRIED_SKU])
            await self.act(scenario, "RetrySend", f"{RETRIED_SKU} added to the Vinoshipper catalog")
        elif action == "dont_send":
            await self.act(scenario, "DontSend", "customer will collect at the winery instead")
        elif action == "void":
            await self.act(scenario, "VoidSync", "wrong address: void, refund and re-place the order")

    async def act(self, scenario: Scenario, method: str, reason: str) -> None:
        request = getattr(admin_pb, f"{method}Request")(
            order=self.selector(scenario), action=admin_pb.OperatorAction(reason=reason)
        )
        await getattr(self.admin, method)(request, timeout=30)

    def selector(self, scenario: Scenario) -> admin_pb.OrderSelector:
        return admin_pb.OrderSelector(
            tenant_id=TENANT.tenant_id, channel_order_number=str(scenario.placed["orderNumber"])
        )

    async def shown(self, scenario: Scenario) -> admin_pb.GetOrderResponse | None:
        try:
            return await self.admin.GetOrder(admin_pb.GetOrderRequest(order=self.selector(scenario)), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    async def channel_order(self, scenario: Scenario) -> dict:
        response = await self.stack.http.get(f"{self.c7}/_sim/orders/{scenario.placed['id']}")
        response.raise_for_status()
        return response.json()


_DISPATCH_OF = {"sent": "sent", "failed": "failed", "not_required": "not required", "voided": "voided"}


def decided(scenario: Scenario, journey: Journey) -> bool:
    """Dispatch has given the order a status of its own (not sending, not retrying)."""
    return journey.dispatch in ("sent", "failed", "not required")


def settled(scenario: Scenario, journey: Journey) -> bool:
    return journey.dispatch == _DISPATCH_OF[scenario.expect] and written(scenario, journey)


def written(scenario: Scenario, journey: Journey) -> bool:
    final = scenario.expect_final
    if final in ("ship", "deliver", "cancel"):
        return journey.written_back == {"ship": "shipped", "deliver": "delivered", "cancel": "cancelled"}[final]
    if final == "fulfil":
        return journey.shipment == "fulfilled"
    return True


def outcome_matches(scenario: Scenario, shown, journey: Journey, channel_order: dict) -> bool:
    if shown is None or shown.sync.status_title != TITLES[scenario.expect]:
        return False
    if scenario.expect_reason and scenario.expect_reason not in (journey.route_code, shown.sync.reason_code):
        return False
    final = scenario.expect_final
    if final in ("ship", "deliver") and channel_order.get("fulfillmentStatus") != "Fulfilled":
        return False
    if final == "deliver" and channel_order.get("shippingStatus") != "Delivered":
        return False
    return not (final in ("", "fulfil", "cancel") and channel_order.get("fulfillments"))


async def run() -> int:
    run_dir = REPO / ".run" / "demo"
    trace_file = run_dir / "traces.jsonl"
    run_dir.mkdir(parents=True, exist_ok=True)
    trace_file.unlink(missing_ok=True)
    items = scenarios()
    print(f"demo: starting simulators and the five services (logs in {run_dir.relative_to(REPO)}/logs)")
    async with Stack(
        [TENANT, demo_harbour.TENANT, *demo_groupon.TENANTS, *demo_cellarpass.TENANTS],
        run_dir=run_dir,
        trace_file=trace_file,
    ) as stack:
        console = await stack.start_console(port=CONSOLE_PORT)
        print(f"demo: the operator console is at {console.url} ({_console_sign_in(console, run_dir)})")
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with (
            JourneyReader(addresses, stack.token(READER)) as reader,
            grpc.aio.insecure_channel(stack.grpc_address("fulfillment_dispatch")) as admin_channel,
        ):
            admin = authorized(admin_grpc.OrderAdminServiceStub(admin_channel), stack.token(OPERATOR))
            demo = Demo(stack, reader, admin)
            for scenario in items:
                await demo.place(scenario, items[0].placed or None)
            print(f"demo: placed {len(items)} orders in the Commerce7 simulator; waiting for routing and dispatch")
            journeys = await demo.wait_for(items, decided)
            for scenario in items:
                await demo.operator(scenario)
            print(f"demo: an operator retried, voided and chose Don't Send through the admin API (as {OPERATOR})")
            await drive_provider(demo, items)
            print("demo: Vinoshipper simulator fulfilled, shipped, delivered or cancelled; waiting for writeback")
            journeys = await demo.wait_for(items, settled)
            winery = await report(demo, items, journeys)
            print(f"\ndemo: now {demo_harbour.TENANT_ID}, Cin7 Omni → ShipStation")
            harbour, harbour_summary = await demo_harbour.run(stack, reader)
            print(harbour_summary)
            print(f"\ndemo: now {demo_groupon.TENANT_ID}, Groupon (CommerceInterface) → Mintsoft")
            groupon, groupon_summary = await demo_groupon.run(stack)
            print(groupon_summary)
            print(f"\ndemo: now {demo_cellarpass.TENANT_ID} and two more wineries, CellarPass → VinSuite")
            wineries, wineries_summary = await demo_cellarpass.run(stack)
            print(wineries_summary)
            await _print_trace(stack, items[0])
            if KEEP:
                await _keep_browsable(console.url)
            return winery or harbour or groupon or wineries


def _console_sign_in(console: ConsoleProcess, run_dir: Path) -> str:
    """Where the demo's staff sign-ins are written (not printed: they are passwords)."""
    path = run_dir / "console-sign-in.txt"
    names = [staff_operator(tenant_id) for tenant_id in console.tenants]
    path.write_text("".join(f"{name}  {console.password(name)}\n" for name in names))
    path.chmod(0o600)
    return f"sign in as {names[0]}; every tenant's sign-in is in {path.relative_to(REPO)}"


async def _keep_browsable(url: str) -> None:
    """KEEP=1: leave everything running for a person to browse until Ctrl-C (or SIGTERM)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"\ndemo: KEEP=1: the system keeps running; browse {url}; press Ctrl-C to stop")
    await stop.wait()


async def drive_provider(demo: Demo, items: list[Scenario]) -> None:
    """Move each sent order through its provider steps, once it is sent (a retried one may lag)."""
    pending = [s for s in items if s.provider_steps]
    journeys = await demo.wait_for(pending, lambda s, j: j.dispatch == "sent")
    for scenario in pending:
        journey = journeys[id(scenario)]
        for step in scenario.provider_steps if journey.dispatch == "sent" else ():
            await demo.provider_step(journey.provider_order_number, step)


async def report(demo: Demo, items: list[Scenario], journeys: dict[int, Journey]) -> int:
    counts = dict.fromkeys((*TITLES, "shipped", "delivered", "lost", "unexpected"), 0)
    print()
    for scenario in items:
        journey = journeys[id(scenario)]
        shown = await demo.shown(scenario)
        channel_order = await demo.channel_order(scenario)
        lost = shown is None or not journey.order_id or not settled(scenario, journey)
        matches = not lost and outcome_matches(scenario, shown, journey, channel_order)
        _count(counts, shown, journey, lost, matches)
        verdict = "LOST" if lost else ("as expected" if matches else "UNEXPECTED")
        _print_order(scenario, shown, journey, channel_order, verdict)
    print(
        f"demo: {len(items)} orders, {counts['sent']} sent, {counts['not_required']} not required, "
        f"{counts['failed']} failed, {counts['voided']} voided, {counts['shipped']} shipped, "
        f"{counts['delivered']} delivered, {counts['lost']} lost"
    )
    return 0 if counts["lost"] == 0 and counts["unexpected"] == 0 else 1


def _count(counts: dict, shown, journey: Journey, lost: bool, matches: bool) -> None:
    if lost:
        counts["lost"] += 1
        return
    counts["unexpected"] += 0 if matches else 1
    status = {title: key for key, title in TITLES.items()}.get(shown.sync.status_title)
    if status:
        counts[status] += 1
    counts["shipped"] += journey.written_back in ("shipped", "delivered")
    counts["delivered"] += journey.written_back == "delivered"


def _print_order(scenario: Scenario, shown, journey: Journey, channel_order: dict, verdict: str) -> None:
    number = scenario.placed.get("orderNumber")
    print(f"#{number} {scenario.label}  [{verdict}]")
    if shown is not None:
        reason = f" ({shown.sync.reason_code}: {shown.sync.reason})" if shown.sync.reason else ""
        print(f"    status: {shown.sync.status_title}{reason}")
    print(f"    route: {journey.route or '-'} ({journey.route_reason or '-'})")
    if journey.provider_order_number:
        print(f"    vinoshipper: order {journey.provider_order_number}")
    if journey.shipment:
        tracking = f", tracking {', '.join(journey.tracking)}" if journey.tracking else ""
        print(f"    provider: {journey.shipment}{tracking}")
    fulfilments = channel_order.get("fulfillments") or []
    emailed = " customer e-mailed;" if journey.customer_notified else ""
    print(
        f"    channel: fulfillment {channel_order.get('fulfillmentStatus')}, {len(fulfilments)} fulfilment(s),"
        f"{emailed} shipping status {channel_order.get('shippingStatus') or '-'}"
    )
    if scenario.operator_action and shown is not None:
        print("    activity:")
        for entry in shown.activity:
            print(f"      {entry.actor:<24} {entry.kind:<20} {entry.message}")


async def _print_trace(stack: Stack, scenario: Scenario) -> None:
    """The first order's whole journey, as `ordersync trace` prints it to an operator."""
    order = str(scenario.placed["orderNumber"])
    print(f"\ndemo: its whole journey, as an operator sees it: ordersync trace {TENANT.tenant_id} {order}")
    code, _, _ = await ordersync_trace(stack.operator_env(TENANT.tenant_id), TENANT.tenant_id, order, capture=False)
    print(f"demo: ordersync trace exited {code}")


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
