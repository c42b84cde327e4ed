"""A pulled sales channel for intake's tests: a small real HTTP vendor and its connector.

The vendor (`Vendor`, aiohttp on a free port) serves its orders page by page after a cursor (the
index of the next record) and takes acknowledgements and sync results; it records every fetch (who, when, how many
at once) and every acknowledgement, and fails on request. The connector (`PullConnector`, id
"pullfake", PULL_ORDERS + ACKNOWLEDGE) fetches those pages over HTTP with the platform's
HttpTransport, as a real connector would. Each replica under test gets its own connector
instance, named, so the vendor knows which replica asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from google.protobuf import timestamp_pb2
from ordersync.common.v1 import money_pb2, order_pb2

from libs.connectors.base.contract import (
    Capability,
    ChannelConnector,
    ClientResources,
    ConnectorInfo,
    Ignored,
    OrderPage,
    ParsedOrder,
    Role,
    SecretResolver,
)
from libs.connectors.base.http import ConnectorClient, HttpTransport, RetryPolicy
from libs.connectors.base.issues import Issue
from libs.connectors.base.settings import SectionReader

CONNECTOR_ID = "pullfake"


@dataclass
class Fetch:
    replica: str
    after: int
    at: float  # time.time() when the vendor answered


@dataclass
class Vendor:
    """The channel's side: its records, the pages it served and the acknowledgements it took."""

    records: list[dict] = field(default_factory=list)
    page_size: int = 3
    answer_delay_s: float = 0.02  # each fetch takes a moment, so overlapping pollers would show
    fail_fetches: int = 0  # the next N fetches answer 503
    fail_acks: int = 0  # the next N acknowledgements answer 503
    fetches: list[Fetch] = field(default_factory=list)  # pages served
    attempts: list[float] = field(default_factory=list)  # every fetch, failed or not: when it came
    acks: list[tuple[str, list[str], float]] = field(default_factory=list)  # (replica, tokens, time)
    refused_acks: list[list[str]] = field(default_factory=list)
    on_ack: Callable[[list[str]], Awaitable[None]] | None = None  # runs as each acknowledgement arrives
    # Sync results as the channel keeps them: token -> its latest result; every call received.
    results: dict[str, dict] = field(default_factory=dict)
    result_calls: list[list[dict]] = field(default_factory=list)
    fail_results: int = 0  # the next N sync-result calls answer 503
    lose_result_answers: int = 0  # the next N sync-result calls are taken, then answered 503
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""
    # Orders placed this long after the first fetch (id -> seconds): young at the first poll
    # however long the services took to start, old enough a known moment later.
    placed_after_first_fetch_s: dict[str, float] = field(default_factory=dict)

    def add_orders(self, count: int, *, placed_at: float | None = None, start: int = 1) -> list[str]:
        ids = [f"o-{n}" for n in range(start, start + count)]
        for external_id in ids:
            self.records.append({"id": external_id, "updated": "2026-11-30T10:00:00Z", "placed": placed_at})
        return ids

    def _place_young_orders(self) -> None:
        if self.fetches or not self.placed_after_first_fetch_s:
            return
        now = time.time()
        for record in self.records:
            if record["id"] in self.placed_after_first_fetch_s:
                record["placed"] = now + self.placed_after_first_fetch_s[record["id"]]

    def acked_tokens(self) -> list[str]:
        return [token for _, tokens, _ in self.acks for token in tokens]

    async def _orders(self, request: web.Request) -> web.Response:
        replica = request.headers.get("X-Replica", "")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.answer_delay_s)
            self.attempts.append(time.time())
            if self.fail_fetches > 0:
                self.fail_fetches -= 1
                return web.json_response({"error": "maintenance"}, status=503)
            self._place_young_orders()
            after = int(request.query.get("after") or 0)
            page = self.records[after : after + self.page_size]
            self.fetches.append(Fetch(replica, after, time.time()))
            nxt = after + len(page)
            return web.json_response({"records": page, "next": str(nxt), "more": nxt < len(self.records)})
        finally:
            self.in_flight -= 1

    async def _ack(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.on_ack is not None:
            await self.on_ack(list(body["tokens"]))
        if self.fail_acks > 0:
            self.fail_acks -= 1
            self.refused_acks.append(list(body["tokens"]))
            return web.json_response({"error": "maintenance"}, status=503)
        self.acks.append((request.headers.get("X-Replica", ""), list(body["tokens"]), time.time()))
        return web.json_response({"ok": True})

    async def _sync_results(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail_results > 0:
            self.fail_results -= 1
            return web.json_response({"error": "maintenance"}, status=503)
        self.result_calls.append(list(body["results"]))
        for result in body["results"]:  # keyed by the order's token: a repeat changes nothing
            self.results[result["token"]] = result
        if self.lose_result_answers > 0:
            self.lose_result_answers -= 1
            return web.json_response({"error": "answer lost"}, status=503)
        return web.json_response({"ok": True})


@asynccontextmanager
async def running(vendor: Vendor) -> AsyncIterator[Vendor]:
    app = web.Application()
    app.router.add_get("/orders", vendor._orders)
    app.router.add_post("/ack", vendor._ack)
    app.router.add_post("/sync-results", vendor._sync_results)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    vendor.url = f"http://127.0.0.1:{server.port}"
    try:
        yield vendor
    finally:
        await server.close()


@dataclass(frozen=True)
class PullAccount:
    base_url: str


class PullClient(ConnectorClient):
    def __init__(self, settings: PullAccount, replica: str):
        # One attempt: the scheduler's backoff is what these tests watch.
        self._http = HttpTransport(
            connector=CONNECTOR_ID,
            base_url=settings.base_url,
            headers={"X-Replica": replica},
            retry=RetryPolicy(max_attempts=1),
        )

    async def get_page(self, after: str) -> dict:
        response = await self._http.request("GET", "/orders", params={"after": after}, operation="get orders")
        return response.json()

    async def acknowledge(self, tokens: list[str]) -> None:
        await self._http.request("POST", "/ack", json={"tokens": tokens}, operation="ack", retry_unsafe=True)

    async def sync_results(self, results: list[dict]) -> None:
        await self._http.request(
            "POST", "/sync-results", json={"results": results}, operation="sync results", retry_unsafe=True
        )


class PullConnector(ChannelConnector):
    """The fake channel's connector, as one replica's registry holds it.

    `hang_after_fetch`: when set, the next fetch that returns a page sets `fetched` and then
    never returns, like a replica that died between fetching and committing.
    """

    info = ConnectorInfo(
        id=CONNECTOR_ID,
        label="Pull Fake",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset({Capability.PULL_ORDERS, Capability.ACKNOWLEDGE}),
    )

    def __init__(self, replica: str):
        self.replica = replica
        self.hang_after_fetch = False
        self.fetched = asyncio.Event()
        self.acknowledged: list[list[str]] = []  # the external ids of each acknowledge call

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> PullAccount:
        read = SectionReader(section, resolve, where)
        account = PullAccount(read.text("base_url"))
        read.finish()
        return account

    def open_client(self, settings: PullAccount, resources: ClientResources) -> PullClient:
        return PullClient(settings, self.replica)

    async def fetch_page(self, client: PullClient, settings: PullAccount, cursor: str, tenant_id: str) -> OrderPage:
        body = await client.get_page(cursor)
        page = OrderPage([_parse(record, tenant_id) for record in body["records"]], body["next"], body["more"])
        if self.hang_after_fetch:
            self.fetched.set()
            await asyncio.Event().wait()
        return page

    async def acknowledge(self, client: PullClient, settings: PullAccount, orders: Sequence[ParsedOrder]) -> None:
        await client.acknowledge([parsed.ack_token for parsed in orders])
        self.acknowledged.append([parsed.order.external_id for parsed in orders])


def _parse(record: dict, tenant_id: str) -> ParsedOrder | Ignored:
    if record.get("kind") == "note":
        return Ignored("a note, not an order")
    order = order_pb2.Order(
        tenant_id=tenant_id,
        channel=CONNECTOR_ID,
        external_id=record["id"],
        external_number=record["id"].upper(),
        revision=record["updated"],
    )
    if record.get("placed") is not None:
        order.placed_time.CopyFrom(timestamp_pb2.Timestamp(seconds=int(record["placed"])))
    order.lines.add(sku="WINE-1", quantity=record.get("quantity", 1))
    # Optional fields a test changes between revisions: the total (minor units) and the status.
    if "total" in record:
        order.totals.total.CopyFrom(money_pb2.Money(currency_code="USD", minor_units=record["total"]))
    order.channel_status = record.get("status", "")
    parsed = ParsedOrder(order, ack_token=f"ack-{record['id']}")
    if record.get("rule"):
        parsed.rule_failures.append(Issue("status", f"the order is {record['rule']}", code="NOT_PAID"))
    if record.get("bad"):
        parsed.issues.append(Issue("lines", "a line has no SKU"))
    return parsed
