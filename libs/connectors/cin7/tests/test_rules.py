"""The import rules, one by one: each fails alone with its own code, and all are reported."""

from __future__ import annotations

from datetime import timedelta

import pytest

from libs.connectors.cin7 import rules
from libs.connectors.cin7.schemas import SalesOrder
from libs.connectors.cin7.tests.builders import NOW, context, sales_order


def order(**changes) -> SalesOrder:
    return SalesOrder.model_validate(sales_order(**changes))


def codes(**changes) -> list[str]:
    return [failure.code for failure in rules.check_import(order(**changes), context())]


def test_the_sample_passes_every_rule():
    assert codes() == []


@pytest.mark.parametrize("status", ["Draft", "Void", 0, 2])
def test_drafts_and_void_orders_are_not_approved(status):
    assert codes(status=status) == ["NOT_APPROVED"]


def test_status_as_its_number_and_unapproved_flag():
    assert codes(status=1) == []
    assert codes(status="Approved", isApproved=False) == ["NOT_APPROVED"]
    assert codes(status=None, isApproved=True) == []
    assert codes(status=None, isApproved=None) == ["NOT_APPROVED"]


def test_only_the_configured_fully_picked_stage_is_imported():
    assert codes(stage="New") == ["NOT_FULLY_PICKED"]
    assert codes(stage="fully picked ") == []  # Cin7's UI is not strict about case or spaces
    ready = rules.check_import(order(stage="Ready to Ship"), context(fully_picked_stage="Ready to Ship"))
    assert ready == []
    failure = rules.fully_picked(order(), context(fully_picked_stage="Ready to Ship"))
    assert failure is not None and "'Ready to Ship'" in failure.sentence


@pytest.mark.parametrize("country", [None, "", "  "])
def test_a_delivery_country_is_required(country):
    assert codes(deliveryCountry=country) == ["NO_DELIVERY_COUNTRY"]


def test_created_date_or_etd_within_sixty_days():
    old = (NOW - timedelta(days=61)).isoformat()
    recent = (NOW - timedelta(days=59)).isoformat()
    assert codes(createdDate=old, estimatedDeliveryDate=None) == ["TOO_OLD"]
    assert codes(createdDate=old, estimatedDeliveryDate=recent) == []
    assert codes(createdDate=recent, estimatedDeliveryDate=old) == []
    assert codes(createdDate="not a date", estimatedDeliveryDate=None) == ["TOO_OLD"]
    # The clock is the one passed in, not the machine's.
    later = context(now=NOW + timedelta(days=400))
    assert [f.code for f in rules.check_import(order(), later)] == ["TOO_OLD"]


def test_an_order_needs_a_line_left_to_dispatch():
    shipped = [{"id": 1, "code": "CAB-750", "qty": 6, "qtyShipped": 6}, {"id": 2, "code": "", "qty": 0}]
    assert codes(lineItems=shipped) == ["NOTHING_TO_DISPATCH"]
    assert codes(lineItems=[]) == ["NOTHING_TO_DISPATCH"]
    partly = [{"id": 1, "code": "CAB-750", "qty": 6, "qtyShipped": 4}]
    assert codes(lineItems=partly) == []


def test_every_failed_rule_is_named_in_rule_order_with_its_sentence():
    failures = rules.check_import(
        order(
            status="Draft",
            stage="New",
            deliveryCountry="",
            createdDate="2020-01-01T00:00:00Z",
            estimatedDeliveryDate=None,
            lineItems=[],
        ),
        context(),
    )
    assert [f.code for f in failures] == [
        "NOT_APPROVED",
        "NOT_FULLY_PICKED",
        "NO_DELIVERY_COUNTRY",
        "TOO_OLD",
        "NOTHING_TO_DISPATCH",
    ]
    assert len({f.sentence for f in failures}) == 5
    issue = failures[0].issue()
    # The code is the Issue's own, not part of its sentence.
    assert (issue.field, issue.code) == ("status", "NOT_APPROVED") and "NOT_APPROVED" not in issue.message


def test_phone_falls_back_to_mobile():
    assert rules.contact_phone(order()) == "+1 415 555 0142"
    assert rules.contact_phone(order(phone=" +1 415 555 0100 ")) == "+1 415 555 0100"
    assert rules.contact_phone(order(phone=None, mobile=None)) == ""


def test_each_sentence_says_what_to_fix_and_names_no_value_of_the_order():
    failures = rules.check_import(
        order(
            status="Void",
            stage="On Hold",
            deliveryCountry=" ",
            createdDate="2020-01-01T00:00:00Z",
            estimatedDeliveryDate=None,
            lineItems=[],
        ),
        context(),
    )
    for failure in failures:
        what, _, fix = failure.sentence.partition(": ")
        assert what and fix, failure.code
        assert "On Hold" not in failure.sentence and "2020" not in failure.sentence
