"""Dispatch decisions: what a provider's answer means for an order. Pure, no I/O, no protos."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from libs.platform.work_queue import retry_delay


class Status(Enum):
    """An order's sync status. Its title, what an operator reads, is its provider's word for it."""

    SENDING = "sending"
    RETRY_WAIT = "retry_wait"
    SENT = "sent"
    FAILED = "failed"
    NOT_REQUIRED = "not_required"
    VOIDED = "voided"
    AWAITING_PULL = "awaiting_pull"  # held for a provider that fetches it (a pull-mode route)

    def title(self, titles: Mapping[str, str] | None = None) -> str:
        """The status in the words of `titles` (the provider connector's `info.status_titles`);
        plain words for an order with no provider, e.g. one never routed to any."""
        return (titles or {}).get(self.value) or _PLAIN_TITLES[self]


_PLAIN_TITLES = {
    Status.SENDING: "Sending",
    Status.RETRY_WAIT: "Sending (retrying)",
    Status.SENT: "Sent",
    Status.FAILED: "Failed to Send",
    Status.NOT_REQUIRED: "Not Required to Send",
    Status.VOIDED: "Voided",
    Status.AWAITING_PULL: "Waiting for the provider to fetch",
}


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt: the new status, why, and when to try again (RETRY_WAIT only)."""

    status: Status
    reason_code: str = ""
    reason: str = ""
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class ProviderError:
    """A provider or lookup failure as dispatch sees it (translated from a connector error)."""

    reason_code: str
    message: str
    retryable: bool
    details: tuple[str, ...] = ()


UNKNOWN_SKU = "UNKNOWN_SKU"  # a provider does not know a line's SKU (libs.connectors.base.errors.UnknownProduct)


def unknown_skus(submitted: Sequence[str], error: ProviderError) -> tuple[str, ...]:
    """The submitted SKUs an UNKNOWN_SKU refusal names (in its message or details); all of the
    order's SKUs when it names none of them, as one of those is the unknown one."""
    words = " ".join((error.message, *error.details))
    skus = list(dict.fromkeys(sku for sku in submitted if sku))
    named = [sku for sku in skus if sku in words]
    # "AB-1" inside "AB-12": a SKU named only as part of a longer named one is not meant.
    named = [sku for sku in named if not any(sku != other and sku in other for other in named)]
    return tuple(named or skus)


def sent() -> Outcome:
    return Outcome(Status.SENT)


def outcome_of_error(error: ProviderError, *, attempts: int, max_attempts: int, now: datetime) -> Outcome:
    """Failed for good when the error is permanent or retries are used up; else retry later."""
    reason = error.message
    if error.details:
        reason = f"{reason}: " + "; ".join(error.details)
    if not error.retryable:
        return Outcome(Status.FAILED, error.reason_code, reason)
    if attempts >= max_attempts:
        return Outcome(Status.FAILED, error.reason_code, f"{reason} (gave up after {attempts} attempts)")
    return Outcome(Status.RETRY_WAIT, error.reason_code, reason, now + retry_delay(attempts))


def activity_of_error(error: ProviderError, attempt: int) -> str:
    """The activity line of a failed attempt; a compliance pre-check lists the problems it found."""
    if error.reason_code == "COMPLIANCE_PRECHECK_FAILED" and error.details:
        return "compliance pre-check: " + "; ".join(error.details)
    return f"attempt {attempt}: {error.message}"


_SHIPMENT_RANK = {"": 0, "fulfilled": 1, "shipped": 2, "delivered": 3, "cancelled": 4}


def shipment_advanced(stored: str, reported: str) -> bool:
    """True when the provider's report moves the shipment forward (webhooks repeat and reorder)."""
    return _SHIPMENT_RANK.get(reported, 0) > _SHIPMENT_RANK.get(stored, 0)


def next_status_check(checks_without_news: int, *, base_s: float, max_s: float) -> timedelta:
    """When to read a sent order back again: soon after sending, then ever less often.

    A lost webhook then costs at most one interval, while orders that wait weeks to ship (club
    runs, requested ship dates) cost a read every `max_s`, not every `base_s`.
    """
    return timedelta(seconds=min(max_s, base_s * 2 ** min(checks_without_news, 16)))
