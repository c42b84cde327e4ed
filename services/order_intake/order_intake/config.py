"""Order intake settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.config import PlatformSettings, env_int


@dataclass(frozen=True)
class IntakeSettings:
    """Platform settings plus the webhook listener's port, group-commit size and input limits."""

    platform: PlatformSettings
    http_port: int
    max_commit_batch: int
    # A webhook body over this is refused (413). Well under Kafka's 1 MiB message limit, so an
    # accepted order's event fits.
    max_body_bytes: int = 512 * 1024
    # An accepted order whose OrderAccepted event (key, envelope, headers) is over this is
    # refused (413) and kept, never written to the outbox: the broker would refuse it. Under
    # Kafka's 1 MiB (message.max.bytes, and the producer's max_request_size), with room for the
    # record batch's own overhead.
    max_event_bytes: int = 900 * 1024

    @classmethod
    def from_env(cls) -> IntakeSettings:
        return cls(
            platform=PlatformSettings.from_env("order-intake", "order_intake", 50051),
            http_port=env_int("ORDERSYNC_HTTP_PORT", 8080),
            max_commit_batch=env_int("ORDERSYNC_INTAKE_COMMIT_BATCH", 200),
            max_body_bytes=env_int("ORDERSYNC_INTAKE_MAX_BODY_BYTES", 512 * 1024),
            max_event_bytes=env_int("ORDERSYNC_INTAKE_MAX_EVENT_BYTES", 900 * 1024),
        )
