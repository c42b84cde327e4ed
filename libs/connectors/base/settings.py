"""Reading one connector account section of the tenants file, with errors naming the field.

Each connector parses its own account section with a SectionReader, so the messages an
operator reads have one shape: `tenant 'acme' [accounts.store] app_id: is required`. Secrets
are references (`env:NAME`, `file:PATH`) resolved by the SecretResolver the platform passes.
Unknown keys are refused, so a misspelt option is not silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .contract import SecretResolver

# Keys every account may carry, read by the platform rather than the connector.
COMMON_ACCOUNT_KEYS = frozenset({"connector", "poll_interval_s", "import_delay_s", "import_errors_to"})


class SettingsError(ValueError):
    """An account section is wrong; the message names where and which field."""


class SectionReader:
    """Typed reads from one section; call `finish()` last to refuse unknown keys."""

    def __init__(self, section: Mapping[str, Any], resolve: SecretResolver, where: str):
        self._section = section
        self._resolve = resolve
        self._where = where
        self._read: set[str] = set(COMMON_ACCOUNT_KEYS)

    def text(self, key: str, default: str | None = None) -> str:
        value = self._take(key, default)
        if not isinstance(value, str) or not value:
            raise self.error(key, "must be a non-empty string")
        return value

    def texts(self, key: str, default: Sequence[str], *, most: int) -> tuple[str, ...]:
        """A list of up to `most` non-empty strings, as a tuple (settings stay hashable)."""
        value = self._take(key, list(default))
        if not isinstance(value, list) or len(value) > most or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"must be a list of at most {most} non-empty strings")
        return tuple(value)

    def secret(self, key: str) -> str:
        reference = self.text(key)
        return self._resolve(reference, f"{self._where} {key}")

    def boolean(self, key: str, default: bool) -> bool:
        value = self._take(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def positive_number(self, key: str, default: float) -> float:
        value = self._take(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error(key, f"must be a positive number, not {value!r}")
        return float(value)

    def positive_int(self, key: str, default: int) -> int:
        value = self._take(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(key, f"must be a whole number of at least 1, not {value!r}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self._section) - self._read)
        if unknown:
            raise SettingsError(f"{self._where}: unknown key(s) {', '.join(map(repr, unknown))}")

    def error(self, key: str, problem: str) -> SettingsError:
        return SettingsError(f"{self._where} {key}: {problem}")

    def _take(self, key: str, default: Any) -> Any:
        self._read.add(key)
        if key in self._section:
            return self._section[key]
        if default is None:
            raise SettingsError(f"{self._where}: missing key {key!r}")
        return default
