"""A dead-lettered order end to end, as an SRE meets it: `ordersync trace` shows the dead letter
as the failing step with the command to replay it, `ordersync dead-letters` shows the message,
the SRE edits and replays it, and the order reaches the provider once, however often the replay
is asked for (Commerce7 -> Vinoshipper, real Kafka, Postgres and service processes).

The cause is one a deployment meets: routing's decisions topic accepts smaller messages than an
order with a 9 KB line title needs, so routing's relay sets the decision aside (an outbox dead
letter) and holds back nothing else. The SRE trims the title in the message and replays it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.cli.output import ExitCode
from libs.cli.trace import FAILING_MARK
from tests.e2e.conftest import Driver, web_order
from tests.integration.test_outbox_dead_letters import set_topic_limit
from tests.system.journey import ordersync

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(240)]

ROUTING = "compliance-routing"
DECISIONS_LIMIT = 6000  # bytes: far above an everyday decision, below one with the pasted title
PASTED_TITLE = "Cabernet " + "(pasted twice) " * 600


async def cli(driver: Driver, *args: str) -> tuple[int, str, str]:
    return await ordersync({**driver.stack.operator_env(driver.tenant_id), "NO_COLOR": "1"}, *args)


async def dead_letters(driver: Driver, *args: str) -> list[dict]:
    code, out, err = await cli(driver, "dead-letters", "list", driver.tenant_id, "--service", ROUTING, "--json", *args)
    assert code in (ExitCode.DONE, ExitCode.PROBLEMS_FOUND), err
    return json.loads(out)


async def wait_for_dead_letter(driver: Driver) -> dict:
    for _ in range(150):
        found = await dead_letters(driver)
        if found:
            return found[0]
    raise AssertionError("routing never set the decision aside")


def trimmed(value_json: str) -> str:
    """The envelope JSON with every over-long string (the pasted title) cut back to a name."""

    def trim(node):
        if isinstance(node, dict):
            return {k: trim(v) for k, v in node.items()}
        if isinstance(node, list):
            return [trim(v) for v in node]
        return "Cabernet" if isinstance(node, str) and len(node) > 1000 else node

    return json.dumps(trim(json.loads(value_json)))


async def test_a_dead_lettered_order_is_traced_replayed_once_and_sent_once(driver, tmp_path: Path):
    stack = driver.stack
    await set_topic_limit(stack.kafka_bootstrap, f"{stack.topic_prefix}compliance.decisions.v1", DECISIONS_LIMIT)
    await stack.stop_service("compliance_routing")  # a restarted relay reads the topic's limit anew
    await stack.start_service("compliance_routing")
    everyday = (await driver.place(web_order()))["order"]
    pasted = (await driver.place(web_order(items=[_line(PASTED_TITLE)])))["order"]
    await driver.wait_for_status(everyday["orderNumber"], "Sent to Vinoshipper")  # nothing else held back

    dead = await wait_for_dead_letter(driver)
    assert dead["source"] == "outbox" and dead["tenant_id"] == driver.tenant_id
    assert "max.message.bytes" in dead["error"] and dead["event_type"] == "ordersync.compliance.v1.RoutingDecided"

    # The trace names the dead letter as the failing step, with what to do.
    code, out, err = await cli(driver, "trace", driver.tenant_id, str(pasted["orderNumber"]))
    print(out)  # the table as an SRE sees it, shown when the test fails
    assert code == ExitCode.PROBLEMS_FOUND, out + err
    [marked] = [line for line in out.splitlines() if FAILING_MARK in line]
    assert ROUTING in marked and "dead_letter" in marked
    [action] = [line for line in out.splitlines() if line.startswith("what to do:")]
    assert f"ordersync dead-letters replay TENANT {ROUTING} {dead['id']}" in action

    # Shown, replayed as kept it would fail again; trimmed, it goes through once.
    code, out, _ = await cli(driver, "dead-letters", "show", driver.tenant_id, ROUTING, str(dead["id"]), "--json")
    assert code == ExitCode.DONE
    edit = tmp_path / "decision.json"
    edit.write_text(trimmed(json.loads(out)["value_json"]))
    replay = (
        "dead-letters",
        "replay",
        driver.tenant_id,
        ROUTING,
        str(dead["id"]),
        "--reason",
        "trimmed a pasted title",
    )
    code, out, err = await cli(driver, *replay, "--dry-run", "--json")
    assert code == ExitCode.DONE and json.loads(out)[0]["outcome"] == "would_replay", out + err
    code, out, err = await cli(driver, *replay, "--edit", str(edit), "--json")
    assert code == ExitCode.DONE and json.loads(out)[0]["outcome"] == "replayed", out + err
    shown = await driver.wait_for_status(pasted["orderNumber"], "Sent to Vinoshipper")
    code, out, err = await cli(driver, *replay, "--edit", str(edit), "--json")
    assert code == ExitCode.DONE and json.loads(out)[0]["outcome"] == "already_replayed", out + err

    assert shown.sync.provider_order_number
    stats = await driver.provider_stats()
    assert stats["orders_created"] == 2 and stats["duplicate_submissions"] == 0
    assert await dead_letters(driver) == []  # replayed: no longer listed, no longer counted
    [kept] = await dead_letters(driver, "--include-replayed")
    assert kept["replayed"] is True and kept["replayed_by"]

    code, out, err = await cli(driver, "trace", driver.tenant_id, str(pasted["orderNumber"]), "--json")
    steps = [(s["service"], s["kind"], s["status"]) for s in json.loads(out)["steps"]]
    assert (ROUTING, "dead_letter", "replayed") in steps and (
        "fulfillment-dispatch",
        "provider_attempt",
        "sent",
    ) in steps
    assert json.loads(out)["failing_step"] is None, out


def _line(title: str) -> dict:
    return {"sku": "SKU-CAB", "quantity": 2, "price": 3000, "purchaseTitle": title}
