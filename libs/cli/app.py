"""The `ordersync` command: every operator command in one place.

    ordersync trace acme 1042                 an order's whole journey (docs/trace.md)
    ordersync orders --tenant acme show 1042  dispatch's order admin (Retry, Don't Send, ...)
    ordersync intake --tenant acme accounts   what intake received and its pollers
    ordersync mapping list acme shipstation   carrier mapping's tenant mappings
    ordersync webhooks list acme              webhook bodies intake refused; show, resubmit them

Subcommands register here (one module each under libs/cli/); the passthrough groups hand their
arguments to the service CLIs that existed before this command, unchanged. `ordersync --help`
lists them; every subcommand has --help. Exit codes: libs.cli.output.ExitCode.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, TypeVar

import grpc
import typer

from libs.cli.connect import TOKEN_VARIABLE, Connections
from libs.cli.output import ExitCode, error_console
from libs.platform.config import ConfigError

T = TypeVar("T")

app = typer.Typer(
    name="ordersync",
    help="Operate ordersync: trace orders, replay dead letters, reconcile, act on orders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# gRPC answers that mean "the service said no": anything else from a service means try again.
_REFUSALS = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}


@app.callback()
def _options(
    ctx: typer.Context,
    token_env: Annotated[
        str, typer.Option(help="environment variable holding the bearer token (never pass a token itself)")
    ] = TOKEN_VARIABLE,
    token_file: Annotated[str | None, typer.Option(help="file holding the bearer token")] = None,
) -> None:
    ctx.obj = Connections(token_env=token_env, token_file=token_file)


def run_async(ctx: typer.Context, work: Callable[[Connections], Awaitable[T]]) -> T:
    """Run one subcommand's async work on the command's connections; exit as ExitCode says.

    A refusal by a service exits 1 with its message, an unreachable service 3, missing
    configuration (no token) 2; the message never holds the token."""
    connections: Connections = ctx.obj

    async def _run() -> T:
        try:
            return await work(connections)
        finally:
            await connections.close()

    try:
        return asyncio.run(_run())
    except ConfigError as exc:
        error_console().print(f"error: {exc}")
        raise typer.Exit(ExitCode.USAGE) from None
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.aio.AioRpcError | grpc.Call) else grpc.StatusCode.UNKNOWN
        details = exc.details() if isinstance(exc, grpc.aio.AioRpcError | grpc.Call) else str(exc)
        error_console().print(f"error: {code.name}: {details}")
        raise typer.Exit(ExitCode.REFUSED if code in _REFUSALS else ExitCode.UNAVAILABLE) from None


def _passthrough(name: str, help_text: str, entry: Callable[[list[str]], int]) -> None:
    """Register `ordersync <name> ARGS...` as the service CLI `entry(ARGS)`, flags and all."""

    @app.command(
        name,
        help=help_text,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )
    def _command(ctx: typer.Context) -> None:
        raise typer.Exit(entry(list(ctx.args)))


def _intake(argv: list[str]) -> int:
    from order_intake import cli

    return cli.main(argv)


def _orders(argv: list[str]) -> int:
    from fulfillment_dispatch import cli

    return cli.main(argv)


def _mapping(argv: list[str]) -> int:
    from carrier_mapping import cli

    return asyncio.run(cli.run(argv))


_passthrough("intake", "What intake received and judged, its pull accounts (order_intake.cli).", _intake)
_passthrough("orders", "Orders' sync with their provider: show, list, retry, ... (fulfillment_dispatch.cli).", _orders)
_passthrough("mapping", "Carrier mapping's tenant mappings and catalogs (carrier_mapping.cli).", _mapping)


# Subcommand modules add themselves to `app` on import (one line each, here). A command run
# imports only its own module: the others' imports would double `ordersync trace`'s start-up.
SUBCOMMANDS = {
    "dead-letters": "libs.cli.dead_letters",
    "reconcile": "libs.cli.reconcile",
    "trace": "libs.cli.trace",
    "webhooks": "libs.cli.webhooks",
}
_OPTIONS_WITH_VALUES = {"--token-env", "--token-file"}  # the root options (see _options)


def _register_subcommands(argv: Sequence[str] | None = None) -> None:
    """Import the module of the subcommand `argv` names, or every one (for --help, or none named)."""
    named = _subcommand_of(argv or [])
    for name, module in SUBCOMMANDS.items():
        if named is None or name == named:
            importlib.import_module(module)


def _subcommand_of(argv: Sequence[str]) -> str | None:
    """The subcommand argv runs when it is one of SUBCOMMANDS and --help is not asked for."""
    args = iter(argv)
    for arg in args:
        if arg in _OPTIONS_WITH_VALUES:
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in SUBCOMMANDS else None
    return None


def main() -> None:
    _register_subcommands(sys.argv[1:])
    app(prog_name="ordersync")


if __name__ == "__main__":
    main()
