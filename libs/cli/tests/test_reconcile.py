"""`ordersync reconcile`: the window's spelling, the findings table and the exit codes."""

from __future__ import annotations

import pytest
import typer
from ordersync.ops.v1 import reconciliation_pb2 as pb
from typer.testing import CliRunner

from libs.cli import reconcile as command
from libs.cli.app import app
from libs.cli.output import ExitCode

runner = CliRunner()


@pytest.mark.parametrize(("text", "seconds"), [("48h", 172800), ("90m", 5400), ("2d", 172800), ("60s", 60)])
def test_a_window_is_a_number_and_a_unit(text, seconds):
    assert command.parse_window(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["48", "h", "1w", "-3h"])
def test_a_window_without_a_known_unit_is_refused(text):
    with pytest.raises(typer.BadParameter):
        command.parse_window(text)


def _runs(*outcomes: pb.FindingOutcome) -> list[pb.ReconciliationRun]:
    findings = [
        pb.Finding(kind="lost_order", order_number=f"10{i}", channel_order_id=f"c{i}", outcome=o, reason="why")
        for i, o in enumerate(outcomes)
    ]
    return [pb.ReconciliationRun(service="order-intake", account="store", compared=5, findings=findings)]


def _invoke(monkeypatch, runs, *args: str):
    seen = []

    async def fake_run_all(connections, request, *, spinner):
        seen.append(request)
        return runs

    monkeypatch.setattr(command, "_run_all", fake_run_all)
    monkeypatch.setenv("ORDERSYNC_TOKEN", "t")
    import libs.cli.app as cli_app

    cli_app._register_subcommands()
    return runner.invoke(app, ["reconcile", "acme", *args]), seen


def test_everything_healed_exits_zero_and_shows_each_finding(monkeypatch):
    result, seen = _invoke(monkeypatch, _runs(pb.FINDING_OUTCOME_HEALED), "--window", "6h", "--account", "store")
    assert result.exit_code == ExitCode.DONE, result.output
    assert "lost_order" in result.output and "healed" in result.output and "1 found, 0 not healed" in result.output
    assert (seen[0].tenant_id, seen[0].account, seen[0].window.seconds, seen[0].dry_run) == (
        "acme",
        "store",
        21600,
        False,
    )


def test_something_reported_exits_four(monkeypatch):
    result, _ = _invoke(monkeypatch, _runs(pb.FINDING_OUTCOME_HEALED, pb.FINDING_OUTCOME_REPORTED), "--json")
    assert result.exit_code == ExitCode.PROBLEMS_FOUND
    assert '"outcome": "FINDING_OUTCOME_REPORTED"' in result.output


def test_nothing_found_says_so(monkeypatch):
    result, seen = _invoke(monkeypatch, _runs(), "--dry-run")
    assert result.exit_code == ExitCode.DONE
    assert "nothing found" in result.output and seen[0].dry_run
