"""`python -m operator_console`: serve the console until SIGTERM; or a helper command:

python -m operator_console hash-password        # a staff file password hash (asks twice)
python -m operator_console embed-url --tenant T --order ORD_ID --base-url https://console.example
"""

from __future__ import annotations

import asyncio
import getpass
import sys

import typer

from libs.platform.config import ConfigError
from libs.platform.secrets import resolve_secret
from operator_console.security import EmbedGrant, embed_token
from operator_console.staff import hash_password

cli = typer.Typer(add_completion=False, no_args_is_help=False, help=__doc__)


@cli.callback(invoke_without_command=True)
def main(context: typer.Context) -> None:
    """Serve the console (with no command)."""
    if context.invoked_subcommand is None:
        from operator_console.service import serve

        asyncio.run(serve())


@cli.command("hash-password")
def hash_password_command() -> None:
    """Print the staff file's `password` value for a password typed twice (never echoed)."""
    first = getpass.getpass("Password: ")
    if len(first) < 12:
        raise typer.BadParameter("use at least 12 characters")
    if getpass.getpass("Again: ") != first:
        raise typer.BadParameter("the two passwords differ")
    print(hash_password(first))


@cli.command("embed-url")
def embed_url(
    tenant: str = typer.Option(..., help="the order's tenant"),
    order: str = typer.Option(..., help="ordersync's order id (ord_...)"),
    base_url: str = typer.Option(
        "http://127.0.0.1:8090", help="the console's address as the channel's admin reaches it"
    ),
    secret: str = typer.Option("env:ORDERSYNC_CONSOLE_EMBED_SECRET", help="the embed secret, as env:NAME or file:PATH"),
) -> None:
    """Print an embed URL for one order, valid for an hour (what a channel app mints per page view)."""
    try:
        key = resolve_secret(secret, "--secret").value
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    token = embed_token(key, EmbedGrant(tenant, order))
    print(f"{base_url.rstrip('/')}/embed/orders/{order}?token={token}")


if __name__ == "__main__":
    sys.exit(cli())
