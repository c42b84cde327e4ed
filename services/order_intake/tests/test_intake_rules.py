"""Intake's pure rules: stable order identity and revision ordering."""

from ordersync.common.v1 import order_pb2

from libs.connectors.base.issues import Issue
from order_intake.domain.intake import Validation, key_problem, order_id_for, revision_is_newer, same_order_content


def test_order_id_is_the_same_for_every_revision_and_differs_between_tenants():
    first = order_id_for("acme", "commerce7", "9f1c")
    assert first == order_id_for("acme", "commerce7", "9f1c")
    assert first != order_id_for("other", "commerce7", "9f1c")
    assert first.startswith("ord_")


def test_later_updated_at_is_a_newer_revision():
    assert revision_is_newer("2026-11-23T10:00:01.000Z", "2026-11-23T10:00:00.999Z")


def test_replayed_older_revision_is_not_newer():
    assert not revision_is_newer("2026-11-23T09:00:00.000Z", "2026-11-23T10:00:00.000Z")
    assert not revision_is_newer("2026-11-23T10:00:00.000Z", "2026-11-23T10:00:00.000Z")


def test_offsets_are_compared_as_instants():
    assert not revision_is_newer("2026-11-23T11:00:00+01:00", "2026-11-23T10:00:00Z")


def test_validation_reason_names_every_field_with_a_problem():
    validation = Validation.from_issues([Issue("shipTo.stateCode", "is required"), Issue("items", "is empty")])
    assert not validation.valid
    assert validation.reason == "shipTo.stateCode: is required; items: is empty"


def test_no_issues_is_valid():
    assert Validation.from_issues([]) == Validation(True, "")


def _order(**fields) -> bytes:
    return order_pb2.Order(order_id="ord_1", tenant_id="acme", **fields).SerializeToString()


def test_a_revision_that_changes_only_the_revision_is_the_same_order():
    assert same_order_content(_order(revision="2026-01-01T00:00:00Z"), _order(revision="2026-01-01T00:05:00Z"))


def test_a_revision_that_changes_the_order_is_not_the_same_order():
    assert not same_order_content(_order(revision="a", gift_message="Happy"), _order(revision="b", gift_message="Hi"))


def test_a_deduplication_key_longer_than_an_index_can_hold_is_named():
    assert key_problem("9f1c" * 50, "2026-11-23T10:00:00.000Z") is None
    assert key_problem("9f1c" * 51, "2026-11-23T10:00:00.000Z") == "payload.id is longer than 200 characters"
    assert key_problem("9f1c", "x" * 201) == "payload.updatedAt is longer than 200 characters"
