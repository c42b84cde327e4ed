"""Benchmark: N Cin7 Omni orders created at ShipStation and their shipments read back, under the
simulator's real 40 requests a minute, beside a one-order-per-call client on a key pair of its own.

Measured side: the five services as processes on real Kafka and PostgreSQL (as `make bench` runs
them) and one Cin7 Omni to ShipStation tenant. N orders passing every import rule are seeded at
the Cin7 simulator through its control API (in bulk, outside the rate-limited API); intake pulls
them, routing routes them, dispatch creates them at the ShipStation simulator with createorders
(up to 100 a call). The bench plays the warehouse: as orders arrive at ShipStation it buys their
labels there in batches (the simulator's control API), and each batch sends one SHIP_NOTIFY that
dispatch re-reads (one `GET /shipments?batchId=`, up to 500 labels a page). Done when every
order is shipped in dispatch's records. orders/min = N / minutes from the first seeded order.

Baseline, in the same run and the same simulator: a client that does what a connector without
bulk calls must do, one `POST /orders/createorder` and one `GET /shipments?orderNumber=` per order
(the label bought in between through the control API), through the ShipStation connector's own
client and its 40-a-minute pacing, for a fixed window. orders/min = orders completed in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from libs.connectors.cin7.orders import parse_order
from libs.connectors.cin7.rules import RuleContext
from libs.connectors.shipstation.client import ShipStationClient
from libs.connectors.shipstation.orders import build_order
from libs.connectors.shipstation.settings import ShipStationSettings
from tests.simulators.registry import SimulatorRegistry, default_simulators
from tests.simulators.shipstation import ShipStationConfig
from tests.system.stack import LABELS, OMNI, REPO, Stack, TenantSpec

LIMIT_PER_MINUTE = 40  # the simulator's default, ShipStation's real limit per key pair
TENANT = TenantSpec.cin7_shipstation(
    "bench-omni",
    # The largest page Cin7 serves, polled every second: intake is not what is measured.
    cin7={"page_size": 250, "poll_interval_s": 1.0},
)
CIN7 = TENANT.account(OMNI)
SHIPSTATION_ACCOUNT = f"{TENANT.tenant_id}.{LABELS}"  # the simulator's name for the account
BASELINE_ACCOUNT = "bench-baseline.one-per-call"
# Dispatch reads each sent order back on a schedule as the fallback for lost notices; on a
# 40-a-minute key that is one request per order, the very cost measured against. No notice is
# lost here (a delivery the simulator gave up waiting for is still applied), so the first
# read-back is put past the run.
SERVICE_ENV = {"ORDERSYNC_STATUS_CHECK_S": "3600"}


def simulators(webhook_timeout_s: float) -> SimulatorRegistry:
    """The usual simulators, the ShipStation one waiting `webhook_timeout_s` for each SHIP_NOTIFY
    delivery (the simulator's own 5 s by default): dispatch answers a batch notice once it has
    applied every order of it, and every redelivery of a timed-out notice is one more re-read on
    the key's budget."""
    registry = default_simulators()
    shipstation = registry.get("shipstation")

    def build_config(accounts):
        return shipstation.build_config(accounts) | {"webhook_timeout_s": webhook_timeout_s}

    return SimulatorRegistry(
        [replace(shipstation, build_config=build_config) if e is shipstation else e for e in registry]
    )


def cin7_order(i: int) -> dict[str, Any]:
    """Order i as a Cin7 user enters it: approved, Fully Picked, a delivery country, created now
    (the simulator stamps the dates), two lines with a quantity to dispatch."""
    return {
        "reference": f"SO-B{i:06d}",
        "stage": "Fully Picked",
        "status": "Approved",
        "isApproved": True,
        "firstName": "Ava",
        "lastName": f"Buyer{i}",
        "email": f"ava{i}@example.com",
        "phone": "",
        "mobile": "+1 415 555 0142",
        "deliveryFirstName": "Ava",
        "deliveryLastName": f"Buyer{i}",
        "deliveryAddress1": f"{i} Embarcadero",
        "deliveryCity": "San Francisco",
        "deliveryState": "CA",
        "deliveryPostalCode": "94111",
        "deliveryCountry": "US",
        "billingFirstName": "Ava",
        "billingLastName": f"Buyer{i}",
        "billingAddress1": f"{i} Embarcadero",
        "billingCity": "San Francisco",
        "billingState": "CA",
        "billingPostalCode": "94111",
        "billingCountry": "US",
        "freightTotal": 12.5,
        "freightDescription": "UPS Ground",
        "currencyCode": "USD",
        "total": 222.5,
        "lineItems": [
            {"code": "CAB-750", "name": "Estate Cabernet 750ml", "qty": 4, "unitPrice": 35.0},
            {"code": "CHARD-750", "name": "Reserve Chardonnay 750ml", "qty": 3, "unitPrice": 22.5},
        ],
    }


# ---- the measured side --------------------------------------------------------------------


@dataclass
class Progress:
    """What the measured side has reached, from dispatch's records and the simulators."""

    routed: int = 0  # orders dispatch holds
    sent: int = 0  # taken by ShipStation
    failed: int = 0
    shipped: int = 0  # shipped in dispatch's records
    labelled: int = 0  # labels bought by the bench (the warehouse)
    batches: int = 0


async def seed_cin7(stack: Stack, orders: int, chunk: int = 1000) -> None:
    """Put N orders at the Cin7 simulator through its control API, `chunk` a call."""
    url = f"{stack.sim_urls['cin7']}/_sim/accounts/{CIN7['username']}/orders"
    for first in range(0, orders, chunk):
        body = {"orders": [cin7_order(i) for i in range(first, min(orders, first + chunk))]}
        response = await stack.http.post(url, json=body, timeout=120)
        response.raise_for_status()


async def read_progress(conn, progress: Progress) -> None:
    row = await conn.fetchrow(
        "SELECT count(*) AS routed,"
        " count(*) FILTER (WHERE status = 'sent') AS sent,"
        " count(*) FILTER (WHERE status = 'failed') AS failed,"
        " count(*) FILTER (WHERE shipment_status = 'shipped') AS shipped"
        " FROM fulfillment_dispatch.dispatches WHERE tenant_id = $1",
        TENANT.tenant_id,
    )
    progress.routed, progress.sent, progress.failed, progress.shipped = (
        row["routed"],
        row["sent"],
        row["failed"],
        row["shipped"],
    )


async def buy_labels(stack: Stack, progress: Progress, orders: int, batch: int) -> None:
    """The warehouse: a batch of labels once `batch` orders wait at ShipStation, or once every
    order is there; the simulator sends one SHIP_NOTIFY per batch."""
    waiting = progress.sent - progress.labelled
    if waiting <= 0 or (waiting < batch and progress.sent < orders):
        return
    url = f"{stack.sim_urls['shipstation']}/_sim/accounts/{SHIPSTATION_ACCOUNT}/shipments/batch"
    answer = await stack.http.post(url, json={"limit": batch}, timeout=60)
    answer.raise_for_status()
    bought = len(answer.json()["order_numbers"])
    if bought:
        progress.labelled += bought
        progress.batches += 1


async def shipstation_stats(stack: Stack) -> dict[str, Any]:
    return (await stack.http.get(f"{stack.sim_urls['shipstation']}/_sim/stats")).json()


def account_counts(stats: dict[str, Any], account: str) -> tuple[dict[str, int], int]:
    """(requests served by route, 429s sent) for one simulator account, from its stats."""
    return stats["account_requests"].get(account, {}), stats["account_rate_limited"].get(account, 0)


async def shipstation_counts(stack: Stack, account: str) -> tuple[int, int]:
    """(requests served, 429s sent) for one simulator account."""
    routes, limited = account_counts(await shipstation_stats(stack), account)
    return sum(routes.values()), limited


async def notice_deliveries(stack: Stack) -> str:
    """What became of the SHIP_NOTIFY deliveries to dispatch: attempts, failures, slowest answer."""
    listed = (await stack.http.get(f"{stack.sim_urls['shipstation']}/_sim/webhook-deliveries", timeout=60)).json()
    deliveries = [d for d in listed["deliveries"] if f"/{TENANT.tenant_id}/" in d["url"]]
    attempts = [a for d in deliveries for a in d["attempts"]]
    failed = sum(1 for a in attempts if a["status_code"] is None or a["status_code"] >= 300)
    # A delivery's first answer came this long after the notice was queued (includes the wait for
    # a free delivery worker): about how long dispatch took to re-read and apply the batch.
    first = [d["attempts"][0]["at"] - d["enqueued_at"] for d in deliveries if d["attempts"]]
    return (
        f"{len(deliveries)} SHIP_NOTIFY notices, {len(attempts)} deliveries ({failed} timed out or refused),"
        f" first answer after {min(first, default=0):.1f} to {max(first, default=0):.1f} s"
    )


async def run_measured(
    stack: Stack, orders: int, label_batch: int, timeout_s: float, beside: asyncio.Task
) -> tuple[float, Progress]:
    """Seed, then wait until dispatch holds every order as shipped; return (elapsed s, progress).

    `beside` is the baseline running meanwhile: if it fails, so does the run, at once.
    """
    progress = Progress()
    conn = await stack.connect_service_db()
    try:
        started = time.monotonic()
        await seed_cin7(stack, orders)
        print(f"bench-shipstation: {orders} orders seeded at Cin7 in {time.monotonic() - started:.1f} s")
        last_print = 0.0
        while True:
            await read_progress(conn, progress)
            await buy_labels(stack, progress, orders, label_batch)
            elapsed = time.monotonic() - started
            if progress.shipped >= orders:
                break
            if beside.done() and not beside.cancelled() and beside.exception() is not None:
                raise RuntimeError("the one-per-call baseline failed") from beside.exception()
            if progress.failed:
                raise RuntimeError(f"{progress.failed} orders failed at dispatch; see the dispatch log")
            if elapsed > timeout_s:
                raise TimeoutError(f"only {progress.shipped} of {orders} orders shipped after {timeout_s:.0f} s")
            if elapsed - last_print >= 10:
                last_print = elapsed
                requests, limited = await shipstation_counts(stack, SHIPSTATION_ACCOUNT)
                print(
                    f"bench-shipstation: {elapsed:5.0f} s: routed {progress.routed}, at ShipStation {progress.sent},"
                    f" labels {progress.labelled} in {progress.batches} batches, shipped {progress.shipped};"
                    f" ShipStation requests {requests}, 429s {limited}"
                )
            await asyncio.sleep(0.5)
        return time.monotonic() - started, progress
    finally:
        await conn.close()


# ---- the baseline -------------------------------------------------------------------------


@dataclass
class Baseline:
    """The one-order-per-call client's run."""

    completed: int = 0
    window_s: float = 0.0

    @property
    def per_minute(self) -> float:
        return self.completed * 60 / self.window_s if self.window_s else 0.0


def baseline_body(i: int) -> tuple[str, dict[str, Any]]:
    """Order i of the baseline: the bench's Cin7 order, made canonical by the Cin7 connector and
    a ShipStation order by the ShipStation connector, as the measured side does."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    row = cin7_order(i) | {"id": 900000 + i, "createdDate": stamp, "modifiedDate": stamp, "reference": f"BASE-{i}"}
    row["lineItems"] = [line | {"id": 9000000 + 10 * i + n, "qtyShipped": 0} for n, line in enumerate(row["lineItems"])]
    parsed = parse_order(row, tenant_id="bench-baseline", context=RuleContext("Fully Picked", now))
    number = f"BASE-{i}"
    return number, build_order(parsed.order, order_number=number, order_key=f"baseline-{i}")


async def add_baseline_account(stack: Stack, key: str, secret: str) -> None:
    body = {"account_id": BASELINE_ACCOUNT, "api_key": key, "api_secret": secret}
    url = f"{stack.sim_urls['shipstation']}/_sim/accounts/{BASELINE_ACCOUNT}"
    (await stack.http.put(url, json=body)).raise_for_status()


async def run_baseline(stack: Stack, window_s: float) -> Baseline:
    """One create and one shipments lookup per order, paced by the connector's client, for
    `window_s`; an order counts when its shipment was read back inside the window."""
    key, secret = "ss-" + secrets.token_hex(8), secrets.token_urlsafe(24)
    await add_baseline_account(stack, key, secret)
    settings = ShipStationSettings(
        key, secret, base_url=stack.sim_urls["shipstation"], requests_per_minute=LIMIT_PER_MINUTE, max_concurrency=1
    )
    result = Baseline()
    ship_url = f"{stack.sim_urls['shipstation']}/_sim/accounts/{BASELINE_ACCOUNT}/orders"
    async with ShipStationClient(settings) as client, httpx.AsyncClient(timeout=30) as control:
        started = time.monotonic()
        deadline = started + window_s

        async def one_order(i: int) -> None:
            number, body = baseline_body(i)
            await client.create_order(body)
            # The shipper buys the label (outside the API budget), then the connector looks it up.
            (await control.post(f"{ship_url}/{number}/ship", json={})).raise_for_status()
            labels = await client.list_shipments(number)
            if not any(not label.get("voided") for label in labels):
                raise RuntimeError(f"baseline order {number}: no live label read back")

        i = 0
        with contextlib.suppress(TimeoutError):
            while time.monotonic() < deadline:
                await asyncio.wait_for(one_order(i), max(0.01, deadline - time.monotonic()))
                result.completed += 1
                i += 1
        result.window_s = time.monotonic() - started
    return result


# ---- the run ------------------------------------------------------------------------------


def cpu_seconds(stack: Stack) -> str:
    """CPU time each service has used so far (Linux /proc), to tell where the run's time went."""
    tick = os.sysconf("SC_CLK_TCK")
    used = []
    for name, service in stack.services.items():
        if service.process is None:
            continue
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{service.process.pid}/stat").read_text().rpartition(")")[2].split()
            used.append(f"{name} {(int(fields[11]) + int(fields[12])) / tick:.0f} s")
    return ", ".join(used)


async def main(orders: int, label_batch: int, window_s: float, timeout_s: float, webhook_timeout_s: float) -> int:
    run_dir = REPO / ".run" / "bench-shipstation"
    run_dir.mkdir(parents=True, exist_ok=True)
    async with Stack(
        [TENANT], run_dir=run_dir, service_env=SERVICE_ENV, simulators=simulators(webhook_timeout_s)
    ) as stack:
        print(
            f"bench-shipstation: {orders} Cin7 orders through the services, labels in batches of {label_batch}"
            f" (SHIP_NOTIFY delivery timeout {webhook_timeout_s:.0f} s); beside them one-per-call for"
            f" {window_s:.0f} s on its own key pair; services up"
        )
        baseline_task = asyncio.create_task(run_baseline(stack, window_s))
        try:
            elapsed, progress = await run_measured(stack, orders, label_batch, timeout_s, baseline_task)
            stats = await shipstation_stats(stack)
            print(f"bench-shipstation: CPU used: {cpu_seconds(stack)}")
            print_measured(orders, elapsed, progress, stats, await notice_deliveries(stack))
            baseline = await baseline_task
        finally:
            baseline_task.cancel()
            await asyncio.gather(baseline_task, return_exceptions=True)
        base_routes, base_limited = account_counts(await shipstation_stats(stack), BASELINE_ACCOUNT)
    print(
        f"bench-shipstation: one-per-call (POST /orders/createorder + GET /shipments?orderNumber= per order):"
        f" {baseline.completed} orders in {baseline.window_s:.0f} s; requests {sum(base_routes.values())}"
        f" {base_routes}, 429s {base_limited}"
    )
    rate = orders * 60 / elapsed
    ratio = rate / baseline.per_minute if baseline.per_minute else float("inf")
    limited = account_counts(stats, SHIPSTATION_ACCOUNT)[1]
    print(
        f"bench-shipstation: {rate:.0f} orders/min under {LIMIT_PER_MINUTE} req/min"
        f" (one-per-call {baseline.per_minute:.1f} orders/min, ratio {ratio:.0f}); 429s {limited + base_limited}"
    )
    return 0


def print_measured(orders: int, elapsed: float, progress: Progress, stats: dict[str, Any], deliveries: str) -> None:
    routes, limited = account_counts(stats, SHIPSTATION_ACCOUNT)
    requests = sum(routes.values())
    print(
        f"bench-shipstation: measured: {orders} orders shipped in dispatch's records in {elapsed:.1f} s;"
        f" ShipStation requests {requests} ({orders / max(1, requests):.0f} orders a request) {routes}"
        f" for {progress.batches} label batches; 429s {limited}"
    )
    print(f"bench-shipstation: measured: {deliveries}")
    # What the key's budget alone allows for these requests: the rate if the services kept up.
    ceiling = orders * LIMIT_PER_MINUTE / max(1, requests)
    print(
        f"bench-shipstation: measured: {requests} requests at {LIMIT_PER_MINUTE}/min take"
        f" {requests * 60 / LIMIT_PER_MINUTE:.0f} s: the budget's ceiling is {ceiling:.0f} orders/min"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--label-batch", type=int, default=250, help="labels a batch (one SHIP_NOTIFY each)")
    parser.add_argument("--baseline-window", type=float, default=90.0, help="seconds the one-per-call client runs")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before the measured side gives up")
    parser.add_argument(
        "--webhook-timeout",
        type=float,
        default=ShipStationConfig.webhook_timeout_s,
        help="seconds the simulator waits for a SHIP_NOTIFY answer (its own default)",
    )
    arguments = parser.parse_args()
    sys.exit(
        asyncio.run(
            main(
                arguments.orders,
                arguments.label_batch,
                arguments.baseline_window,
                arguments.timeout,
                arguments.webhook_timeout,
            )
        )
    )
