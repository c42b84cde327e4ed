"""The demo's Cin7 Omni → ShipStation merchant: what happens to each of its orders.

Harbour Goods sells clothing through Cin7 Omni and ships with ShipStation. Its warehouse calls a
picked order "Ready to Ship" (a custom stage, mapped to ShipStation's Awaiting Shipment), US
orders go to ShipStation through the API (bulk createorders) and Canadian ones wait for
ShipStation to fetch them from ordersync's Custom Store endpoint. The demo enters orders in the
Cin7 simulator as staff would (some passing every import rule, one failing each), lets intake
poll them, has the ShipStation simulator refuse one, fetch the store and buy labels, and then
prints each order's status beside what the integration prescribes: not imported with its
reason code, sent, failed with ShipStation's message, shipped with the tracking written to Cin7
(an existing carrier kept). It also quotes an order's freight with the merchant's markup, writes
the chosen freight onto a draft order in Cin7, and lists the failed-import mails the local SMTP
sink received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from ordersync.common.v1 import order_pb2, postal_address_pb2
from ordersync.dispatch.v1 import rates_service_pb2 as rates_pb
from ordersync.dispatch.v1 import rates_service_pb2_grpc as rates_grpc

from libs.platform.testing import authorized
from tests.simulators.registry import default_simulators
from tests.system.journey import Journey, JourneyReader
from tests.system.stack import LABELS, OMNI, RouteSpec, Stack, TenantSpec

TENANT_ID = "harbour-goods"
OPERATOR = "ops@harbour-goods.example"
MAIL_TO = "orders-desk@harbour-goods.example"
READY = "Ready to Ship"  # the merchant's own stage for a picked order


def _tenant() -> TenantSpec:
    simulators = default_simulators()
    omni = simulators.get("cin7").new_account(
        OMNI,
        TENANT_ID,
        fully_picked_stage=READY,
        import_errors_to=MAIL_TO,
        option_names=["Colour", "Size"],
        poll_interval_s=1,
    )
    labels = simulators.get("shipstation").new_account(
        LABELS,
        TENANT_ID,
        status_awaiting_shipment=READY,  # the custom stage, in the connection's status mapping
        rate_markup_percent="12.5",
        rate_carriers="ups,fedex",
        from_postal_code="98101",
        # What the merchant maps when connecting the Custom Store in ShipStation.
        store_statuses={"New": "awaiting_payment", READY: "awaiting_shipment", "Dispatched": "shipped"},
    )
    routes = (
        RouteSpec("canada-by-custom-store", OMNI, LABELS, ship_to_countries=("CA",), options={"mode": "custom_store"}),
        RouteSpec("us-by-api", OMNI, LABELS, ship_to_countries=("US",)),
    )
    return TenantSpec(TENANT_ID, (omni, labels), routes, (OPERATOR,))


TENANT = _tenant()


@dataclass
class Scenario:
    """One Cin7 order, what staff and ShipStation do with it, and the outcome prescribed."""

    label: str
    fields: dict[str, Any]
    expect: str  # not_imported | sent | failed | shipped
    expect_code: str = ""  # the rule's code, or the provider's reason code
    fixed_by: dict[str, Any] = field(default_factory=dict)  # a change in Cin7 after the first poll
    refused_by_shipstation: str = ""
    placed: dict[str, Any] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return str(self.fields["reference"])


def _order(reference: str, country: str = "US", **changes: Any) -> dict[str, Any]:
    """A Cin7 order meeting every import rule (approved, Ready to Ship, a delivery country,
    created now, lines to dispatch); `changes` break or add what a scenario needs."""
    address = (
        {"deliveryCity": "Seattle", "deliveryState": "WA", "deliveryPostalCode": "98101"}
        if country == "US"
        else {"deliveryCity": "Vancouver", "deliveryState": "BC", "deliveryPostalCode": "V6B 1A1"}
    )
    return {
        "reference": reference,
        "stage": READY,
        "status": "Approved",
        "isApproved": True,
        "createdDate": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "firstName": "Kai",
        "lastName": "Moana",
        "email": "kai@example.com",
        "phone": "",
        "mobile": "+1 206 555 0123",
        "deliveryFirstName": "Kai",
        "deliveryLastName": "Moana",
        "deliveryAddress1": "88 Pier Street",
        "deliveryCountry": country,
        "freightDescription": "UPS Ground",
        "internalComments": "Pack with tissue paper",
        "lineItems": [
            {
                "code": "TEE-NAVY-M",
                "name": "Harbour Tee",
                "qty": 2,
                "unitPrice": 28.0,
                "option1": "Navy",
                "option2": "M",
            },
            {"code": "CAP-SAND", "name": "Deck Cap", "qty": 1, "unitPrice": 22.0, "option1": "Sand"},
        ],
        **address,
        **changes,
    }


def scenarios() -> list[Scenario]:
    long_ago = (datetime.now(UTC) - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    shipped_line = [{"code": "TEE-NAVY-M", "name": "Harbour Tee", "qty": 2, "qtyShipped": 2}]
    return [
        Scenario("US, two lines with colour and size, sent through the API", _order("HG-1001"), "shipped"),
        Scenario(
            "US, carrier already chosen in Cin7 (kept)",
            _order("HG-1002", logisticsCarrier="Harbour Courier"),
            "shipped",
        ),
        Scenario("Canada, fetched by ShipStation from the Custom Store", _order("HG-1003", country="CA"), "shipped"),
        Scenario(
            "US, ShipStation refuses the address",
            _order("HG-1004"),
            "failed",
            "SHIPSTATION_ORDER_REJECTED",
            refused_by_shipstation="The ship-to address could not be verified.",
        ),
        Scenario(
            "US, still being picked, then moved to Ready to Ship",
            _order("HG-1005", stage="New"),
            "shipped",
            fixed_by={"stage": READY},
        ),
        Scenario("draft order", _order("HG-1006", status="Draft", isApproved=False), "not_imported", "NOT_APPROVED"),
        Scenario("not picked yet", _order("HG-1007", stage="New"), "not_imported", "NOT_FULLY_PICKED"),
        Scenario("no delivery country", _order("HG-1008", deliveryCountry=""), "not_imported", "NO_DELIVERY_COUNTRY"),
        Scenario(
            "placed 200 days ago, no ETD",
            _order("HG-1009", createdDate=long_ago, estimatedDeliveryDate=None),
            "not_imported",
            "TOO_OLD",
        ),
        Scenario(
            "every line already shipped",
            _order("HG-1010", lineItems=shipped_line),
            "not_imported",
            "NOTHING_TO_DISPATCH",
        ),
    ]


class HarbourDemo:
    """Drives the Cin7 and ShipStation simulators as staff and ShipStation would; reads journeys."""

    def __init__(self, stack: Stack, reader: JourneyReader):
        self.stack, self.reader = stack, reader
        self.cin7 = f"{stack.sim_urls['cin7']}/_sim/accounts/{TENANT.account(OMNI)['username']}/orders"
        self.shipstation = f"{stack.sim_urls['shipstation']}/_sim/accounts/{TENANT_ID}.{LABELS}"

    async def place(self, items: list[Scenario]) -> None:
        for scenario in items:
            if scenario.refused_by_shipstation:
                await self._post(
                    f"{self.shipstation}/rejections",
                    {"order_number": scenario.reference, "message": scenario.refused_by_shipstation},
                )
        answer = await self._post(self.cin7, {"orders": [s.fields for s in items]})
        for scenario, placed in zip(items, answer["orders"], strict=True):
            scenario.placed = placed

    async def fix(self, scenario: Scenario) -> None:
        await self._post(f"{self.cin7}/{scenario.placed['id']}", scenario.fixed_by)

    async def fetch_store(self) -> dict[str, Any]:
        """ShipStation's scheduler pulls the Custom Store now."""
        return await self._post(f"{self.shipstation}/store/pull", {})

    async def buy_label(self, number: str) -> None:
        await self._post(
            f"{self.shipstation}/orders/{number}/ship",
            {"carrier_code": "ups", "service_code": "ups_ground", "wait": True},
        )

    async def journey(self, scenario: Scenario) -> Journey:
        return await self.reader.read(TENANT_ID, "cin7", str(scenario.placed["id"]))

    async def journeys(self, items: list[Scenario]) -> dict[str, Journey]:
        return {s.reference: await self.journey(s) for s in items}

    async def wait_for(
        self, items: list[Scenario], done: Callable[[Scenario, Journey], bool], timeout_s: float = 90.0
    ) -> dict[str, Journey]:
        deadline = time.monotonic() + timeout_s
        while True:
            journeys = await self.journeys(items)
            if all(done(s, journeys[s.reference]) for s in items) or time.monotonic() > deadline:
                return journeys
            await asyncio.sleep(0.5)

    async def cin7_order(self, scenario: Scenario) -> dict[str, Any]:
        response = await self.stack.http.get(f"{self.cin7}/{scenario.placed['id']}")
        response.raise_for_status()
        return response.json()

    async def mails(self) -> list[dict[str, Any]]:
        response = await self.stack.http.get(f"{self.stack.sim_urls['mailsink']}/_sim/messages", params={"to": MAIL_TO})
        response.raise_for_status()
        return response.json()["messages"]

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.stack.http.post(url, json=body)
        response.raise_for_status()
        return response.json()


def first_stop(scenario: Scenario, journey: Journey) -> bool:
    """Intake kept it out, or dispatch gave it a status of its own (sent, failed, held)."""
    if scenario.fixed_by and not journey.order_id:
        return journey.intake == "not_imported"
    return journey.intake == "not_imported" or journey.dispatch in ("sent", "failed", "awaiting pull")


def settled(scenario: Scenario, journey: Journey) -> bool:
    if scenario.expect == "not_imported":
        return journey.intake == "not_imported"
    if scenario.expect == "failed":
        return journey.dispatch == "failed"
    return journey.written_back == "shipped"


async def run(stack: Stack, reader: JourneyReader) -> tuple[int, str]:
    """Run the Harbour Goods scenarios on a started stack; return (exit code, summary line)."""
    items = scenarios()
    demo = HarbourDemo(stack, reader)
    await demo.place(items)
    print(f"demo: entered {len(items)} orders in the Cin7 Omni simulator for {TENANT_ID}; intake polls them")
    await demo.wait_for(items, first_stop)
    for scenario in (s for s in items if s.fixed_by):
        await demo.fix(scenario)
    print(f"demo: staff moved an order to {READY!r} in Cin7; ShipStation fetches the Custom Store")
    await demo.wait_for(items, lambda s, j: s.expect != "shipped" or j.dispatch in ("sent", "awaiting pull"))
    pulled = await demo.fetch_store()
    journeys = await demo.wait_for(items, lambda s, j: s.expect != "shipped" or j.dispatch == "sent")
    for scenario in (s for s in items if s.expect == "shipped"):
        if journeys[scenario.reference].provider_order_number:
            await demo.buy_label(journeys[scenario.reference].provider_order_number)
    print("demo: ShipStation bought labels (SHIP_NOTIFY, and shipnotify for the store order); waiting for Cin7")
    journeys = await demo.wait_for(items, settled)
    quote_line = await quote_and_write_freight(stack, demo, items)
    return await report(demo, items, journeys, pulled, quote_line)


def parcel_for(scenario: Scenario) -> order_pb2.Order:
    """The draft order as staff quote it: its ship-to and its lines with their packed weights
    (Cin7's sales orders carry no weights, so the quote is asked with the order given inline)."""
    fields = scenario.fields
    ship_to = postal_address_pb2.PostalAddress(
        address_lines=[fields["deliveryAddress1"]],
        locality=fields["deliveryCity"],
        administrative_area=fields["deliveryState"],
        postal_code=fields["deliveryPostalCode"],
        region_code=fields["deliveryCountry"],
    )
    weights = {"TEE-NAVY-M": 220, "CAP-SAND": 140}  # grams a unit, from the warehouse's scale
    lines = [
        order_pb2.OrderLine(
            sku=line["code"], quantity=line["qty"], weight_grams=weights[line["code"]], requires_shipping=True
        )
        for line in fields["lineItems"]
    ]
    return order_pb2.Order(tenant_id=TENANT_ID, channel="cin7", ship_to=ship_to, lines=lines)


async def quote_and_write_freight(stack: Stack, demo: HarbourDemo, items: list[Scenario]) -> str:
    """Quote the draft order's freight with the merchant's markup and write the cheapest onto it
    in Cin7, as staff quoting freight before approving an order would; the rate calculator
    stands alone, no route or store connection involved."""
    draft = next(s for s in items if s.expect_code == "NOT_APPROVED")
    async with grpc.aio.insecure_channel(stack.grpc_address("fulfillment_dispatch")) as channel:
        rates = authorized(rates_grpc.RateQuoteServiceStub(channel), stack.token(OPERATOR))
        answer = await rates.QuoteRates(rates_pb.QuoteRatesRequest(tenant_id=TENANT_ID, inline_order=parcel_for(draft)))
        cheapest = min(answer.quotes, key=lambda q: q.total.minor_units)
        await rates.WriteFreight(
            rates_pb.WriteFreightRequest(
                tenant_id=TENANT_ID,
                channel_account=OMNI,
                channel_order_id=str(draft.placed["id"]),
                total=cheapest.total,
                service_name=cheapest.service_name,
            )
        )
    print(f"\nrate quote for draft #{draft.reference} (markup {answer.markup_percent} %, totals rounded half up):")
    for quote in answer.quotes:
        total = quote.total.minor_units / 100
        print(
            f"    {quote.service_name:<34} {quote.base_amount.value:>12} + {quote.markup_amount.value:<14}"
            f" = {total:8.2f} {quote.total.currency_code}"
        )
    freight = (await demo.cin7_order(draft))["freightTotal"]
    print(f"    the cheapest, {cheapest.service_name}, written onto it in Cin7: freightTotal {freight}")
    return f"{len(answer.quotes)} rates quoted"


async def report(
    demo: HarbourDemo, items: list[Scenario], journeys: dict[str, Journey], pulled: dict[str, Any], quotes: str
) -> tuple[int, str]:
    counts = dict.fromkeys(("not_imported", "sent", "by_store", "failed", "shipped", "lost", "unexpected"), 0)
    print()
    for scenario in items:
        journey = journeys[scenario.reference]
        cin7 = await demo.cin7_order(scenario)
        verdict = _verdict(scenario, journey, cin7)
        counts["lost" if verdict == "LOST" else "unexpected"] += verdict in ("LOST", "UNEXPECTED")
        _count(counts, journey)
        _print_order(scenario, journey, cin7, verdict)
    mails = await demo.mails()
    print(f"\nfailed-import mails received by the SMTP sink for {MAIL_TO}: {len(mails)}")
    for mail in mails:
        print(f"    {mail['subject']}")
    if mails:
        print("    first mail's body:")
        for line in mails[0]["body"].strip().splitlines():
            print(f"      | {line}")
    print(f"\nCustom Store: ShipStation fetched {pulled.get('pages')} page(s), orders {pulled.get('orders')}")
    expected_mails = sum(1 for s in items if s.expect == "not_imported" or s.fixed_by)
    mails_ok = len(mails) == expected_mails
    summary = (
        f"demo {TENANT_ID}: {len(items)} Cin7 orders, {counts['not_imported']} not imported, "
        f"{counts['sent']} sent ({counts['by_store']} fetched by the Custom Store), {counts['failed']} failed, "
        f"{counts['shipped']} shipped, {len(mails)} failed-import mails, {quotes}, {counts['lost']} lost"
    )
    ok = counts["lost"] == 0 and counts["unexpected"] == 0 and mails_ok
    return (0 if ok else 1), summary


def _verdict(scenario: Scenario, journey: Journey, cin7: dict[str, Any]) -> str:
    if not journey.intake:
        return "LOST"
    if not settled(scenario, journey):
        return "LOST" if journey.intake == "accepted" and not journey.dispatch else "UNEXPECTED"
    if scenario.expect == "not_imported" and scenario.expect_code not in journey.intake_reason:
        return "UNEXPECTED"
    if scenario.expect == "failed" and journey.dispatch_code != scenario.expect_code:
        return "UNEXPECTED"
    if scenario.expect == "shipped" and not _written_to_cin7(scenario, journey, cin7):
        return "UNEXPECTED"
    return "as expected"


def _written_to_cin7(scenario: Scenario, journey: Journey, cin7: dict[str, Any]) -> bool:
    kept_carrier = scenario.fields.get("logisticsCarrier")
    carrier_ok = cin7.get("logisticsCarrier") == kept_carrier if kept_carrier else bool(cin7.get("logisticsCarrier"))
    return cin7.get("stage") == "Dispatched" and cin7.get("trackingCode") in journey.tracking and carrier_ok


def _count(counts: dict[str, int], journey: Journey) -> None:
    if journey.intake == "not_imported":
        counts["not_imported"] += 1
    if journey.dispatch == "sent":
        counts["sent"] += 1
        counts["by_store"] += journey.route_name == "canada-by-custom-store"
    counts["failed"] += journey.dispatch == "failed"
    counts["shipped"] += journey.written_back == "shipped"


def _print_order(scenario: Scenario, journey: Journey, cin7: dict[str, Any], verdict: str) -> None:
    print(f"#{scenario.reference} {scenario.label}  [{verdict}]")
    if journey.intake == "not_imported":
        print(f"    intake: not imported ({journey.intake_reason})")
        return
    reason = f" ({journey.dispatch_code}: {journey.dispatch_reason})" if journey.dispatch_code else ""
    print(f"    status: {journey.dispatch or '-'}{reason}")
    print(f"    route: {journey.route_name or '-'}, shipstation order {journey.provider_order_number or '-'}")
    if journey.shipment:
        print(f"    provider: {journey.shipment}, tracking {', '.join(journey.tracking) or '-'}")
    print(
        f"    cin7: stage {cin7.get('stage')}, tracking {cin7.get('trackingCode') or '-'}, "
        f"carrier {cin7.get('logisticsCarrier') or '-'}"
    )
