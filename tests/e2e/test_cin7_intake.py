"""Cin7 Omni orders into intake on real Kafka and Postgres: the import rules and the failed-import mail.

One stack (five service processes, the Cin7 and ShipStation simulators, the SMTP mail sink)
serves a Cin7 Omni -> ShipStation tenant whose account names a failed-import mail recipient,
and one whose account names none. Orders are entered in the Cin7 simulator as a Cin7 user
would; intake polls them. An order meeting every rule is accepted and routed to ShipStation
(what ShipStation does with it is another test's); one failing each rule is not imported with
that rule's code; a fixed order is taken; each not imported order is mailed about once.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.platform.testing import authorized
from tests.system.journey import Journey, JourneyReader
from tests.system.stack import OMNI, READER, REPO, Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

OPS = "orders-desk@harbour.example"
T = TypeVar("T")


def order(**changes: Any) -> dict[str, Any]:
    """A Fully Picked order meeting every rule, as a Cin7 user enters it; `changes` break one."""
    fields: dict[str, Any] = {
        "stage": "Fully Picked",
        "status": "Approved",
        "isApproved": True,
        "firstName": "Mere",
        "lastName": "Tane",
        "email": "mere@bistro.example",
        "phone": "",
        "mobile": "+1 415 555 0142",
        "deliveryFirstName": "Mere",
        "deliveryLastName": "Tane",
        "deliveryAddress1": "200 Embarcadero",
        "deliveryCity": "San Francisco",
        "deliveryState": "CA",
        "deliveryPostalCode": "94111",
        "deliveryCountry": "US",
        "freightDescription": "UPS Ground",
        "freightTotal": 12.5,
        "total": 222.5,
        "lineItems": [
            {"code": "CAB-750", "name": "Estate Cabernet", "qty": 6, "unitPrice": 35.0, "option1": "Red"},
            {"code": "", "name": "Gift note", "qty": 0, "unitPrice": 0},
        ],
    }
    return fields | changes


LONG_AGO = (datetime.now(UTC) - timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
# Each rule broken alone, with the code intake must show.
FAILING = {
    "NOT_APPROVED": order(status="Draft", isApproved=False),
    "NOT_FULLY_PICKED": order(stage="New"),
    "NO_DELIVERY_COUNTRY": order(deliveryCountry=""),
    "TOO_OLD": order(createdDate=LONG_AGO, estimatedDeliveryDate=None),
    "NOTHING_TO_DISPATCH": order(lineItems=[{"code": "CAB-750", "name": "Estate Cabernet", "qty": 6, "qtyShipped": 6}]),
}


class Cin7Desk:
    """A tenant's Cin7 connection as a user works it, and what ordersync shows of its orders."""

    def __init__(self, stack: Stack, reader: JourneyReader, intake: grpc.aio.Channel, spec: TenantSpec):
        self.stack, self.reader, self.tenant_id = stack, reader, spec.tenant_id
        self.intake = authorized(pb_grpc.OrderIntakeServiceStub(intake), stack.token(READER))
        self.username = spec.account(OMNI)["username"]
        self.base = f"{stack.sim_urls['cin7']}/_sim/accounts/{self.username}/orders"

    async def enter(self, fields: dict[str, Any]) -> dict[str, Any]:
        response = await self.stack.http.post(self.base, json={"orders": [fields]})
        response.raise_for_status()
        return response.json()["orders"][0]

    async def change(self, order_id: int, **fields: Any) -> dict[str, Any]:
        response = await self.stack.http.post(f"{self.base}/{order_id}", json=fields)
        response.raise_for_status()
        return response.json()

    async def journey(self, order_id: int) -> Journey:
        return await self.reader.read(self.tenant_id, "cin7", str(order_id))

    async def record(self, order_id: int) -> pb.IntakeRecord:
        ref = order_pb2.ChannelOrderRef(channel="cin7", external_id=str(order_id))
        return (await self.intake.GetOrder(pb.GetOrderRequest(tenant_id=self.tenant_id, channel_ref=ref))).record

    async def record_or_none(self, order_id: int) -> pb.IntakeRecord | None:
        try:
            return await self.record(order_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    async def listed(self, **filters: Any) -> list[pb.IntakeRecord]:
        answer = await self.intake.ListOrders(pb.ListOrdersRequest(tenant_id=self.tenant_id, **filters))
        return list(answer.records)

    async def list_calls(self) -> int:
        stats = (await self.stack.http.get(f"{self.stack.sim_urls['cin7']}/_sim/stats")).json()
        return stats["requests"].get("list", 0)

    async def mails(self, to: str | None = OPS) -> list[dict[str, Any]]:
        """What the mail sink received for `to`, or for anyone (None)."""
        params = {"to": to} if to else {}
        answer = await self.stack.http.get(f"{self.stack.sim_urls['mailsink']}/_sim/messages", params=params)
        answer.raise_for_status()
        return answer.json()["messages"]


async def eventually(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 60.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last seen: {value}")
        await asyncio.sleep(0.3)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desks(infra, tmp_path_factory):
    specs = {
        "mailed": TenantSpec.cin7_shipstation("harbour", cin7={"import_errors_to": OPS, "poll_interval_s": 2}),
        "quiet": TenantSpec.cin7_shipstation("quiet-co", cin7={"poll_interval_s": 2}),
    }
    run_dir = tmp_path_factory.mktemp("cin7intake")
    async with Stack(
        list(specs.values()), run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap
    ) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with (
            JourneyReader(addresses, stack.token(READER)) as reader,
            grpc.aio.insecure_channel(stack.grpc_address("order_intake")) as intake,
        ):
            yield {role: Cin7Desk(stack, reader, intake, spec) for role, spec in specs.items()}


async def test_an_order_meeting_every_rule_is_accepted_and_routed_to_shipstation(desks):
    desk = desks["mailed"]
    placed = await desk.enter(order())
    journey = await eventually(lambda: desk.journey(placed["id"]), lambda j: j.route != "")
    assert (journey.intake, journey.route, journey.provider, journey.provider_account) == (
        "accepted",
        "route",
        "shipstation",
        "labels",
    )
    record = await desk.record(placed["id"])
    assert record.order.external_number == placed["reference"] and record.order.channel_status == "Fully Picked"
    assert [line.sku for line in record.order.lines] == ["CAB-750"]  # the zero-quantity line is not sent
    assert record.order.customer.phone == "+1 415 555 0142"  # no phone: the mobile
    assert list(record.rule_failures) == []


@pytest.mark.parametrize("code", list(FAILING))
async def test_an_order_failing_a_rule_is_not_imported_with_its_code(desks, code):
    desk = desks["mailed"]
    placed = await desk.enter(FAILING[code])
    record = await eventually(lambda: desk.record_or_none(placed["id"]), lambda r: r is not None)
    assert record.status == pb.INTAKE_STATUS_NOT_IMPORTED
    assert [f.code for f in record.rule_failures] == [code]
    assert code in record.status_reason
    journey = await desk.journey(placed["id"])
    assert journey.route == ""  # never routed
    listed = await desk.listed(status=pb.INTAKE_STATUS_NOT_IMPORTED, rule_code=code)
    assert str(placed["id"]) in {r.order.external_id for r in listed}


async def test_an_order_fixed_in_cin7_is_evaluated_again_and_accepted(desks):
    desk = desks["mailed"]
    placed = await desk.enter(order(stage="Processing"))
    held = await eventually(lambda: desk.record_or_none(placed["id"]), lambda r: r is not None)
    assert [f.code for f in held.rule_failures] == ["NOT_FULLY_PICKED"]
    await desk.change(placed["id"], stage="Fully Picked")
    journey = await eventually(lambda: desk.journey(placed["id"]), lambda j: j.route != "")
    assert (journey.intake, journey.route, journey.provider) == ("accepted", "route", "shipstation")
    assert list((await desk.record(placed["id"])).rule_failures) == []


async def test_the_failed_import_mail_names_the_order_and_its_reasons_once_across_polls(desks):
    desk = desks["mailed"]
    placed = await desk.enter(order(stage="New", deliveryCountry=""))
    subject = f"Order {placed['reference']} was not imported from Cin7 Omni"

    def about_it(mails: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in mails if m["subject"] == subject]

    mails = await eventually(lambda: desk.mails(None), lambda mails: len(about_it(mails)) >= 1)
    [mail] = about_it(mails)
    assert mail["rcpt_tos"] == [OPS]
    assert "- NOT_FULLY_PICKED: the order's stage is not 'Fully Picked'" in mail["body"]
    assert "- NO_DELIVERY_COUNTRY: the delivery address has no country" in mail["body"]
    assert "Mere" not in mail["body"] and "mere@bistro.example" not in mail["body"]

    # Changed in Cin7 but still failing the same rules: a new revision, and no second mail.
    await desk.change(placed["id"], internalComments="call before delivery")
    await eventually(lambda: desk.record(placed["id"]), lambda r: r.revision_count >= 2)
    polls = await desk.list_calls()
    await eventually(desk.list_calls, lambda calls: calls >= polls + 3)
    assert len(about_it(await desk.mails(None))) == 1
    record = await desk.record(placed["id"])
    assert record.status == pb.INTAKE_STATUS_NOT_IMPORTED
    assert [f.code for f in record.rule_failures] == ["NOT_FULLY_PICKED", "NO_DELIVERY_COUNTRY"]


async def test_a_tenant_with_no_recipient_gets_no_mail_and_still_sees_not_imported(desks):
    desk = desks["quiet"]
    placed = await desk.enter(order(stage="New"))
    record = await eventually(lambda: desk.record_or_none(placed["id"]), lambda r: r is not None)
    assert record.status == pb.INTAKE_STATUS_NOT_IMPORTED
    # A mail queued after it (the other tenant's) arrives; none came about this order.
    later = await desks["mailed"].enter(order(stage="New"))
    later_subject = f"Order {later['reference']} was not imported from Cin7 Omni"
    mails = await eventually(lambda: desk.mails(None), lambda mails: any(m["subject"] == later_subject for m in mails))
    assert [m for m in mails if m["subject"] == f"Order {placed['reference']} was not imported from Cin7 Omni"] == []


async def test_the_cli_lists_not_imported_orders_by_code_and_shows_what_to_fix(desks):
    desk = desks["mailed"]
    placed = await desk.enter(FAILING["TOO_OLD"])
    await eventually(lambda: desk.record_or_none(placed["id"]), lambda r: r is not None)

    async def cli(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "order_intake.cli", "--addr", desk.stack.grpc_address("order_intake")),
            *("--tenant", desk.tenant_id, *args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "ORDERSYNC_INTAKE_TOKEN": desk.stack.token(READER)},
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    listed = await cli("list", "--status", "not-imported", "--code", "TOO_OLD")
    rows = [line.split() for line in listed.splitlines()[:-1]]
    assert [placed["reference"], "not-imported", "TOO_OLD"] in [row[:3] for row in rows]
    assert all(row[2] == "TOO_OLD" for row in rows)
    shown = await cli("show", "cin7", str(placed["id"]))
    assert "status:    not-imported" in shown and "TOO_OLD" in shown and "set an ETD" in shown
