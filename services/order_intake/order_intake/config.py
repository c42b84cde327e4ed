"""Order intake settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.auth import CALLERS_VARIABLE, CallerDirectory, load_callers
from libs.platform.config import PlatformSettings, env_float, env_int, env_str
from libs.platform.mail import SmtpSettings
from libs.platform.reconciliation import ReconcileSettings
from libs.platform.secrets import resolve_secret_value
from order_intake.domain.intake import InputLimits
from order_intake.mail.sender import MailSettings
from order_intake.pulling import PullSettings


@dataclass(frozen=True)
class IntakeSettings:
    """Platform settings plus the webhook listener's port, group-commit size and input limits, who
    may call gRPC, how pulled channels are polled, and the SMTP server of failed-import mails
    (None: no mail is sent; mails stay queued)."""

    platform: PlatformSettings
    http_port: int
    max_commit_batch: int
    callers: CallerDirectory
    # Webhook bodies over max_body_bytes, and accepted orders whose event would be over
    # max_event_bytes, are refused (413) and kept.
    limits: InputLimits = InputLimits()
    pull: PullSettings = PullSettings()
    smtp: SmtpSettings | None = None
    mail: MailSettings = MailSettings()
    reconcile: ReconcileSettings = ReconcileSettings()

    @classmethod
    def from_env(cls) -> IntakeSettings:
        platform = PlatformSettings.from_env("order-intake", "order_intake", 50051)
        return cls(
            platform=platform,
            http_port=env_int("ORDERSYNC_HTTP_PORT", 8080),
            max_commit_batch=env_int("ORDERSYNC_INTAKE_COMMIT_BATCH", 200),
            callers=load_callers(env_str(CALLERS_VARIABLE), platform.service_name),
            limits=InputLimits(
                max_body_bytes=env_int("ORDERSYNC_INTAKE_MAX_BODY_BYTES", InputLimits.max_body_bytes),
                max_event_bytes=env_int("ORDERSYNC_INTAKE_MAX_EVENT_BYTES", InputLimits.max_event_bytes),
            ),
            pull=PullSettings(
                lease_s=env_float("ORDERSYNC_INTAKE_PULL_LEASE_S", PullSettings.lease_s),
                scan_s=env_float("ORDERSYNC_INTAKE_PULL_SCAN_S", PullSettings.scan_s),
                max_pollers=env_int("ORDERSYNC_INTAKE_PULL_MAX_POLLERS", PullSettings.max_pollers),
                backoff_base_s=env_float("ORDERSYNC_INTAKE_PULL_BACKOFF_BASE_S", PullSettings.backoff_base_s),
                backoff_max_s=env_float("ORDERSYNC_INTAKE_PULL_BACKOFF_MAX_S", PullSettings.backoff_max_s),
            ),
            smtp=SmtpSettings.from_env(resolve_secret_value),
            reconcile=ReconcileSettings.from_env("ORDERSYNC_INTAKE"),
            mail=MailSettings(
                max_attempts=env_int("ORDERSYNC_INTAKE_MAIL_MAX_ATTEMPTS", MailSettings.max_attempts),
                backoff_base_s=env_float("ORDERSYNC_INTAKE_MAIL_BACKOFF_BASE_S", MailSettings.backoff_base_s),
                backoff_max_s=env_float("ORDERSYNC_INTAKE_MAIL_BACKOFF_MAX_S", MailSettings.backoff_max_s),
            ),
        )
