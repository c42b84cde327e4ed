"""Carrier mapping settings from the environment, and the callers file they name."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from carrier_mapping.domain.access import Caller, CallerDirectory
from libs.platform.config import ConfigError, PlatformSettings, env_float, env_str
from libs.platform.tenants import resolve_secret

REFRESH_VARIABLE = "ORDERSYNC_MAPPING_REFRESH_S"
CALLERS_VARIABLE = "CARRIER_MAPPING_CALLERS_FILE"


@dataclass(frozen=True)
class CarrierMappingSettings:
    """Platform settings, how often the in-memory code tables are reloaded, and who may call."""

    platform: PlatformSettings
    refresh_s: float
    callers: CallerDirectory

    @classmethod
    def from_env(cls) -> CarrierMappingSettings:
        """Read the settings; raise ConfigError naming the first missing or malformed variable."""
        refresh_s = env_float(REFRESH_VARIABLE, 5.0)
        # A zero or negative interval would turn the refresh task into a busy loop on Postgres.
        if refresh_s <= 0:
            message = f"environment variable {REFRESH_VARIABLE} must be positive, got {refresh_s}"
            raise ConfigError(message)
        return cls(
            platform=PlatformSettings.from_env("carrier-mapping", "carrier_mapping", 50055),
            refresh_s=refresh_s,
            callers=load_callers(env_str(CALLERS_VARIABLE)),
        )


def load_callers(path: str | Path) -> CallerDirectory:
    """Parse the callers file; raise ConfigError naming the caller and key that is wrong.

    Format (TOML); tokens are secret references, `env:NAME` or `file:PATH`, never literals:

        [callers.fulfillment-dispatch]
        token = "env:CARRIER_MAPPING_TOKEN_DISPATCH"
        tenants = ["*"]          # or a list of tenant ids
        write = false            # may create, update, delete and import mappings
    """
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read callers file {path}: {exc}") from None
    entries = [_parse_caller(name, section) for name, section in document.get("callers", {}).items()]
    if not entries:
        raise ConfigError(f"callers file {path} defines no [callers.<name>] section")
    try:
        return CallerDirectory(entries)
    except ValueError as exc:
        raise ConfigError(f"callers file {path}: {exc}") from None


def _parse_caller(name: str, section: dict) -> tuple[str, Caller]:
    where = f"caller {name!r}"
    if "token" not in section:
        raise ConfigError(f"{where}: missing key 'token'")
    tenants = section.get("tenants")
    if not isinstance(tenants, list) or not tenants or not all(isinstance(t, str) and t for t in tenants):
        raise ConfigError(f"{where}: 'tenants' must be a non-empty list of tenant ids, or [\"*\"]")
    write = section.get("write", False)
    if not isinstance(write, bool):
        raise ConfigError(f"{where}: 'write' must be true or false")
    token = resolve_secret(section["token"], where).value
    return token, Caller(name, frozenset(tenants), write)
