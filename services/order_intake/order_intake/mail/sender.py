"""Sends the queued failed-import mails, as Cin7 does when its connector cannot export an order.

A pass claims due mails (leased, so replicas never send one twice at once), renders each from
`templates/import_failed.txt` and hands it to the platform's SMTP mailer (libs.platform.mail).
A mail the server did not take is tried again with the work queue's backoff, up to
`max_attempts`; a refusal that cannot change (a 5xx answer) fails it at once. Failed mails
stay in `import_mails` with their last error for an operator to look at and requeue.

The mail names the order by its channel number and lists each failed rule with what to fix;
nothing else of the order (no customer, no address) goes into it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from libs.connectors.registry import Registry
from libs.platform.mail import Mail, MailError, MailTemplates, SmtpMailer
from libs.platform.work_queue import retry_delay
from libs.platform.worker import PollingWorker
from order_intake.storage import mails
from order_intake.storage.mails import MailResult

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "import_failed.txt"


@dataclass(frozen=True)
class MailSettings:
    """How the queue is worked: mails a pass, lease, attempts, backoff, idle poll."""

    batch: int = 20
    lease_s: float = 120.0
    max_attempts: int = 8
    backoff_base_s: float = 30.0
    backoff_max_s: float = 3600.0
    idle_s: float = 5.0


class ImportMailSender:
    """Drains the failed-import mail queue; a component (start/stop), built once the pool is up."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        mailer: SmtpMailer,
        registry: Registry,
        settings: MailSettings = MailSettings(),
    ):
        self._pool = pool
        self._mailer = mailer
        self._registry = registry
        self._settings = settings
        self._templates = MailTemplates(TEMPLATES)
        self._worker = PollingWorker("intake-import-mails", self.run_once, idle_s=settings.idle_s)

    async def start(self) -> None:
        await self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()

    def wake(self) -> None:
        self._worker.wake()

    async def run_once(self) -> int:
        """Send what is due; return how many mails were attempted."""
        rows = await mails.claim_due(self._pool(), self._settings.batch, self._settings.lease_s)
        for row in rows:
            # Recorded one by one: a mail sent is marked sent before the next is tried, so a
            # crash mid-batch sends nothing already sent again.
            await mails.record_results(self._pool(), [await self._attempt(row)])
        return len(rows)

    def render(self, row: asyncpg.Record) -> Mail:
        """The mail of one queued row."""
        subject, body = self._templates.render(
            TEMPLATE,
            order_number=row["order_number"],
            channel_label=self._label(row["channel"]),
            account=row["account"],
            failures=mails.failures_of(row),
        )
        return Mail(to=row["recipient"], subject=subject, body=body, message_id=_message_id(row["mail_id"]))

    async def _attempt(self, row: asyncpg.Record) -> MailResult:
        attempt = row["attempts"]
        base = {"mail_id": row["mail_id"], "tenant_id": row["tenant_id"], "attempt": attempt}
        try:
            mail = self.render(row)
        except Exception as exc:  # a template that cannot be filled fails on every attempt
            problem = f"the mail could not be written: {type(exc).__name__}"
            log.exception("failed-import mail not written", extra={"fields": {"mail_id": row["mail_id"]}})
            return MailResult(**base, status="failed", next_attempt_at=None, activity=problem, last_error=problem)
        try:
            await self._mailer.send(mail)
        except MailError as exc:
            last = not exc.retryable or attempt >= self._settings.max_attempts
            fields = {"mail_id": row["mail_id"], "tenant_id": row["tenant_id"], "attempt": attempt}
            log.warning("failed-import mail not sent: %s", exc, extra={"fields": fields})
            if last:
                return MailResult(**base, status="failed", next_attempt_at=None, activity=str(exc), last_error=str(exc))
            delay = retry_delay(attempt, base_s=self._settings.backoff_base_s, cap_s=self._settings.backoff_max_s)
            return MailResult(
                **base,
                status="retry_wait",
                next_attempt_at=datetime.now(UTC) + delay,
                activity=f"{exc}; trying again",
                last_error=str(exc),
            )
        return MailResult(**base, status="sent", next_attempt_at=None, activity="sent", sent_at=datetime.now(UTC))

    def _label(self, channel: str) -> str:
        return self._registry.get(channel).info.label if channel in self._registry else channel


def _message_id(mail_id: str) -> str:
    # The same on every attempt, so a copy resent after a lost answer reads as the same mail.
    return f"<import-{hashlib.sha256(mail_id.encode()).hexdigest()[:32]}@ordersync>"
