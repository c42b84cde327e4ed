"""Carrier mapping settings from the environment, and the callers file they name."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.auth import CALLERS_VARIABLE, CallerDirectory, load_callers
from libs.platform.config import ConfigError, PlatformSettings, env_float, env_optional

REFRESH_VARIABLE = "ORDERSYNC_MAPPING_REFRESH_S"
# Carrier mapping's own callers file, kept from before every service checked its callers; when
# unset, the file every service reads (ORDERSYNC_GRPC_CALLERS_FILE).
OWN_CALLERS_VARIABLE = "CARRIER_MAPPING_CALLERS_FILE"


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
        platform = PlatformSettings.from_env("carrier-mapping", "carrier_mapping", 50055)
        callers_file = env_optional(OWN_CALLERS_VARIABLE) or env_optional(CALLERS_VARIABLE)
        if callers_file is None:
            raise ConfigError(
                f"environment variable {CALLERS_VARIABLE} (or {OWN_CALLERS_VARIABLE}) is required but not set"
            )
        return cls(platform=platform, refresh_s=refresh_s, callers=load_callers(callers_file, platform.service_name))
