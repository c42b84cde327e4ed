"""`ordersync webhooks`: what each subcommand asks order intake, what it prints, its exit codes.

Intake is a real gRPC server serving WebhookReceiptService with canned answers (a synchronous
one, in threads of its own, since the command runs its own event loop), so the requests the
command builds are checked as they arrive.
"""

from __future__ import annotations

import json
from concurrent import futures
from datetime import UTC, datetime

import grpc
import pytest
import typer
from ordersync.intake.v1 import webhook_receipts_pb2 as pb
from ordersync.intake.v1 import webhook_receipts_pb2_grpc as pb_grpc
from typer.testing import CliRunner

import libs.cli.app as cli_app
from libs.cli import webhooks as command
from libs.cli.output import ExitCode

runner = CliRunner()
BODY = b'{"object": "Order", "action": "Create", "payload": {"id": "c7-1", "note": "[bold]:wine_glass:"}}'
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _receipt(receipt_id: int, **fields) -> pb.WebhookReceipt:
    receipt = pb.WebhookReceipt(receipt_id=receipt_id, channel="commerce7", account="store", source="push", **fields)
    receipt.received_at.FromDatetime(NOW)
    return receipt


class _Intake(pb_grpc.WebhookReceiptServiceServicer):
    """Canned receipts: 7 malformed (resubmitted as 9), 8 with a body that is not JSON."""

    def __init__(self):
        self.requests: list = []
        self.taken = False

    def ListWebhookReceipts(self, request, context):
        self.requests.append(request)
        if not request.page_token:
            receipts = [_receipt(9, outcome="accepted", resubmitted_from=7, order_id="ord_1")]
            return pb.ListWebhookReceiptsResponse(receipts=receipts, next_page_token="more")
        detail = "Commerce7 webhook: [payload] is not JSON " + "x" * 200
        return pb.ListWebhookReceiptsResponse(
            receipts=[_receipt(7, outcome="malformed", detail=detail, resubmissions=[9])]
        )

    def GetWebhookReceipt(self, request, context):
        self.requests.append(request)
        if request.receipt_id == 7:
            return pb.GetWebhookReceiptResponse(
                receipt=_receipt(7, outcome="malformed", detail="cut short", body_size=len(BODY), resubmissions=[9]),
                body=BODY,
            )
        if request.receipt_id == 8:
            return pb.GetWebhookReceiptResponse(receipt=_receipt(8, outcome="malformed"), body=b"\xff{not json")
        context.abort(grpc.StatusCode.NOT_FOUND, f"tenant 'acme' has no webhook receipt {request.receipt_id}")

    def ResubmitWebhookReceipt(self, request, context):
        self.requests.append(request)
        if not request.HasField("replacement_body"):
            return pb.ResubmitWebhookReceiptResponse(outcome="malformed", receipt_id=10, detail="still cut short")
        if request.dry_run:
            return pb.ResubmitWebhookReceiptResponse(outcome="accepted", order_id="ord_1", dry_run=True)
        answer = pb.ResubmitWebhookReceiptResponse(
            outcome="accepted", receipt_id=11, order_id="ord_1", already_resubmitted=self.taken
        )
        self.taken = True
        return answer


@pytest.fixture
def intake(monkeypatch):
    servicer = _Intake()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_WebhookReceiptServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("ORDERSYNC_INTAKE_ADDR", f"127.0.0.1:{port}")
    monkeypatch.setenv("ORDERSYNC_TOKEN", "t")
    cli_app._register_subcommands()
    yield servicer
    server.stop(None)


def _run(*args: str):
    return runner.invoke(cli_app.app, ["webhooks", *args])


def test_since_is_a_span_back_from_now_or_an_iso_time():
    assert command.parse_since("2d", now=NOW) == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert command.parse_since("2026-11-30T08:00") == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        command.parse_since("last week")


def test_list_pages_to_the_limit_and_shows_each_receipt(intake):
    result = _run("list", "acme", "--outcome", "malformed", "--outcome", "accepted", "--since", "2026-11-30")
    assert result.exit_code == ExitCode.DONE, result.output
    first, second = intake.requests
    assert (first.tenant_id, list(first.outcomes), first.page_size) == ("acme", ["malformed", "accepted"], 50)
    assert first.since.ToDatetime(tzinfo=UTC) == datetime(2026, 11, 30, tzinfo=UTC)
    assert (second.page_token, second.page_size) == ("more", 49)
    assert "push of 7" in result.output and "malformed" in result.output and "2 receipt(s)" in result.output
    assert "[payload] is not JSON" in result.output  # a detail is not read as markup
    assert "x" * 200 not in result.output  # and it is shortened in the table


def test_list_json_and_a_limit_of_one(intake):
    result = _run("list", "acme", "--limit", "1", "--json")
    assert result.exit_code == ExitCode.DONE, result.output
    assert [r["receipt_id"] for r in json.loads(result.output)] == ["9"]  # int64 is a string in proto JSON
    assert len(intake.requests) == 1 and list(intake.requests[0].outcomes) == []


def test_show_pretty_prints_the_body_as_it_was_kept(intake):
    result = _run("show", "acme", "7")
    assert result.exit_code == ExitCode.DONE, result.output
    assert "outcome:        malformed: cut short" in result.output
    assert "resubmitted as: 9" in result.output
    assert '    "id": "c7-1",' in result.output  # indented, one field a line
    assert "[bold]:wine_glass:" in result.output  # neither markup nor emoji codes are rendered


def test_show_json_and_a_body_that_is_not_json(intake):
    document = json.loads(_run("show", "acme", "7", "--json").output)
    assert document["body_is_json"] and document["body_json"]["payload"]["id"] == "c7-1"
    assert document["receipt"]["outcome"] == "malformed"
    result = _run("show", "acme", "8")
    assert result.exit_code == ExitCode.DONE
    assert "not JSON" in result.output and "{not json" in result.output


def test_an_unknown_receipt_is_refused_with_intakes_message(intake):
    result = _run("show", "acme", "404")
    assert result.exit_code == ExitCode.REFUSED
    assert "NOT_FOUND: tenant 'acme' has no webhook receipt 404" in result.output


def test_resubmit_sends_the_reason_and_the_edited_body_and_answers_once(intake, tmp_path):
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(BODY)
    result = _run("resubmit", "acme", "7", "--reason", "proxy cut it", "--body-file", str(fixed))
    assert result.exit_code == ExitCode.DONE, result.output
    assert "receipt 7 resubmitted as receipt 11: accepted, order ord_1" in result.output
    sent = intake.requests[0]
    assert (sent.tenant_id, sent.receipt_id, sent.reason, sent.replacement_body, sent.dry_run) == (
        "acme",
        7,
        "proxy cut it",
        BODY,
        False,
    )
    again = _run("resubmit", "acme", "7", "--reason", "proxy cut it", "--body-file", str(fixed))
    assert again.exit_code == ExitCode.DONE
    assert "was resubmitted before as receipt 11 (accepted, order ord_1); nothing recorded now" in again.output


def test_resubmit_refused_again_exits_4_and_a_dry_run_records_nothing(intake, tmp_path):
    result = _run("resubmit", "acme", "7", "--reason", "try again")
    assert result.exit_code == ExitCode.PROBLEMS_FOUND
    assert "resubmitted as receipt 10: malformed: still cut short" in result.output
    assert not intake.requests[0].HasField("replacement_body")  # the kept body, unchanged
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(BODY)
    dry = _run("resubmit", "acme", "7", "--reason", "r", "--body-file", str(fixed), "--dry-run", "--json")
    assert dry.exit_code == ExitCode.DONE
    assert json.loads(dry.output) | {} == {
        "outcome": "accepted",
        "receipt_id": "0",
        "order_id": "ord_1",
        "detail": "",
        "already_resubmitted": False,
        "dry_run": True,
    }


def test_resubmit_without_a_reason_or_with_a_missing_file_is_bad_usage(intake, tmp_path):
    assert _run("resubmit", "acme", "7").exit_code == ExitCode.USAGE
    missing = _run("resubmit", "acme", "7", "--reason", "r", "--body-file", str(tmp_path / "nope.json"))
    assert missing.exit_code == ExitCode.USAGE and "cannot read" in missing.output
    assert intake.requests == []
