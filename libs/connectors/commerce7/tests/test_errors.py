"""Tests of error_from_response: Commerce7 error bodies -> ConnectorError (parse error)."""

from __future__ import annotations

import httpx
import pytest

from libs.connectors.base import errors
from libs.connectors.base.testing import json_response, load_vendor_json
from libs.connectors.commerce7.errors import error_from_response


def c7_error(status: int, type_: str, message: str) -> dict[str, object]:
    """A Commerce7 error body `{statusCode, type, message, errors[]}`."""
    return {"statusCode": status, "type": type_, "message": message, "errors": []}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.InvalidRequest),
        (401, errors.Unauthorized),
        (403, errors.Unauthorized),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (422, errors.InvalidRequest),
        (429, errors.RateLimited),
        (500, errors.Unavailable),
        (503, errors.Unavailable),
    ],
)
def test_statuses_map_to_the_contract_classes(status: int, cls: type[errors.ConnectorError]) -> None:
    error = error_from_response(json_response(status, c7_error(status, "x", "no")), "get_order")
    assert type(error) is cls
    assert error.status_code == status


def test_validation_errors_become_details() -> None:
    body = load_vendor_json("commerce7", "error_validation.json")
    error = error_from_response(json_response(422, body), "create_fulfillment_all")
    assert isinstance(error, errors.InvalidRequest)
    assert error.message == "commerce7 create_fulfillment_all: HTTP 422 validationError: Validation failed"
    assert error.details == ['shipped.trackingNumbers: "trackingNumbers" must contain at least 1 items']


def test_not_found_names_the_operation_and_the_vendor_message() -> None:
    body = load_vendor_json("commerce7", "error_not_found.json")
    error = error_from_response(json_response(404, body), "get_order")
    assert error.message == "commerce7 get_order: HTTP 404 notFound: Order not found"
    assert error.reason_code == "NOT_FOUND"


def test_rate_limited_carries_retry_after() -> None:
    response = json_response(429, c7_error(429, "tooManyRequests", "slow"), headers={"Retry-After": "12"})
    error = error_from_response(response, "list_orders")
    assert isinstance(error, errors.RateLimited)
    assert error.retry_after == 12.0


def test_a_body_that_is_not_commerce7_json_still_maps_by_status() -> None:
    error = error_from_response(httpx.Response(502, text="<html>Bad gateway</html>"), "get_order")
    assert isinstance(error, errors.Unavailable)
    assert error.message == "commerce7 get_order: HTTP 502: Bad Gateway"


def test_personal_data_echoed_by_the_vendor_is_redacted() -> None:
    body = c7_error(400, "validation", "email jane.doe@example.com is taken")
    body["errors"] = [{"field": "phone", "message": "707-555-0100 is not valid"}]
    error = error_from_response(json_response(400, body), "update_order")
    assert "jane.doe" not in error.message
    assert error.details == ["phone: [phone] is not valid"]
