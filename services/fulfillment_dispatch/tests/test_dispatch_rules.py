"""Dispatch's pure rules: what a provider's answer means, and shipment progress."""

from datetime import UTC, datetime, timedelta

from fulfillment_dispatch.domain.dispatch import (
    ProviderError,
    Status,
    outcome_of_error,
    retry_delay,
    shipment_advanced,
    unknown_skus,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_compliance_rejection_fails_for_good_and_lists_the_problems():
    error = ProviderError("COMPLIANCE_REJECTED", "Order is not compliant", False, ("Shipping to WA is not permitted",))
    outcome = outcome_of_error(error, attempts=1, max_attempts=8, now=NOW)
    assert outcome.status is Status.FAILED
    assert outcome.reason == "Order is not compliant: Shipping to WA is not permitted"


def test_provider_outage_waits_and_retries():
    error = ProviderError("PROVIDER_UNAVAILABLE", "Vinoshipper answered 503", True)
    outcome = outcome_of_error(error, attempts=1, max_attempts=8, now=NOW)
    assert outcome.status is Status.RETRY_WAIT
    assert outcome.next_attempt_at is not None
    assert NOW < outcome.next_attempt_at <= NOW + timedelta(seconds=2)


def test_outage_beyond_max_attempts_fails_and_says_so():
    error = ProviderError("PROVIDER_TIMEOUT", "no answer in 10 s", True)
    outcome = outcome_of_error(error, attempts=8, max_attempts=8, now=NOW)
    assert outcome.status is Status.FAILED
    assert "gave up after 8 attempts" in outcome.reason


def test_retry_delay_grows_and_is_capped():
    assert retry_delay(1) <= timedelta(seconds=2)
    assert timedelta(seconds=6) <= retry_delay(3) <= timedelta(seconds=8)
    assert retry_delay(30) <= timedelta(seconds=300)


def test_shipment_only_moves_forward():
    assert shipment_advanced("", "fulfilled")
    assert shipment_advanced("fulfilled", "shipped")
    assert shipment_advanced("shipped", "delivered")
    assert not shipment_advanced("delivered", "shipped")
    assert not shipment_advanced("shipped", "shipped")
    assert shipment_advanced("shipped", "cancelled")


def test_an_unknown_sku_refusal_names_the_skus_it_mentions_else_all_of_the_orders():
    named = ProviderError("UNKNOWN_SKU", "unknown product sku", False, ("AB-12 does not exist",))
    assert unknown_skus(["AB-1", "AB-12", "CD-3", "AB-12"], named) == ("AB-12",)
    silent = ProviderError("UNKNOWN_SKU", "a product is unknown", False)
    assert unknown_skus(["AB-1", "", "CD-3"], silent) == ("AB-1", "CD-3")
