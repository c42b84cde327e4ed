"""Benchmark: N Groupon orders read from CommerceInterface pages and created at Mintsoft, with the
requests per order each vendor was asked, beside a bare client doing the same vendor work.

Measured side: the five services as processes on real Kafka and PostgreSQL (as `make bench` runs
them) and one Groupon to Mintsoft tenant configured as in production: mark exported on, the
Mintsoft callbacks registered (Connect Actions pointing at dispatch), dispatch's read-back and
shipment polling at their production intervals; only the poll interval is 1 s. N orders (most
of one line, some of several, so orders straddle the 250-line pages; some lines mapped to an
alternative code or a bundle through the tenant's product map) are seeded in one call of the
CommerceInterface simulator's control API. Intake reads every page, routing routes, dispatch
creates each order at the Mintsoft simulator (and registers its callbacks), and intake marks the
lines exported once dispatch reported the order sent. Done when every order is at Mintsoft;
reported apart: when every line is marked exported. orders/s = N / seconds from the first
get_orders after seeding to the last create.

Baseline, in the same run, after the measured side and on accounts of its own at the same two
simulators: one process reading every page with the Groupon connector's client, then for each
order one create with the Mintsoft connector's client and one mark_exported of its lines, one
order at a time. It runs for a fixed window (or until its N orders are done); orders/s = orders
created and marked / seconds.

Both sides have the same pace per account: CommerceInterface at the connector's 120 requests a
minute, Mintsoft at `--mintsoft-pace` (the tenant's `requests_per_minute`). The connector's
Mintsoft default is 120; the bench's is 1,200, so that 2,000 orders take minutes rather than
half an hour and the services, not only the budget, are exercised.

Requests are the simulators' own counts per account (`/_sim/stats`), so nothing is hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from ordersync.dispatch.v1 import product_map_service_pb2 as map_pb
from ordersync.dispatch.v1 import product_map_service_pb2_grpc as map_grpc

from fulfillment_dispatch.domain.product_map import Component, ProductMapping, expand
from libs.connectors.base.contract import ParsedOrder
from libs.connectors.groupon.client import REQUESTS_PER_MINUTE as GROUPON_PACE
from libs.connectors.groupon.client import GrouponClient
from libs.connectors.groupon.orders import build_get_orders_params, build_orders, parse_page
from libs.connectors.groupon.settings import GrouponSettings
from libs.connectors.groupon.tracking import wire_id
from libs.connectors.mintsoft.client import MintsoftClient
from libs.connectors.mintsoft.orders import OrderDefaults, build_order, parse_create_response, submission_items
from libs.connectors.mintsoft.settings import MintsoftSettings
from libs.platform.testing import authorized
from tests.simulators.groupon import entry as groupon_entry
from tests.simulators.mintsoft import entry as mintsoft_entry
from tests.system.stack import REPO, Stack, TenantSpec

TENANT_ID = "bench-deals"
PREFIX = "GR-"
# The tenant's product map: an alternative code, and a bundle of a mug and three tea boxes.
PRODUCT_MAP = {
    "GRP-HOODIE-M": ProductMapping("GRP-HOODIE-M", (Component("HD-0042-M", 1, "Hoodie M"),)),
    "GRP-GIFT-SET": ProductMapping(
        "GRP-GIFT-SET", (Component("MUG-BLUE", 1, "Blue mug"), Component("TEA-EARLGREY", 3, "Earl Grey tea"))
    ),
}
# What the warehouse's catalog holds: the unmapped Groupon SKUs as they are, and the map's parts.
WAREHOUSE_SKUS = ["GRP-MUG", "GRP-SOCKS", "GRP-CANDLE", "HD-0042-M", "MUG-BLUE", "TEA-EARLGREY"]
# Production's settings for dispatch (the stack checks sent orders every 3 s for its tests): the
# first read-back of a sent order 15 minutes after it was sent, shipment polling every 5 minutes.
SERVICE_ENV = {"ORDERSYNC_STATUS_CHECK_S": "900", "ORDERSYNC_DISPATCH_SHIPMENT_POLL_S": "300"}
BASELINE_SUPPLIER = "990001"
BASELINE_USER = "ms-bench-baseline"
BASELINE_CLIENT_ID = 990001


def tenant(mintsoft_pace: int, callbacks: bool) -> TenantSpec:
    """The measured tenant; without `callbacks` its Mintsoft account names no callback URL (an
    empty `callback_base_url` is none), so despatch would be found by polling alone."""
    mintsoft: dict[str, Any] = {"products": WAREHOUSE_SKUS, "order_number_prefix": PREFIX}
    mintsoft["requests_per_minute"] = mintsoft_pace
    if not callbacks:
        mintsoft["callback_base_url"] = ""
    return TenantSpec.groupon_mintsoft(
        TENANT_ID,
        # A second between polls, so intake's wait is not what is measured.
        groupon={"mark_exported": True, "poll_interval_s": 1.0},
        mintsoft=mintsoft,
    )


def groupon_order(i: int, prefix: str) -> dict[str, Any]:
    """Order i as CommerceInterface lists it: three in four of one line, one in five of two,
    one in twenty of six; one line in ten is an alternative code, one in ten a bundle."""
    count = 6 if i % 20 == 0 else 2 if i % 5 == 1 else 1
    skus = ["GRP-MUG", "GRP-SOCKS", "GRP-CANDLE", "GRP-MUG", "GRP-SOCKS", "GRP-CANDLE"]
    if i % 10 == 3:
        skus[0] = "GRP-HOODIE-M"
    elif i % 10 == 7:
        skus[0] = "GRP-GIFT-SET"
    lines = [{"sku": skus[n], "name": f"Deal item {skus[n]}", "quantity": 1 + (i + n) % 2} for n in range(count)]
    customer = {
        "name": f"Sam Buyer{i}",
        "address1": f"{i} Main Street",
        "address2": "",
        "city": "Chicago",
        "state": "IL",
        "zip": "60601",
        "country": "US",
        "phone": "",
    }
    return {"orderid": f"{prefix}{i:07d}", "customer": customer, "line_items": lines}


def line_count(orders: int) -> int:
    return sum(len(groupon_order(i, "")["line_items"]) for i in range(orders))


async def seed(http: httpx.AsyncClient, base: str, supplier_id: str, orders: int, prefix: str) -> None:
    """All N orders in one control call: the simulator stores them without yielding, so no poll
    sees half of them."""
    body = {"orders": [groupon_order(i, prefix) for i in range(orders)]}
    response = await http.post(f"{base}/_sim/suppliers/{supplier_id}/orders", json=body, timeout=300)
    response.raise_for_status()


async def stats(http: httpx.AsyncClient, base: str) -> dict[str, Any]:
    response = await http.get(f"{base}/_sim/stats", timeout=60)
    response.raise_for_status()
    return response.json()


# ---- the measured side --------------------------------------------------------------------


@dataclass
class Measured:
    orders: int
    seeded_s: float = 0.0  # seeding took
    first_poll_s: float = 0.0  # after the seed: the first get_orders of the tenant
    last_create_s: float = 0.0  # after the first poll
    exported_s: float = 0.0  # after the first poll: every line marked exported
    groupon: dict[str, int] = field(default_factory=dict)  # route -> requests
    mintsoft: dict[str, int] = field(default_factory=dict)
    groupon_429s: int = 0
    mintsoft_429s: int = 0
    phases: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.orders / self.last_create_s if self.last_create_s else 0.0


async def put_product_map(stack: Stack) -> None:
    async with stack_channel(stack) as channel:
        stub = authorized(map_grpc.ProductMapServiceStub(channel), stack.token(stack.operator(TENANT_ID)))
        for mapping in PRODUCT_MAP.values():
            components = [
                map_pb.ProductComponent(sku=c.sku, quantity=c.quantity, name=c.name) for c in mapping.components
            ]
            message = map_pb.ProductMapping(channel_sku=mapping.channel_sku, components=components)
            await stub.PutProductMapping(map_pb.PutProductMappingRequest(tenant_id=TENANT_ID, mapping=message))


@contextlib.asynccontextmanager
async def stack_channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(stack.grpc_address("fulfillment_dispatch")) as channel:
        yield channel


async def dispatch_counts(conn) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT count(*) AS routed, count(*) FILTER (WHERE status = 'sent') AS sent,"
        " count(*) FILTER (WHERE status = 'failed') AS failed"
        " FROM fulfillment_dispatch.dispatches WHERE tenant_id = $1",
        TENANT_ID,
    )
    return row["routed"], row["sent"], row["failed"]


async def run_measured(stack: Stack, orders: int, timeout_s: float) -> Measured:
    http = stack.http
    gbase, mbase = stack.sim_urls["groupon"], stack.sim_urls["mintsoft"]
    [deals] = [a for a in stack.simulated_accounts("groupon") if a.tenant_id == TENANT_ID]
    [warehouse] = [a for a in stack.simulated_accounts("mintsoft") if a.tenant_id == TENANT_ID]
    supplier_id = groupon_entry.supplier(deals)["supplier_id"]
    username = mintsoft_entry.user(warehouse)["username"]
    lines = line_count(orders)
    result = Measured(orders)
    polls_before = (await stats(http, gbase)).get("supplier_requests", {}).get(supplier_id, {}).get("get_orders", 0)
    conn = await stack.connect_service_db()
    try:
        started = time.monotonic()
        await seed(http, gbase, supplier_id, orders, "G")
        seeded = time.monotonic()
        result.seeded_s = seeded - started
        print(f"bench-groupon: {orders} orders ({lines} lines) seeded at CommerceInterface in {result.seeded_s:.1f} s")
        first_poll = last_create = None
        last_print = time.monotonic()
        while True:
            now = time.monotonic()
            g, m = await stats(http, gbase), await stats(http, mbase)
            polls = g.get("supplier_requests", {}).get(supplier_id, {}).get("get_orders", 0)
            if first_poll is None and polls > polls_before:
                first_poll = now
            created = m["user_requests"].get(username, {}).get("create", 0)
            if last_create is None and m["orders_created"] >= orders:
                last_create = now
            if g["lines_exported"] >= lines:
                break
            if now - started > timeout_s:
                raise TimeoutError(
                    f"after {timeout_s:.0f} s only {m['orders_created']} of {orders} orders at Mintsoft and"
                    f" {g['lines_exported']} of {lines} lines exported"
                )
            if now - last_print >= 10:
                last_print = now
                routed, sent, failed = await dispatch_counts(conn)
                if failed:
                    raise RuntimeError(f"{failed} orders failed at dispatch; see the dispatch log")
                line = (
                    f"{now - started:5.0f} s: dispatch holds {routed}, sent {sent}; Mintsoft creates {created},"
                    f" orders {m['orders_created']}; lines exported {g['lines_exported']}/{lines};"
                    f" CommerceInterface requests {g['supplier_requests'].get(supplier_id, {})},"
                    f" Mintsoft {m['user_requests'].get(username, {})}"
                )
                result.phases.append(line)
                print(f"bench-groupon: {line}")
            await asyncio.sleep(0.1)
        exported = time.monotonic()
        assert first_poll is not None and last_create is not None
        result.first_poll_s = first_poll - seeded
        result.last_create_s = last_create - first_poll
        result.exported_s = exported - first_poll
        g, m = await stats(http, gbase), await stats(http, mbase)
        result.groupon = g["supplier_requests"].get(supplier_id, {})
        result.groupon_429s = g["supplier_rate_limited"].get(supplier_id, 0)
        result.mintsoft = m["user_requests"].get(username, {})
        result.mintsoft_429s = m["user_responses"].get(username, {}).get("429", 0)
        await check_one_each(http, mbase, mintsoft_entry.user(warehouse)["client_id"], orders)
    finally:
        await conn.close()
    return result


async def check_one_each(http: httpx.AsyncClient, base: str, client_id: int, orders: int) -> None:
    """Every order is at Mintsoft exactly once, with the product map applied."""
    listed = (await http.get(f"{base}/_sim/orders", params={"client_id": client_id}, timeout=120)).json()["orders"]
    numbers = [o["OrderNumber"] for o in listed]
    if len(numbers) != orders or len(set(numbers)) != orders:
        raise RuntimeError(f"Mintsoft holds {len(numbers)} orders ({len(set(numbers))} numbers) for {orders}")
    skus = [{item["SKU"] for item in o["OrderItems"]} for o in listed]
    expected = {"HD-0042-M": sum(1 for i in range(orders) if i % 10 == 3)}
    expected["TEA-EARLGREY"] = sum(1 for i in range(orders) if i % 10 == 7)
    found = {sku: sum(1 for held in skus if sku in held) for sku in expected}
    unmapped = sum(1 for held in skus if held & set(PRODUCT_MAP))
    if found != expected or unmapped:
        raise RuntimeError(f"Mintsoft orders by mapped SKU {found}, expected {expected}; {unmapped} kept a mapped SKU")


# ---- the baseline -------------------------------------------------------------------------


@dataclass
class Baseline:
    completed: int = 0
    elapsed_s: float = 0.0
    pages: int = 0
    groupon: dict[str, int] = field(default_factory=dict)
    mintsoft: dict[str, int] = field(default_factory=dict)
    groupon_429s: int = 0
    mintsoft_429s: int = 0

    @property
    def rate(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0


async def add_baseline_accounts(http: httpx.AsyncClient, gbase: str, mbase: str) -> tuple[str, str]:
    token, password = "baseline-" + os.urandom(8).hex(), "pw-" + os.urandom(8).hex()
    supplier = {"supplier_id": BASELINE_SUPPLIER, "token": token, "page_size": None}
    (await http.put(f"{gbase}/_sim/suppliers/{BASELINE_SUPPLIER}", json=supplier)).raise_for_status()
    user = {
        "username": BASELINE_USER,
        "password": password,
        "client_id": BASELINE_CLIENT_ID,
        "products": WAREHOUSE_SKUS,
    }
    (await http.put(f"{mbase}/_sim/users/{BASELINE_USER}", json=user)).raise_for_status()
    return token, password


def baseline_body(parsed: ParsedOrder) -> tuple[str, dict[str, Any]]:
    """The Mintsoft order the hub would send: the product map applied, the prefix, the key."""
    order = parsed.order
    number = PREFIX + order.external_id
    items = submission_items(order, expand(order.lines, PRODUCT_MAP))
    return number, build_order(
        order, order_number=number, reference=f"baseline-{order.external_id}", items=items, defaults=OrderDefaults()
    )


async def run_baseline(stack: Stack, orders: int, mintsoft_pace: int, window_s: float) -> Baseline:
    """Every page read with the Groupon client, then one create and one mark_exported per order,
    one order at a time, until the N orders are done or `window_s` has passed."""
    http = stack.http
    gbase, mbase = stack.sim_urls["groupon"], stack.sim_urls["mintsoft"]
    token, password = await add_baseline_accounts(http, gbase, mbase)
    await seed(http, gbase, BASELINE_SUPPLIER, orders, "B")
    groupon = GrouponSettings(BASELINE_SUPPLIER, token, base_url=groupon_entry.SIMULATOR.base_url(gbase))
    mintsoft = MintsoftSettings(
        BASELINE_USER,
        password,
        base_url=mintsoft_entry.SIMULATOR.base_url(mbase),
        requests_per_minute=mintsoft_pace,
        max_concurrency=1,
    )
    result = Baseline()
    async with GrouponClient(groupon) as channel, MintsoftClient(mintsoft) as warehouse:
        started = time.monotonic()
        deadline = started + window_s
        first = parse_page(await channel.get_orders(build_get_orders_params(1)))
        entries = list(first.entries)
        for page_no in range(2, first.meta.no_of_pages + 1):
            entries.extend(parse_page(await channel.get_orders(build_get_orders_params(page_no))).entries)
        result.pages = first.meta.no_of_pages
        parsed = [
            p for p in build_orders(entries, tenant_id="bench-baseline", currency="USD") if isinstance(p, ParsedOrder)
        ]
        if len(parsed) != orders:
            raise RuntimeError(f"the baseline read {len(parsed)} orders of {orders}")
        for order in parsed:
            if time.monotonic() >= deadline:
                break
            number, body = baseline_body(order)
            _, answer = await warehouse.create_order(body)
            outcome = parse_create_response(answer, number)
            if not outcome.success:
                raise RuntimeError(f"baseline order {number} refused: {outcome.message}")
            await channel.mark_exported([wire_id(i) for i in json.loads(order.ack_token)])
            result.completed += 1
        result.elapsed_s = time.monotonic() - started
    g, m = await stats(http, gbase), await stats(http, mbase)
    result.groupon = g["supplier_requests"].get(BASELINE_SUPPLIER, {})
    result.groupon_429s = g["supplier_rate_limited"].get(BASELINE_SUPPLIER, 0)
    result.mintsoft = m["user_requests"].get(BASELINE_USER, {})
    result.mintsoft_429s = m["user_responses"].get(BASELINE_USER, {}).get("429", 0)
    return result


# ---- the run ------------------------------------------------------------------------------


def cpu_seconds(stack: Stack) -> str:
    """CPU time each service has used so far (Linux /proc), to tell where the run's time went."""
    tick = os.sysconf("SC_CLK_TCK")
    used = []
    processes = {name: s.process for name, s in stack.services.items()}
    processes |= {f"{name} simulator": p for name, p in stack._sims.items()}
    for name, process in processes.items():
        if process is None:
            continue
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
            used.append(f"{name} {(int(fields[11]) + int(fields[12])) / tick:.0f} s")
    return ", ".join(used)


def load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def per_order(requests: dict[str, int], orders: int) -> str:
    return f"{sum(requests.values()) / max(1, orders):.2f}"


async def main(orders: int, mintsoft_pace: int, window_s: float, timeout_s: float, callbacks: bool) -> int:
    run_dir = REPO / ".run" / "bench-groupon"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = tenant(mintsoft_pace, callbacks)
    async with Stack([spec], run_dir=run_dir, service_env=SERVICE_ENV) as stack:
        print(
            f"bench-groupon: {orders} Groupon orders through the services to Mintsoft (CommerceInterface at"
            f" {GROUPON_PACE}/min, Mintsoft at {mintsoft_pace}/min per account); then a bare client for up to"
            f" {window_s:.0f} s on accounts of its own; Mintsoft callbacks {'on' if callbacks else 'off'};"
            f" services up; load {load()}"
        )
        await put_product_map(stack)
        measured = await run_measured(stack, orders, timeout_s)
        print(f"bench-groupon: CPU used: {cpu_seconds(stack)}; load {load()}")
        baseline = await run_baseline(stack, orders, mintsoft_pace, window_s)
    print_figures(orders, mintsoft_pace, measured, baseline)
    return 0


def print_figures(orders: int, pace: int, measured: Measured, baseline: Baseline) -> None:
    g, m = measured.groupon, measured.mintsoft
    print(
        f"bench-groupon: measured: first poll {measured.first_poll_s:.1f} s after the seed; {orders} orders at"
        f" Mintsoft {measured.last_create_s:.1f} s after it, every line exported after {measured.exported_s:.1f} s"
    )
    print(
        f"bench-groupon: measured: CommerceInterface {sum(g.values())} requests {g} ({per_order(g, orders)}/order),"
        f" 429s {measured.groupon_429s}; Mintsoft {sum(m.values())} requests {m} ({per_order(m, orders)}/order),"
        f" 429s {measured.mintsoft_429s}"
    )
    # What Mintsoft's pace alone allows for these requests: the rate if the services kept up.
    ceiling = orders * pace / 60 / max(1, sum(m.values()))
    print(f"bench-groupon: measured: at {pace} Mintsoft requests/min these requests allow {ceiling:.1f} orders/s")
    bg, bm = baseline.groupon, baseline.mintsoft
    done = max(1, baseline.completed)
    print(
        f"bench-groupon: baseline (every page, then create + mark_exported per order): {baseline.completed} orders in"
        f" {baseline.elapsed_s:.1f} s; CommerceInterface {sum(bg.values())} requests {bg}"
        f" ({sum(bg.values()) / done:.2f}/order), Mintsoft {sum(bm.values())} requests {bm}"
        f" ({sum(bm.values()) / done:.2f}/order); 429s {baseline.groupon_429s + baseline.mintsoft_429s}"
    )
    ratio = measured.rate / baseline.rate if baseline.rate else float("inf")
    total = (sum(g.values()) + sum(m.values())) / orders
    print(
        f"bench-groupon: {measured.rate:.1f} orders/s (baseline {baseline.rate:.1f} orders/s, ratio {ratio:.2f});"
        f" {total:.2f} requests/order (CommerceInterface {per_order(g, orders)}, Mintsoft {per_order(m, orders)});"
        f" exported {measured.exported_s - measured.last_create_s:.1f} s after the last create;"
        f" 429s {measured.groupon_429s + measured.mintsoft_429s + baseline.groupon_429s + baseline.mintsoft_429s}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument(
        "--mintsoft-pace",
        type=int,
        default=1200,
        help="Mintsoft requests a minute per account (the connector defaults to 120)",
    )
    parser.add_argument("--baseline-window", type=float, default=120.0, help="seconds the bare client runs at most")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before the measured side gives up")
    parser.add_argument(
        "--no-callbacks",
        action="store_true",
        help="register no Mintsoft Connect Actions (despatch found by polling): one request an order less",
    )
    arguments = parser.parse_args()
    sys.exit(
        asyncio.run(
            main(
                arguments.orders,
                arguments.mintsoft_pace,
                arguments.baseline_window,
                arguments.timeout,
                not arguments.no_callbacks,
            )
        )
    )
