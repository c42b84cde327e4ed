"""Tests of the error classes: reason codes, retryability, and operator-safe messages."""

from __future__ import annotations

import pytest

from libs.connectors.base import errors
from libs.connectors.base.errors import redact


@pytest.mark.parametrize(
    ("cls", "reason_code", "retryable"),
    [
        (errors.InvalidRequest, "INVALID_REQUEST", False),
        (errors.Unauthorized, "UNAUTHORIZED", False),
        (errors.NotFound, "NOT_FOUND", False),
        (errors.Conflict, "CONFLICT", False),
        (errors.Rejected, "PROVIDER_REJECTED", False),
        (errors.RateLimited, "RATE_LIMITED", True),
        (errors.Unavailable, "PROVIDER_UNAVAILABLE", True),
        (errors.Timeout, "PROVIDER_TIMEOUT", True),
        (errors.InvalidResponse, "INVALID_RESPONSE", False),
        (errors.InvalidWebhook, "MALFORMED_WEBHOOK", False),
    ],
)
def test_each_class_has_a_stable_reason_and_retryability(
    cls: type[errors.ConnectorError], reason_code: str, retryable: bool
) -> None:
    # Class attributes: decidable without an instance, as aiokafka's errors are.
    assert cls.reason_code == reason_code
    assert cls.retryable is retryable
    assert issubclass(cls, errors.ConnectorError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.InvalidRequest),
        (401, errors.Unauthorized),
        (403, errors.Unauthorized),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (410, errors.InvalidRequest),
        (422, errors.InvalidRequest),
        (429, errors.RateLimited),
        (500, errors.Unavailable),
        (504, errors.Unavailable),
    ],
)
def test_statuses_map_to_the_default_classes(status: int, cls: type) -> None:
    assert errors.error_class_for_status(status) is cls


def test_messages_and_details_hide_emails_phones_and_credentials() -> None:
    error = errors.InvalidRequest(
        "customer jane.doe@example.com (707) 555-0100 sent Authorization: Basic dXNlcjpwYXNz",
        details=["phone +1 707-555-0100 invalid"],
    )
    assert "jane" not in error.message
    assert "555" not in error.message
    assert "dXNlcjpwYXNz" not in error.message
    assert error.message == "customer [email] [phone] sent Authorization: Basic [redacted]"
    assert error.details == ["phone [phone] invalid"]


def test_tracking_numbers_and_dates_are_not_mistaken_for_phones() -> None:
    text = "1Z999AA10123456784 shipped 2024-05-03"
    assert redact(text) == text


def test_long_vendor_text_is_capped() -> None:
    error = errors.Rejected("x" * 5000, details=["y" * 5000] * 50)
    assert len(error.message) == errors.MAX_MESSAGE_CHARS
    assert len(error.details) == errors.MAX_DETAILS
    assert all(len(d) == errors.MAX_DETAIL_CHARS for d in error.details)


def test_str_leads_with_the_reason_code() -> None:
    error = errors.RateLimited("slow down", retry_after=2.0)
    assert str(error) == "RATE_LIMITED: slow down"
    assert error.status_code == 429
    assert error.retry_after == 2.0
