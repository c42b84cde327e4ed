"""Tests of error_from_response: Vinoshipper error bodies -> ConnectorError (parse error)."""

from __future__ import annotations

import pytest

from libs.connectors.base import errors
from libs.connectors.base.testing import json_response, load_vendor_json
from libs.connectors.vinoshipper.errors import (
    ComplianceRejected,
    OrderAlreadyExists,
    UnknownSku,
    error_from_response,
)


def test_not_compliant_is_a_compliance_rejection_with_the_problems() -> None:
    body = load_vendor_json("vinoshipper", "error_not_compliant.json")
    error = error_from_response(json_response(422, body), "create_order")
    assert type(error) is ComplianceRejected
    assert isinstance(error, errors.Rejected)
    assert error.reason_code == "COMPLIANCE_REJECTED"
    assert error.retryable is False
    assert error.details == [
        "Producer is not licensed to ship to UT",
        "Order exceeds the annual volume limit for this customer",
    ]
    assert error.message == "vinoshipper create_order: HTTP 422: Order is not compliant"


def test_an_unknown_sku_is_its_own_invalid_request() -> None:
    body = load_vendor_json("vinoshipper", "error_unknown_sku.json")
    error = error_from_response(json_response(400, body), "create_order")
    assert type(error) is UnknownSku
    assert isinstance(error, errors.InvalidRequest)
    assert error.reason_code == "UNKNOWN_SKU"
    assert error.details == ["products[1].productId: Unknown product SKU 'ROSE-2022-750'"]


def test_other_bad_requests_are_invalid_requests_with_field_details() -> None:
    body = {"message": "Invalid order", "errors": [{"field": "shipToAddress.stateCode", "message": "is required"}]}
    error = error_from_response(json_response(400, body), "create_order")
    assert type(error) is errors.InvalidRequest
    assert error.details == ["shipToAddress.stateCode: is required"]


def test_an_existing_order_number_on_create_is_order_already_exists() -> None:
    body = load_vendor_json("vinoshipper", "error_order_exists.json")
    error = error_from_response(json_response(409, body), "create_order")
    assert type(error) is OrderAlreadyExists
    assert isinstance(error, errors.Conflict)
    assert error.reason_code == "ORDER_ALREADY_EXISTS"
    assert error.message == "vinoshipper create_order: HTTP 409: Order number C7-napa-1001 already exists"


def test_a_conflict_elsewhere_is_a_plain_conflict() -> None:
    error = error_from_response(json_response(409, {"message": "Order is shipped"}), "cancel_order")
    assert type(error) is errors.Conflict


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, errors.Unauthorized),
        (403, errors.Unauthorized),
        (404, errors.NotFound),
        (422, errors.InvalidRequest),
        (429, errors.RateLimited),
        (500, errors.Unavailable),
        (503, errors.Unavailable),
    ],
)
def test_statuses_map_to_the_contract_classes(status: int, cls: type[errors.ConnectorError]) -> None:
    error = error_from_response(json_response(status, {"message": "no"}), "get_order")
    assert type(error) is cls


def test_rate_limited_carries_retry_after() -> None:
    error = error_from_response(json_response(429, {"message": "slow"}, headers={"Retry-After": "3"}), "get_order")
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after == 3.0
