"""`ordersync dead-letters`: how ids, filters and edits become requests, and the exit codes.
(The commands against real services: tests/e2e/test_dead_letter_replay.py.)"""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from ordersync.intake.v1 import events_pb2 as intake_events
from ordersync.ops.v1 import dead_letters_pb2 as pb
from typer.testing import CliRunner

import libs.cli.app as cli_app
from libs.cli import dead_letters as command
from libs.cli.app import app
from libs.cli.output import ExitCode
from libs.platform.events import new_event, parse_envelope

runner = CliRunner()


@pytest.fixture
def calls(monkeypatch) -> list:
    """The requests the commands send; each answers with what the test puts in `answers`."""
    seen: list = []
    answers: dict = {"list": [], "replay": []}

    async def fake_list_all(connections, services, tenant, chosen, limit):
        seen.append(("list", services, tenant, chosen, limit))
        return answers["list"]

    async def fake_replay_all(connections, service, requests, total, *, bar):
        seen.append(("replay", service, list(requests), total))
        return answers["replay"]

    monkeypatch.setattr(command, "_list_all", fake_list_all)
    monkeypatch.setattr(command, "_replay_all", fake_replay_all)
    monkeypatch.setenv("ORDERSYNC_TOKEN", "t")
    cli_app._register_subcommands()
    seen.append(answers)
    return seen


def invoke(*args: str):
    return runner.invoke(app, ["dead-letters", *args])


def test_listing_asks_every_pipeline_service_and_exits_four_when_some_wait_for_replay(calls):
    answers = calls.pop()
    answers["list"] = [pb.DeadLetter(id=3, service="order-intake", topic="t", error="bad", tenant_id="acme")]
    result = invoke("list", "acme", "--topic", "t", "--since", "2h")
    assert result.exit_code == ExitCode.PROBLEMS_FOUND, result.output
    [(_, services, tenant, chosen, limit)] = calls
    assert services == list(command.SERVICES) and tenant == "acme" and limit == 100
    assert chosen.topic == "t" and chosen.HasField("since") and not chosen.include_replayed
    assert "bad" in result.output


def test_listing_nothing_exits_zero_and_an_unknown_service_is_a_usage_error(calls):
    calls.pop()
    assert invoke("list", "acme", "--service", "tracking-writeback").exit_code == ExitCode.DONE
    assert invoke("list", "acme", "--service", "carrier-mapping").exit_code == ExitCode.USAGE


def test_replay_sends_ids_in_chunks_of_the_service_maximum(calls):
    answers = calls.pop()
    answers["replay"] = [pb.ReplayResult(id=1, outcome=pb.REPLAY_OUTCOME_REPLAYED)]
    ids = [str(i) for i in range(1, 1002)]
    result = invoke("replay", "acme", "order-intake", *ids, "--reason", "fixed")
    assert result.exit_code == ExitCode.DONE, result.output
    [(_, service, requests, total)] = calls
    assert service == "order-intake" and total == 1001
    assert [len(r.ids) for r in requests] == [500, 500, 1] and {r.reason for r in requests} == {"fixed"}


def test_a_replay_that_cannot_replay_one_exits_four(calls):
    calls.pop()["replay"] = [pb.ReplayResult(id=1, outcome=pb.REPLAY_OUTCOME_NOT_REPLAYABLE, reason="edit it")]
    result = invoke("replay", "acme", "order-intake", "1", "--reason", "r")
    assert result.exit_code == ExitCode.PROBLEMS_FOUND and "edit it" in result.output


def test_replay_by_filter_sends_one_filter(calls):
    calls.pop()
    result = invoke("replay", "acme", "order-intake", "--all-matching", "--error", "timeout", "--dry-run")
    assert result.exit_code == ExitCode.DONE, result.output
    [(_, _, [request], _)] = calls
    assert request.filter.error_contains == "timeout" and request.dry_run and not request.ids


def test_an_edit_becomes_the_envelope_bytes_of_the_one_id(calls, tmp_path):
    calls.pop()
    event = new_event(
        "t", intake_events.OrderAccepted(first_revision=True), aggregate_id="o", tenant_id="acme", producer="p"
    )
    edited = tmp_path / "edit.json"
    edited.write_text(json_format.MessageToJson(parse_envelope(event.value)))
    result = invoke("replay", "acme", "order-intake", "7", "--edit", str(edited), "--reason", "fixed")
    assert result.exit_code == ExitCode.DONE, result.output
    [(_, _, [request], _)] = calls
    assert list(request.ids) == [7] and parse_envelope(request.edited_value).event_id == event.event_id


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "acme", "order-intake"),  # neither ids nor --all-matching
        ("replay", "acme", "order-intake", "1", "--all-matching"),  # both
        ("replay", "acme", "order-intake", "1", "2", "--edit", "EDIT"),  # an edit of two
        ("replay", "acme", "order-intake", "--all-matching", "--edit", "EDIT"),
        ("replay", "acme", "order-intake", "1", "--edit", "BROKEN"),  # not envelope JSON
        ("replay", "acme", "carrier-mapping", "1"),
    ],
)
def test_a_malformed_replay_is_a_usage_error_and_sends_nothing(calls, tmp_path, args):
    calls.pop()
    (tmp_path / "EDIT").write_text(json.dumps({"eventId": "e", "eventType": "t"}))
    (tmp_path / "BROKEN").write_text("{not json")
    args = tuple(str(tmp_path / a) if a in ("EDIT", "BROKEN") else a for a in args)
    result = invoke(*args, "--reason", "r")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert calls == []
