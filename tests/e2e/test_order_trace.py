"""`ordersync trace` end to end: the command run as an operator runs it, against one stack
(Commerce7 -> Vinoshipper, real Kafka, Postgres and service processes).

A sent-and-delivered order shows every step from the webhook to the delivered writeback and exits
0; an order Vinoshipper refuses (a 4xx injected at the simulator) shows the refused attempt as the
failing step with the retry command and exits 4; an unknown order is refused with exit 1.
"""

from __future__ import annotations

import json

import pytest

from libs.cli.output import ExitCode
from libs.cli.trace import FAILING_MARK
from tests.e2e.conftest import Driver, web_order
from tests.system.journey import ordersync_trace

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]

FAILED = "Failed to Send"


async def _trace(driver: Driver, order: str, *args: str) -> tuple[int, str, str]:
    env = {**driver.stack.operator_env(driver.tenant_id), "NO_COLOR": "1"}
    return await ordersync_trace(env, driver.tenant_id, order, *args)


async def test_a_delivered_order_shows_every_step_from_webhook_to_writeback(driver):
    placed = (await driver.place(web_order()))["order"]
    shown = await driver.wait_for_status(placed["orderNumber"], "Sent to Vinoshipper")
    number = shown.sync.provider_order_number
    for step in ("fulfil", "ship", "deliver"):
        await driver.provider(number, step)
    journey = await driver.wait_for(placed["id"], lambda j: j.written_back == "delivered")

    code, out, err = await _trace(driver, str(placed["orderNumber"]), "--json")
    assert code == ExitCode.DONE, out + err
    document = json.loads(out)
    assert document["order_id"] == journey.order_id and document["complete"] is True
    assert document["failing_step"] is None and document["missing"] == {}
    steps = [(s["service"], s["kind"], s["status"]) for s in document["steps"]]
    assert steps[0] == ("order-intake", "received", "accepted")
    assert ("compliance-routing", "routing_decision", "route") in steps
    assert ("fulfillment-dispatch", "provider_attempt", "sent") in steps
    assert ("fulfillment-dispatch", "shipment", "delivered") in steps
    assert [s for s in steps if s[0] == "tracking-writeback"][-1] == ("tracking-writeback", "writeback", "written")
    times = [s["time"] for s in document["steps"]]
    assert times == sorted(times)
    assert document["steps"][0]["trace_id"], "the webhook's trace id is shown"

    code, table, _ = await _trace(driver, journey.order_id)
    assert code == ExitCode.DONE
    assert "journey complete" in table and FAILING_MARK not in table


async def test_a_refused_order_marks_the_failing_step_with_the_retry_command(driver):
    fault = {"route": "upsert", "status": 400, "count": 1}
    (await driver.stack.http.post(f"{driver.vs}/_sim/faults", json=fault)).raise_for_status()
    placed = (await driver.place(web_order()))["order"]
    await driver.wait_for_status(placed["orderNumber"], FAILED)

    code, out, err = await _trace(driver, str(placed["orderNumber"]))
    print(out)  # shown when the test fails: the table as an operator sees it
    assert code == ExitCode.PROBLEMS_FOUND, out + err
    [marked] = [line for line in out.splitlines() if FAILING_MARK in line]
    assert "fulfillment-dispatch" in marked and "provider_attempt" in marked and "failed" in marked
    [action] = [line for line in out.splitlines() if line.startswith("what to do:")]
    assert f"ordersync orders --tenant {driver.tenant_id} --token-env ORDERSYNC_TOKEN retry ord_" in action


async def test_an_unknown_order_is_refused(driver):
    code, out, err = await _trace(driver, "no-such-order")
    assert code == ExitCode.REFUSED
    assert "NOT_FOUND" in err and not out.strip()
