"""The outdoor-gear merchant of the demo: Groupon deals (CommerceInterface) shipped from a Mintsoft warehouse.

"kauri-outdoor" sells Groupon Goods deals and ships from a Mintsoft warehouse, with mark exported
on: an order's lines are marked exported at CommerceInterface once Mintsoft has the order. Its
simulated supplier lists two line items a page, so a five-line order spans three pages. Its
product map turns a camping-kit deal into a bundle and a headlamp deal into an alternative code;
both are put through dispatch's ProductMapService, and product sync creates the warehouse products
the map names. One deal's SKU is in neither the map nor the warehouse: it fails UNKNOWN_SKU until
the operator maps it and retries. The warehouse despatches with a courier service mapped to
Groupon's approved code (tracking goes back per line) and with one not mapped yet (the writeback is
blocked until the carrier mapping is added).

mark_exported is a key of the Groupon account, so the second setting needs a second account;
here it is a second merchant, "rimu-garden", whose staff export shipped lines in the
CommerceInterface panel themselves (mark exported off: its lines stay listed and are recognised
at every poll). Its account also waits 75 s after an order's date before importing it
(CommerceInterface dates orders to the minute), so an order placed now is held, then imported.

Run by tests/system/demo.py after the other merchants, on the same stack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ordersync.dispatch.v1 import product_map_service_pb2 as pm_pb
from ordersync.tracking.v1 import tracking_service_pb2 as tracking_pb

from tests.system.groupon_warehouse import Hub, Warehouse, eventually
from tests.system.journey import Journey
from tests.system.stack import Stack, TenantSpec

TENANT_ID, PANEL_TENANT_ID = "kauri-outdoor", "rimu-garden"
OPERATOR = "ops@kauri-outdoor.example"
PANEL_OPERATOR = "ops@rimu-garden.example"
IMPORT_DELAY_S = 75  # rimu-garden's: an order dated this minute is held 15 to 75 s
OUTPUT_DATE = "%m/%d/%Y %I:%M%p UTC"  # CommerceInterface's order date, to the minute
ROYAL_MAIL, DPD = "Royal Mail Tracked 48", "DPD Next Day"  # courier services of the warehouse
COURIERS = {ROYAL_MAIL: ("ROYAL_MAIL_TRACKED", "RYM"), DPD: ("DPD_UK", "DPDUK")}  # canonical, Groupon code

# What the Mintsoft warehouse stocks from the start; the bundle's components and the bottle are
# created by product sync from the product map.
CATALOG = ["KO-JACKET-M", "KO-JACKET-L", "KO-BOOTS-42", "KO-SOCKS-3PK", "KO-BEANIE", "KO-HEADLAMP-300"]
BUNDLE = pm_pb.ProductMapping(
    channel_sku="GRP-CAMP-KIT",
    components=[
        pm_pb.ProductComponent(sku="KO-TENT-2P", quantity=1, name="Two-person tent"),
        pm_pb.ProductComponent(sku="KO-STOVE-MINI", quantity=1, name="Mini stove"),
        pm_pb.ProductComponent(sku="KO-GAS-230", quantity=2, name="Gas canister 230 g"),
    ],
)
ALTERNATIVE = pm_pb.ProductMapping(
    channel_sku="GRP-HEADLAMP", components=[pm_pb.ProductComponent(sku="KO-HEADLAMP-300", quantity=1)]
)
UNMAPPED_SKU = "GRP-FLASK-1L"  # neither in the map nor in the warehouse until the operator's fix
FIX = pm_pb.ProductMapping(
    channel_sku=UNMAPPED_SKU,
    components=[pm_pb.ProductComponent(sku="KO-BOTTLE-1000", quantity=1, name="Insulated bottle 1 L")],
)

TENANT = TenantSpec.groupon_mintsoft(
    TENANT_ID,
    groupon={"mark_exported": True, "poll_interval_s": 1, "page_size": 2, "currency": "GBP"},
    mintsoft={"products": CATALOG, "order_number_prefix": "KAURI-"},
    operators=(OPERATOR,),
)
PANEL_TENANT = TenantSpec.groupon_mintsoft(
    PANEL_TENANT_ID,
    groupon={"mark_exported": False, "poll_interval_s": 1, "import_delay_s": IMPORT_DELAY_S, "currency": "GBP"},
    mintsoft={"products": ["RG-SECATEURS", "RG-GLOVES-M"], "order_number_prefix": "RIMU-"},
    operators=(PANEL_OPERATOR,),
)
TENANTS = (TENANT, PANEL_TENANT)


@dataclass
class Scenario:
    """One Groupon order, what the warehouse does with it, and what the integration prescribes."""

    label: str
    tenant_id: str
    lines: list[dict[str, Any]]  # CommerceInterface line items (sku, bom_sku, quantity, name)
    items: list[tuple[str, int]]  # the Mintsoft order's items it must become, sorted
    courier: str = ""  # the Mintsoft courier service it is despatched with; "" = not despatched
    first_code: str = ""  # the first attempt's failure code (the unmapped SKU)
    age_min: int = 5  # how long ago Groupon dated it (0: now, the import delay holds it)
    placed: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)  # what the demo observed on the way

    @property
    def tracking(self) -> str:
        return f"{'RM' if self.courier == ROYAL_MAIL else 'DPD'}{self.placed['orderid'][3:]}GB"


def _line(sku: str, quantity: int = 1, bom_sku: str = "", name: str = "") -> dict[str, Any]:
    return {"sku": sku, "bom_sku": bom_sku, "quantity": quantity, "name": name or sku}


def scenarios() -> list[Scenario]:
    split = [("GRP-48101", "KO-JACKET-M"), ("GRP-48102", "KO-JACKET-L"), ("GRP-48103", "KO-BOOTS-42")]
    split += [("GRP-48104", "KO-SOCKS-3PK"), ("GRP-48105", "KO-BEANIE")]
    return [
        Scenario(
            "five lines over three pages of get_orders (bom_sku = the warehouse SKU)",
            TENANT_ID,
            [_line(sku, bom_sku=own) for sku, own in split],
            sorted((own, 1) for _, own in split),
            courier=ROYAL_MAIL,
        ),
        Scenario(
            "camping kit deal, a bundle: tent, stove and 2 gas canisters, 2 kits",
            TENANT_ID,
            [_line(BUNDLE.channel_sku, 2, name="Camping kit")],
            [("KO-GAS-230", 4), ("KO-STOVE-MINI", 2), ("KO-TENT-2P", 2)],
            courier=ROYAL_MAIL,
        ),
        Scenario(
            "headlamp deal, an alternative code",
            TENANT_ID,
            [_line(ALTERNATIVE.channel_sku, 3, name="Headlamp 300 lm")],
            [("KO-HEADLAMP-300", 3)],
            courier=ROYAL_MAIL,
        ),
        Scenario(
            "flask deal, SKU unknown to Mintsoft; mapped, product synced, operator retries",
            TENANT_ID,
            [_line(UNMAPPED_SKU, name="Flask 1 L")],
            [("KO-BOTTLE-1000", 1)],
            courier=ROYAL_MAIL,
            first_code="UNKNOWN_SKU",
        ),
        Scenario(
            f"beanie, despatched with {DPD} (no Groupon code yet), then the courier mapped",
            TENANT_ID,
            [_line("GRP-48105", bom_sku="KO-BEANIE")],
            [("KO-BEANIE", 1)],
            courier=DPD,
        ),
        Scenario(
            "mark exported off: secateurs, placed 5 minutes ago",
            PANEL_TENANT_ID,
            [_line("GRP-77001", bom_sku="RG-SECATEURS")],
            [("RG-SECATEURS", 1)],
        ),
        Scenario(
            f"mark exported off: gloves, placed now (younger than the {IMPORT_DELAY_S} s import delay)",
            PANEL_TENANT_ID,
            [_line("GRP-77002", 2, bom_sku="RG-GLOVES-M")],
            [("RG-GLOVES-M", 2)],
            age_min=0,
        ),
    ]


class GrouponDemo:
    """Drives both merchants' simulated systems and the hub's APIs, and keeps what it saw."""

    def __init__(self, stack: Stack, hub: Hub):
        self.stack, self.hub = stack, hub
        self.warehouses = {spec.tenant_id: Warehouse(stack, stack.tenants[spec.tenant_id]) for spec in TENANTS}
        self.synced: list[pm_pb.SyncProductsResponse] = []

    async def map_products(self, *mappings: pm_pb.ProductMapping) -> None:
        for mapping in mappings:
            await self.hub.put_product_mapping(TENANT_ID, mapping)

    async def sync_products(self) -> pm_pb.SyncProductsResponse:
        answer = await self.hub.sync_products(TENANT_ID)
        self.synced.append(answer)
        return answer

    async def place(self, scenario: Scenario) -> None:
        dated = datetime.now(UTC) - timedelta(minutes=scenario.age_min)
        scenario.placed = await self.warehouses[scenario.tenant_id].place(
            line_items=scenario.lines, date=dated.strftime(OUTPUT_DATE)
        )
        scenario.seen["placed_at"] = time.time()

    async def journey(self, scenario: Scenario) -> Journey:
        return await self.hub.journey(scenario.tenant_id, scenario.placed)

    async def wait_for(self, items: list[Scenario], done, what: str, timeout_s: float = 90.0) -> dict[int, Journey]:
        async def read() -> dict[int, Journey]:
            return {id(s): await self.journey(s) for s in items}

        return await eventually(read, lambda js: all(done(s, js[id(s)]) for s in items), what, timeout_s)

    async def in_mintsoft(self, scenario: Scenario) -> list[dict[str, Any]]:
        return await self.warehouses[scenario.tenant_id].in_mintsoft(scenario.placed)

    async def lines(self, scenario: Scenario) -> list[dict[str, Any]]:
        return await self.warehouses[scenario.tenant_id].groupon_lines(scenario.placed)

    async def listed(self, tenant_id: str) -> set[int]:
        """The line ids CommerceInterface's get_orders lists now, read page by page as intake reads them."""
        warehouse = self.warehouses[tenant_id]
        query = {"supplier_id": warehouse.supplier_id, "token": warehouse.deals["token"]}
        ids: set[int] = set()
        page, pages = 1, 1
        while page <= pages:
            response = await self.stack.http.get(
                f"{self.stack.sim_urls['groupon']}/api/v4/get_orders", params={**query, "page": page}
            )
            response.raise_for_status()
            body = response.json()
            pages = body["meta"]["no_of_pages"]
            ids |= {int(line["ci_lineitemid"]) for entry in body["data"] for line in entry["line_items"]}
            page += 1
        return ids

    async def despatch(self, scenario: Scenario) -> None:
        warehouse = self.warehouses[scenario.tenant_id]
        [created] = await warehouse.in_mintsoft(scenario.placed)
        await warehouse.despatch(created, scenario.courier, scenario.tracking)


def release_time(scenario: Scenario) -> float:
    """When the import delay lets the order in: its Groupon date (to the minute) plus the delay."""
    dated = datetime.strptime(scenario.placed["date"], OUTPUT_DATE).replace(tzinfo=UTC)
    return dated.timestamp() + IMPORT_DELAY_S


async def run(stack: Stack) -> tuple[int, str]:
    """Run the Groupon → Mintsoft scenarios on a started stack; return (exit code, summary line)."""
    items = scenarios()
    async with Hub(stack) as hub:
        demo = GrouponDemo(stack, hub)
        await set_up(demo)
        await drive(demo, items)
        return await report(demo, items)


async def set_up(demo: GrouponDemo) -> None:
    """What the merchant's operator does before the first order: the courier the warehouse uses
    most mapped to Groupon's code, the product map, and product sync creating what it names."""
    await demo.hub.map_courier(TENANT_ID, ROYAL_MAIL, COURIERS[ROYAL_MAIL][0])
    await demo.map_products(BUNDLE, ALTERNATIVE)
    synced = await demo.sync_products()
    print(
        f"demo: {TENANT_ID}'s operator mapped {ROYAL_MAIL!r} to {COURIERS[ROYAL_MAIL][0]} (Groupon {COURIERS[ROYAL_MAIL][1]}),"
        f" put a bundle and an alternative code in the product map; product sync created"
        f" {', '.join(p.sku for p in synced.created) or 'nothing'} in Mintsoft"
        f" ({', '.join(synced.present) or 'none'} already there)"
    )


async def drive(demo: GrouponDemo, items: list[Scenario]) -> None:
    delayed = [s for s in items if s.age_min == 0]
    for scenario in delayed + [s for s in items if s.age_min]:  # the held one first: its clock runs
        await demo.place(scenario)
    print(f"demo: placed {len(items)} Groupon orders in the CommerceInterface simulator; intake polls every second")
    # The held order is looked at as soon as the older order of its account is through.
    beside = [s for s in items if s.age_min and s.tenant_id in {d.tenant_id for d in delayed}]
    await demo.wait_for(beside, lambda s, j: j.dispatch == "sent", "the older order of the delayed account sent")
    for scenario in delayed:
        scenario.seen["checked_at"] = time.time()
        scenario.seen["held"] = not await demo.in_mintsoft(scenario) and not (await demo.journey(scenario)).intake
    prompt = [s for s in items if s.age_min]
    await demo.wait_for(prompt, lambda s, j: j.dispatch in ("sent", "failed"), "the Groupon orders sent or failed")
    retried = [s for s in items if s.first_code]
    for scenario in retried:
        await fix_and_retry(demo, scenario)
    await demo.wait_for(retried, lambda s, j: j.dispatch == "sent", "the retried order sent")
    shipped = [s for s in items if s.courier]
    for scenario in shipped:
        await demo.despatch(scenario)
    print(f"demo: the warehouse despatched {len(shipped)} orders in Mintsoft ({ROYAL_MAIL}, one with {DPD})")
    await await_blocked_then_release(demo, [s for s in shipped if s.courier == DPD])
    for scenario in shipped:
        await eventually(
            partial(demo.lines, scenario), lambda ls: all(line["tracking"] for line in ls), "tracking on Groupon"
        )
    for scenario in [s for s in items if s.tenant_id == TENANT_ID]:
        await eventually(
            partial(demo.lines, scenario), lambda ls: all(line["exported"] for line in ls), "lines marked exported"
        )
    if delayed:
        wait_s = max(0.0, max(release_time(s) for s in delayed) - time.time())
        print(f"demo: waiting for the held order's import delay to pass (about {wait_s:.0f} s more)")
    await demo.wait_for(
        delayed, lambda s, j: j.dispatch == "sent", "the held order sent", timeout_s=IMPORT_DELAY_S + 60
    )


async def fix_and_retry(demo: GrouponDemo, scenario: Scenario) -> None:
    """What the operator does for an UNKNOWN_SKU: map the SKU, create the product, Retry."""
    journey = await demo.journey(scenario)
    scenario.seen["failed"] = (journey.dispatch_code, journey.dispatch_reason)
    scenario.seen["exported_while_failed"] = any(line["exported"] for line in await demo.lines(scenario))
    await demo.map_products(FIX)
    synced = await demo.sync_products()
    await demo.hub.retry(TENANT_ID, journey.order_id, reason=f"{UNMAPPED_SKU} mapped to {FIX.components[0].sku}")
    print(
        f"demo: #{scenario.placed['orderid']} failed {journey.dispatch_code}; the operator mapped {UNMAPPED_SKU} to"
        f" {FIX.components[0].sku}, product sync created {', '.join(p.sku for p in synced.created) or 'nothing'},"
        " and retried it through the admin API"
    )


async def await_blocked_then_release(demo: GrouponDemo, items: list[Scenario]) -> None:
    for scenario in items:
        order_id = (await demo.journey(scenario)).order_id
        blocked = await eventually(
            partial(demo.hub.writeback, TENANT_ID, order_id),
            lambda wb: wb is not None and wb.status == tracking_pb.WRITEBACK_STATUS_BLOCKED,
            "the writeback blocked",
        )
        scenario.seen["blocked"] = blocked.reason if blocked else ""
        scenario.seen["tracking_while_blocked"] = any(line["tracking"] for line in await demo.lines(scenario))
        canonical, _ = COURIERS[scenario.courier]
        await demo.hub.map_courier(TENANT_ID, scenario.courier, canonical)
        print(
            f"demo: #{scenario.placed['orderid']}'s writeback blocked; the operator mapped {scenario.courier!r} to {canonical}"
        )


async def report(demo: GrouponDemo, items: list[Scenario]) -> tuple[int, str]:
    counts = dict.fromkeys(("sent", "held", "retried", "shipped", "blocked", "marked", "listed", "lost", "odd"), 0)
    print()
    listed = {spec.tenant_id: await demo.listed(spec.tenant_id) for spec in TENANTS}
    for scenario in items:
        journey = await demo.journey(scenario)
        created = await demo.in_mintsoft(scenario)
        lines = [
            line | {"listed": line["ci_lineitemid"] in listed[scenario.tenant_id]}
            for line in await demo.lines(scenario)
        ]
        marks = [c for c in await demo.warehouses[scenario.tenant_id].groupon_calls("mark_exported") if c["success"]]
        problems = check(scenario, journey, created, lines, marks)
        lost = not journey.intake or journey.dispatch != "sent"
        verdict = "LOST" if lost else ("UNEXPECTED: " + "; ".join(problems) if problems else "as expected")
        counts["lost"] += lost
        counts["odd"] += bool(problems) and not lost
        counts["sent"] += journey.dispatch == "sent"
        counts["held"] += bool(scenario.seen.get("held"))
        counts["retried"] += bool(scenario.first_code) and journey.dispatch == "sent"
        counts["shipped"] += bool(lines) and all(line["tracking"] for line in lines)
        counts["blocked"] += "blocked" in scenario.seen
        counts["marked"] += sum(1 for line in lines if line["exported"])
        counts["listed"] += sum(1 for line in lines if line["listed"])
        print_order(scenario, journey, created, lines, verdict)
    created_by_sync = sorted({p.sku for answer in demo.synced for p in answer.created})
    print(f"\nproduct sync ({len(demo.synced)} runs) created in Mintsoft: {', '.join(created_by_sync)}")
    summary = (
        f"demo {TENANT_ID}: {len(items)} Groupon orders ({sum(s.tenant_id == PANEL_TENANT_ID for s in items)} of"
        f" {PANEL_TENANT_ID}, mark exported off), {counts['sent']} sent ({counts['held']} held by the import delay"
        f" first), {counts['retried']} failed then retried, {counts['shipped']} shipped,"
        f" {counts['blocked']} blocked then released, {counts['marked']} lines marked exported,"
        f" {counts['listed']} still listed by get_orders, {len(created_by_sync)} products created by sync, {counts['lost']} lost"
    )
    return (0 if counts["lost"] == 0 and counts["odd"] == 0 else 1), summary


def check(scenario: Scenario, journey: Journey, created: list[dict], lines: list[dict], marks: list[dict]) -> list[str]:
    """What differs from what the integration prescribes for this order (empty: nothing)."""
    problems = []
    if len(created) != 1:
        return [f"{len(created)} Mintsoft orders"]
    [order] = created
    if sorted((i["SKU"], i["Quantity"]) for i in order["OrderItems"]) != scenario.items:
        problems.append("Mintsoft items differ")
    if scenario.first_code:
        code, reason = scenario.seen.get("failed", ("", ""))
        if code != scenario.first_code or UNMAPPED_SKU not in reason or scenario.seen.get("exported_while_failed"):
            problems.append(f"first attempt {code}: {reason}")
    if scenario.courier:
        _, code = COURIERS[scenario.courier]
        if {(line["tracking"] or {}).get("carrier") for line in lines} != {code}:
            problems.append(f"tracking not written with Groupon code {code} on every line")
        if scenario.courier == DPD and (
            f"courier {DPD} has no Groupon code" not in scenario.seen.get("blocked", "")
            or scenario.seen.get("tracking_while_blocked")
        ):
            problems.append("not blocked before the courier was mapped")
    ids = {line["ci_lineitemid"] for line in lines}
    marked_ids = {int(i) for call in marks for i in call["ci_lineitem_ids"]}
    if scenario.tenant_id == TENANT_ID:
        if any(line["listed"] for line in lines):
            problems.append("marked lines still listed by get_orders")
        if not ids <= marked_ids or any(
            c["at"] < order["created_at"] for c in marks if ids & set(map(int, c["ci_lineitem_ids"]))
        ):
            problems.append("lines not marked exported after the Mintsoft create")
    elif marked_ids or any(line["exported"] or not line["listed"] for line in lines):
        problems.append("lines marked exported (or no longer listed) with mark exported off")
    if scenario.age_min == 0 and order["created_at"] < release_time(scenario):
        problems.append("imported before its import delay")
    return problems


def print_order(scenario: Scenario, journey: Journey, created: list[dict], lines: list[dict], verdict: str) -> None:
    print(f"#{scenario.placed['orderid']} ({scenario.tenant_id}) {scenario.label}  [{verdict}]")
    status = journey.dispatch or "-"
    if "failed" in scenario.seen:
        code, reason = scenario.seen["failed"]
        print(f"    first attempt: failed ({code}: {reason}); after the fix and Retry: {status}")
    else:
        print(f"    status: {status}")
    if scenario.age_min == 0 and "checked_at" in scenario.seen:
        held_for = scenario.seen["checked_at"] - scenario.seen["placed_at"]
        state = "not imported yet" if scenario.seen["held"] else "already imported"
        release = datetime.fromtimestamp(release_time(scenario), UTC).strftime("%H:%M:%S")
        in_mintsoft = (
            f", in Mintsoft {created[0]['created_at'] - scenario.seen['placed_at']:.0f} s after it was placed"
            if created
            else ""
        )
        print(
            f"    dated {scenario.placed['date']}: {state} {held_for:.0f} s after it was placed, while the older"
            f" order was sent; imported from {release} (its date + {IMPORT_DELAY_S} s){in_mintsoft}"
        )
    for order in created:
        items = ", ".join(f"{i['SKU']} x{i['Quantity']}" for i in order["OrderItems"])
        print(f"    mintsoft: order {order['OrderNumber']} ({len(created)} in all): {items}")
    if "blocked" in scenario.seen:
        print(f"    writeback first blocked: {scenario.seen['blocked'].split(';')[0]}")
    for line in lines:
        tracking = line["tracking"]
        written = f"tracking {tracking['tracking']} {tracking['carrier']}" if tracking else "no tracking"
        print(
            f"    groupon line {line['ci_lineitemid']}: {'marked exported' if line['exported'] else 'not exported'},"
            f" {'still' if line['listed'] else 'no longer'} listed by get_orders,"
            f" {written}"
        )
