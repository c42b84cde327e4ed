"""Carrier mapping settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.config import ConfigError, PlatformSettings, env_float

REFRESH_VARIABLE = "ORDERSYNC_MAPPING_REFRESH_S"


@dataclass(frozen=True)
class CarrierMappingSettings:
    """Platform settings plus how often the in-memory code tables are reloaded from Postgres."""

    platform: PlatformSettings
    refresh_s: float

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
        )
