"""Order intake settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.config import PlatformSettings, env_int


@dataclass(frozen=True)
class IntakeSettings:
    """Platform settings plus the webhook listener's port and group-commit size."""

    platform: PlatformSettings
    http_port: int
    max_commit_batch: int

    @classmethod
    def from_env(cls) -> IntakeSettings:
        return cls(
            platform=PlatformSettings.from_env("order-intake", "order_intake", 50051),
            http_port=env_int("ORDERSYNC_HTTP_PORT", 8080),
            max_commit_batch=env_int("ORDERSYNC_INTAKE_COMMIT_BATCH", 200),
        )
