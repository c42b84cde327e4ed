"""The `ordersync` command's own behaviour: passthrough groups and exit codes."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import libs.cli.app as cli_app
from libs.cli.app import app
from libs.cli.output import ExitCode

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]


def test_lists_its_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("intake", "orders", "mapping"):
        assert command in result.output


def test_passthrough_hands_flags_to_the_service_cli_and_keeps_its_exit_code(monkeypatch):
    monkeypatch.delenv("ORDERSYNC_ADMIN_TOKEN", raising=False)
    result = runner.invoke(app, ["orders", "--tenant", "acme", "show", "1042"])
    # No token: dispatch's CLI refuses before any call, as bad usage, naming the variable.
    assert result.exit_code == ExitCode.USAGE
    assert "ORDERSYNC_ADMIN_TOKEN" in result.output


def test_passthrough_help_is_the_service_clis_own():
    result = runner.invoke(app, ["intake", "--help"])
    assert result.exit_code == 0
    assert "--tenant" in result.output


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["trace", "acme", "1042"], "trace"),
        (["--token-env", "MY_TOKEN", "dead-letters", "list", "acme"], "dead-letters"),
        (["--token-env", "trace", "reconcile", "acme"], "reconcile"),  # an option's value is no command
        (["--help"], None),
        (["orders", "--tenant", "acme"], None),  # a passthrough group, registered here already
        ([], None),
    ],
)
def test_a_run_imports_only_the_subcommand_it_names(argv, named):
    assert cli_app._subcommand_of(argv) == named


def test_a_command_started_for_trace_starts_without_the_other_subcommands():
    # A fresh interpreter, as the venv's bin/ordersync starts one: nothing imported beforehand.
    probe = (
        "import sys; from libs.cli import app; app._register_subcommands(['trace', 'acme', '1']);"
        " print(sorted(m for m in app.SUBCOMMANDS.values() if m in sys.modules))"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert shown.stdout.strip() == "['libs.cli.trace']"
