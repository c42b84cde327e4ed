"""Tests of the backoff schedule and Retry-After parsing (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.connectors.base.http import RetryPolicy, parse_retry_after


def test_backoff_ceiling_doubles_and_is_capped_at_five_seconds() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n, 1.0) for n in (1, 2, 3, 4, 5, 6, 7)] == [
        0.2,
        0.4,
        0.8,
        1.6,
        3.2,
        5.0,
        5.0,
    ]
    assert policy.backoff(3, 0.5) == 0.4
    assert policy.backoff(3, 0.0) == 0.0


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
