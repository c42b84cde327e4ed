"""Secrets named in configuration files: `env:NAME` or `file:PATH`, never a literal value.

Kept apart from the tenants file's parser so that what reads only a callers file or a token (the
`ordersync` command, auth) imports nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from libs.platform.config import ConfigError


@dataclass(frozen=True)
class Secret:
    """A resolved secret; repr and str never show the value."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "***"


def resolve_secret(reference: str, where: str) -> Secret:
    """Resolve `env:NAME` or `file:PATH` into a Secret; raise ConfigError naming `where`."""
    kind, _, target = reference.partition(":")
    if kind == "env":
        value = os.environ.get(target)
        if not value:
            raise ConfigError(f"{where}: environment variable {target} is not set")
        return Secret(value)
    if kind == "file":
        try:
            return Secret(Path(target).read_text().strip())
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file: {exc.strerror}") from None
    raise ConfigError(f"{where}: secret must be 'env:NAME' or 'file:PATH', not a literal value")


def resolve_secret_value(reference: str, where: str) -> str:
    """resolve_secret for connectors, which keep plain values in settings that hide them."""
    return resolve_secret(reference, where).value
