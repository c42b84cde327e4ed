"""Resubmitting a kept webhook body end to end, Commerce7 -> Vinoshipper on one stack.

A Commerce7 Order Create webhook reaches intake cut short (a proxy on the way dropped the end of
the body): intake answers 400, keeps the body as malformed, and nothing goes on. An operator
lists it with `ordersync webhooks list`, resubmits it over WebhookReceiptService with the whole
body, and the order is sent to Vinoshipper once; resubmitting it again with `ordersync webhooks
resubmit` records nothing, answers the first resubmission, and Vinoshipper still has one order.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import grpc
import pytest
from ordersync.intake.v1 import webhook_receipts_pb2 as pb
from ordersync.intake.v1 import webhook_receipts_pb2_grpc as pb_grpc

from libs.cli.output import ExitCode
from libs.platform.testing import authorized
from tests.e2e.conftest import Driver, web_order
from tests.simulators.commerce7.app import SIM_USER
from tests.system.stack import REPO, STORE

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]

SENT = "Sent to Vinoshipper"
CLI_TIMEOUT_S = 60.0


async def _ordersync(driver: Driver, *args: str) -> tuple[int, str, str]:
    """Run `python -m libs.cli ARGS...` as the tenant's operator; (exit code, stdout, stderr)."""
    env = {**os.environ, **driver.stack.operator_env(driver.tenant_id), "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "libs.cli", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=CLI_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _cut_short_webhook(driver: Driver) -> tuple[dict, int, bytes]:
    """An order placed in Commerce7 whose Create webhook reached intake cut short:
    (the order, the receipt intake kept, the whole body Commerce7 sent)."""
    response = await driver.stack.http.post(
        f"{driver.c7}/_sim/orders", json={"tenant_id": driver.tenant_id, "order": web_order(), "webhook": False}
    )
    response.raise_for_status()
    order = response.json()["order"]
    store = driver.stack.tenants[driver.tenant_id].account(STORE)
    whole = json.dumps(
        {"object": "Order", "action": "Create", "payload": order, "user": SIM_USER, "tenantId": store["tenant_slug"]}
    ).encode()
    answer = await driver.stack.http.post(
        f"{driver.stack.http_url('order_intake')}/webhooks/commerce7/{driver.tenant_id}",
        content=whole[: len(whole) * 2 // 3],
        headers={"Content-Type": "application/json"},
        auth=(store["webhook_user"], store["webhook_password"]),
    )
    assert answer.status_code == 400, answer.text
    return order, answer.json()["receipt_id"], whole


async def test_a_cut_short_webhook_resubmitted_whole_reaches_vinoshipper_once(driver):
    order, receipt_id, whole = await _cut_short_webhook(driver)
    assert (await driver.journey(order["id"])).order_id == ""  # refused: nothing went on
    assert (await driver.provider_stats())["orders_created"] == 0

    code, out, err = await _ordersync(driver, "webhooks", "list", driver.tenant_id, "--json")
    assert code == ExitCode.DONE, err
    [listed] = json.loads(out)
    assert (int(listed["receipt_id"]), listed["outcome"], listed["source"]) == (receipt_id, "malformed", "push")

    async with grpc.aio.insecure_channel(driver.stack.grpc_address("order_intake")) as channel:
        operator = driver.stack.operator(driver.tenant_id)
        stub = authorized(pb_grpc.WebhookReceiptServiceStub(channel), driver.stack.token(operator))
        request = pb.ResubmitWebhookReceiptRequest(
            tenant_id=driver.tenant_id,
            receipt_id=receipt_id,
            reason="a proxy cut the body short; resent as Commerce7 sent it",
            replacement_body=whole,
        )
        taken = await stub.ResubmitWebhookReceipt(request)
    assert (taken.outcome, taken.already_resubmitted) == ("accepted", False)
    shown = await driver.wait_for_status(order["orderNumber"], SENT)
    assert shown.sync.provider_order_number
    assert (await driver.provider_stats())["orders_created"] == 1

    fixed = driver.stack.run_dir / "fixed-webhook.json"
    fixed.write_bytes(whole)
    code, out, err = await _ordersync(
        driver,
        "webhooks",
        "resubmit",
        driver.tenant_id,
        str(receipt_id),
        "--reason",
        "again",
        "--body-file",
        str(fixed),
    )
    assert code == ExitCode.DONE, err
    assert f"was resubmitted before as receipt {taken.receipt_id}" in out and "nothing recorded now" in out

    conn = await driver.stack.connect_service_db()
    try:
        resubmissions = await conn.fetch(
            "SELECT source, outcome, resubmitted_by FROM order_intake.webhook_receipts WHERE resubmitted_from = $1",
            receipt_id,
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in resubmissions] == [("resubmit", "accepted", operator)]
    journey = await driver.wait_for(order["id"], lambda j: j.order_id != "")
    assert journey.order_id == taken.order_id
    assert (await driver.provider_stats())["orders_created"] == 1
