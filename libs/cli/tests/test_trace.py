"""`ordersync trace`: merging the services' steps, marking the failing step, output and exit codes.

The services' answers come from a real gRPC server serving OrderHistoryService with canned
histories, so the command's asking (intake first, the others with the resolved id) is exercised
as it runs; the merge, mark and printing are checked on plain steps.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from ordersync.ops.v1 import order_history_pb2 as pb
from ordersync.ops.v1 import order_history_pb2_grpc as pb_grpc
from typer.testing import CliRunner

import libs.cli.app as cli_app
from libs.cli import trace as command
from libs.cli.connect import ADDRESSES, Connections
from libs.cli.output import ExitCode
from libs.cli.trace import Journey, exit_code, failing_step, merge
from libs.platform.order_history import Step

runner = CliRunner()
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _step(seconds: float, service: str, kind: str, status: str, *, failed: bool = False, **more) -> Step:
    return Step(T0 + timedelta(seconds=seconds), service, kind, status, failed=failed, **more)


def test_steps_merge_in_time_order_and_ties_in_journey_order():
    intake = [_step(0, "order-intake", "received", "accepted"), _step(5, "order-intake", "sync_result", "handed_over")]
    routing = [_step(1, "compliance-routing", "routing_decision", "route")]
    dispatch = [
        _step(1, "fulfillment-dispatch", "provider_attempt", "queued"),
        _step(4, "fulfillment-dispatch", "provider_attempt", "sent"),
    ]
    merged = merge([dispatch, routing, intake])
    assert [(s.service, s.status) for s in merged] == [
        ("order-intake", "accepted"),
        ("compliance-routing", "route"),
        ("fulfillment-dispatch", "queued"),
        ("fulfillment-dispatch", "sent"),
        ("order-intake", "handed_over"),
    ]


def test_the_failing_step_is_the_last_failure_no_later_success_of_its_service_cleared():
    refused = _step(2, "fulfillment-dispatch", "provider_attempt", "failed", failed=True, action="retry it")
    steps = [
        _step(0, "order-intake", "received", "accepted"),
        _step(1, "fulfillment-dispatch", "provider_attempt", "sending"),
        refused,
        # another service's success after it does not clear it
        _step(3, "order-intake", "sync_result", "refused"),
    ]
    assert failing_step(steps) == 2
    retried = [
        *steps,
        _step(4, "fulfillment-dispatch", "operator_action", "operator_retry"),
        _step(5, "fulfillment-dispatch", "provider_attempt", "sent"),
    ]
    assert failing_step(retried) is None


def test_a_later_failure_of_another_service_is_the_one_marked():
    steps = [
        _step(0, "fulfillment-dispatch", "provider_attempt", "failed", failed=True),
        _step(1, "tracking-writeback", "writeback", "blocked", failed=True),
    ]
    assert failing_step(steps) == 1
    assert failing_step([]) is None


def test_exit_codes_say_healthy_problem_or_incomplete():
    healthy = Journey("acme", "ord_1", steps=[_step(0, "order-intake", "received", "accepted")])
    assert exit_code(healthy) == ExitCode.DONE
    failing = Journey(
        "acme", "ord_1", steps=[_step(0, "order-intake", "locked_change", "locked_after_sync", failed=True)]
    )
    assert exit_code(failing) == ExitCode.PROBLEMS_FOUND
    incomplete = Journey("acme", "ord_1", missing={"tracking-writeback": "UNAVAILABLE: down"})
    assert exit_code(incomplete) == ExitCode.UNAVAILABLE


def _invoke(monkeypatch, journey: Journey | Exception, *args: str):
    async def fake_fetch(connections, tenant_id, order):
        if isinstance(journey, Exception):
            raise journey
        return journey

    monkeypatch.setattr(command, "fetch", fake_fetch)
    monkeypatch.setenv("ORDERSYNC_TOKEN", "t")
    cli_app._register_subcommands()
    return runner.invoke(cli_app.app, ["trace", "acme", "1042", *args])


def _failed_journey() -> Journey:
    return Journey(
        "acme",
        "ord_abc",
        "1042",
        steps=[
            _step(0, "order-intake", "received", "accepted", trace_id="0af7651916cd43dd8448eb211c80319c"),
            _step(2, "fulfillment-dispatch", "provider_attempt", "failed", failed=True, reason_code="PROVIDER_REFUSED",
                  message="refused: bad address", action="ordersync orders --tenant acme retry ord_abc --reason ..."),
        ],
    )  # fmt: skip


def test_the_table_marks_the_failing_step_with_its_action_and_exits_4(monkeypatch):
    result = _invoke(monkeypatch, _failed_journey())
    assert result.exit_code == ExitCode.PROBLEMS_FOUND, result.output
    lines = result.output.splitlines()
    marked = [line for line in lines if command.FAILING_MARK in line]
    assert len(marked) == 1 and "PROVIDER_REFUSED" in marked[0]
    assert "0af7651916cd" in result.output and "0af7651916cd43dd" not in result.output  # the trace id, short
    assert "what to do: ordersync orders --tenant acme retry ord_abc --reason ..." in result.output


def test_json_holds_every_step_and_the_failing_index(monkeypatch):
    result = _invoke(monkeypatch, _failed_journey(), "--json")
    assert result.exit_code == ExitCode.PROBLEMS_FOUND
    document = json.loads(result.output)
    assert document["order_id"] == "ord_abc" and document["failing_step"] == 1
    assert [s["status"] for s in document["steps"]] == ["accepted", "failed"]
    assert document["steps"][0]["time"] == T0.isoformat()


def test_a_missing_service_is_named_and_exits_3(monkeypatch):
    journey = Journey("acme", "ord_abc", steps=[_step(0, "order-intake", "received", "accepted")])
    journey.missing["tracking-writeback"] = "UNAVAILABLE: connection refused"
    result = _invoke(monkeypatch, journey)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "received" in result.output and "tracking-writeback did not answer" in result.output


class _History(pb_grpc.OrderHistoryServiceServicer):
    """One service's canned answer: NOT_FOUND for an unknown order at intake."""

    def __init__(self, service: str, known: dict[str, str]):
        self.service, self.known = service, known
        self.asked: list[str] = []

    async def GetOrderHistory(self, request, context):
        self.asked.append(request.order)
        order_id = self.known.get(request.order)
        if order_id is None:
            if self.service == "order-intake":
                await context.abort(grpc.StatusCode.NOT_FOUND, "no such order")
            return pb.GetOrderHistoryResponse()
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(T0 + timedelta(seconds=command.SERVICES.index(self.service)))
        failed = self.service == "fulfillment-dispatch"
        step = pb.OrderStep(
            time=stamp, service=self.service, kind="k", status="failed" if failed else "ok", failed=failed
        )
        return pb.GetOrderHistoryResponse(order_id=order_id, steps=[step])


async def _serve(services: list[str]) -> tuple[list[grpc.aio.Server], dict[str, str], dict[str, _History]]:
    servers, environ, servicers = [], {}, {}
    for service in command.SERVICES:
        variable = ADDRESSES[service][0]
        environ[variable] = "127.0.0.1:1"  # nothing listens there: unreachable
        if service in services:
            server = grpc.aio.server()
            environ[variable] = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
            servicers[service] = _History(service, {"1042": "ord_abc", "ord_abc": "ord_abc"})
            pb_grpc.add_OrderHistoryServiceServicer_to_server(servicers[service], server)
            await server.start()
            servers.append(server)
    environ["ORDERSYNC_TOKEN"] = "t"
    return servers, environ, servicers


@pytest.mark.asyncio
async def test_intake_resolves_the_order_and_the_others_are_asked_with_its_id():
    servers, environ, servicers = await _serve(list(command.SERVICES))
    connections = Connections(environ=environ)
    try:
        journey = await command.fetch(connections, "acme", "1042")
    finally:
        await connections.close()
        await asyncio.gather(*(s.stop(None) for s in servers))
    assert journey.order_id == "ord_abc" and not journey.missing
    assert [s.service for s in journey.steps] == list(command.SERVICES)
    assert servicers["order-intake"].asked == ["1042"]
    assert all(servicers[s].asked == ["ord_abc"] for s in command.PEERS)
    assert journey.failing == 2


@pytest.mark.asyncio
async def test_an_unknown_order_is_refused_and_an_unreachable_service_is_named():
    servers, environ, _ = await _serve(["order-intake", "compliance-routing", "fulfillment-dispatch"])
    connections = Connections(environ=environ)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await command.fetch(connections, "acme", "9999")
        journey = await command.fetch(connections, "acme", "1042")
    finally:
        await connections.close()
        await asyncio.gather(*(s.stop(None) for s in servers))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert list(journey.missing) == ["tracking-writeback"] and "UNAVAILABLE" in journey.missing["tracking-writeback"]
    assert len(journey.steps) == 3


def test_follow_prints_only_new_steps_and_stops_when_the_journey_is_complete(monkeypatch):
    received = _step(0, "order-intake", "received", "accepted")
    sent = _step(1, "fulfillment-dispatch", "provider_attempt", "sent")
    written = _step(2, "tracking-writeback", "writeback", "written")
    views = [
        Journey("acme", "ord_abc", steps=[received]),
        Journey("acme", "ord_abc", steps=[received]),
        Journey("acme", "ord_abc", steps=[received, sent]),
        Journey("acme", "ord_abc", steps=[received, sent, written], complete=True),
    ]
    asked = []

    async def fake_fetch(connections, tenant_id, order):
        asked.append(order)
        return views[len(asked) - 1]

    monkeypatch.setattr(command, "fetch", fake_fetch)
    monkeypatch.setenv("ORDERSYNC_TOKEN", "t")
    cli_app._register_subcommands()
    result = runner.invoke(cli_app.app, ["trace", "acme", "1042", "--follow", "--interval", "0.2", "--json"])
    assert result.exit_code == ExitCode.DONE, result.output
    assert len(asked) == 4  # it stopped at the complete view
    printed = [json.loads(chunk) for chunk in result.output.replace("}\n{", "}\x00{").split("\x00")]
    assert [s["status"] for s in printed] == ["accepted", "sent", "written"]  # each step once
