"""The `ordersync` command's own behaviour: passthrough groups and exit codes."""

from typer.testing import CliRunner

from libs.cli.app import app
from libs.cli.output import ExitCode

runner = CliRunner()


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
