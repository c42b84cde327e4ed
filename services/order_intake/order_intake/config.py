"""Order intake settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.auth import CALLERS_VARIABLE, CallerDirectory, load_callers
from libs.platform.config import PlatformSettings, env_int, env_str


@dataclass(frozen=True)
class IntakeSettings:
    """Platform settings plus the webhook listener's port and group-commit size, and who may call gRPC."""

    platform: PlatformSettings
    http_port: int
    max_commit_batch: int
    callers: CallerDirectory

    @classmethod
    def from_env(cls) -> IntakeSettings:
        platform = PlatformSettings.from_env("order-intake", "order_intake", 50051)
        return cls(
            platform=platform,
            http_port=env_int("ORDERSYNC_HTTP_PORT", 8080),
            max_commit_batch=env_int("ORDERSYNC_INTAKE_COMMIT_BATCH", 200),
            callers=load_callers(env_str(CALLERS_VARIABLE), platform.service_name),
        )
