"""Tracking writeback settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.auth import CALLERS_VARIABLE, CallerDirectory, load_callers
from libs.platform.config import PlatformSettings, env_float, env_int, env_str


@dataclass(frozen=True)
class WritebackSettings:
    """Platform settings, the carrier-mapping peer, the writer's tuning and who may call gRPC."""

    platform: PlatformSettings
    carrier_mapping_addr: str
    carrier_mapping_token: str
    lease_s: float
    claim_batch: int
    max_attempts: int
    callers: CallerDirectory
    # How often a writeback blocked for want of a channel carrier code is checked again (it is
    # also checked at once when carrier mapping announces a change of the tenant's mappings).
    blocked_recheck_s: float = 60.0

    @classmethod
    def from_env(cls) -> WritebackSettings:
        platform = PlatformSettings.from_env("tracking-writeback", "tracking_writeback", 50054)
        return cls(
            platform=platform,
            carrier_mapping_addr=env_str("CARRIER_MAPPING_ADDR"),
            carrier_mapping_token=env_str("CARRIER_MAPPING_TOKEN"),
            lease_s=env_float("ORDERSYNC_WRITEBACK_LEASE_S", 60.0),
            claim_batch=env_int("ORDERSYNC_WRITEBACK_CLAIM_BATCH", 50),
            max_attempts=env_int("ORDERSYNC_WRITEBACK_MAX_ATTEMPTS", 20),
            callers=load_callers(env_str(CALLERS_VARIABLE), platform.service_name),
            blocked_recheck_s=env_float("ORDERSYNC_WRITEBACK_BLOCKED_RECHECK_S", 60.0),
        )
