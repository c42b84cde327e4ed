"""How the command prints: rich tables on a terminal, plain text when piped, JSON with --json.

Colours and styles are off when standard output is not a terminal (and with NO_COLOR), so
scripts and logs get plain text. Exit codes are one set for every subcommand (ExitCode).
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

from google.protobuf import timestamp_pb2
from rich.console import Console
from rich.table import Table
from rich.text import Text

PLAIN_WIDTH = 240  # piped output is not folded to 80 columns


class ExitCode(enum.IntEnum):
    DONE = 0
    REFUSED = 1  # the service said no (not found, not allowed, bad request): the message says why
    USAGE = 2  # the command was called wrongly or is not configured (no token, bad flag)
    UNAVAILABLE = 3  # a service could not be reached or timed out: try again
    PROBLEMS_FOUND = 4  # the command ran and found something to act on (reconcile, a failing step)


def console() -> Console:
    """The console for results (standard output); plain when not a terminal."""
    return Console(highlight=False, soft_wrap=not sys.stdout.isatty())


def error_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(value: Any) -> None:
    """One JSON document on standard output (what --json prints, for scripts)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table, on a terminal as wide as it is; piped, as wide as a row needs (up to PLAIN_WIDTH),
    so a row stays one line for logs and grep. Cells are plain text: a value may quote what a
    channel or a message sent, and must never be read as rich markup."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    out = console()
    if not sys.stdout.isatty():
        out.width = PLAIN_WIDTH
    out.print(table)


def timestamp_text(stamp: timestamp_pb2.Timestamp) -> str:
    """A protobuf time as operators read it: UTC, to the second."""
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")
