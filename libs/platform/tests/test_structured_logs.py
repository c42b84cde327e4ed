"""Structured logs: JSON lines from structlog and stdlib calls alike, with trace and order ids, redacted."""

from __future__ import annotations

import io
import json
import logging

import structlog
from opentelemetry.sdk.trace import TracerProvider

from libs.platform.redaction import REDACTED, redact_text, redact_value
from libs.platform.telemetry import log_formatter, setup_logging


def _capture(logger_name: str) -> tuple[logging.Logger, io.StringIO]:
    setup_logging("order-intake")  # configures structlog; the handler below writes to a buffer
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log_formatter("order-intake"))
    logger = logging.getLogger(logger_name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    return logger, out


def _lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_stdlib_record_is_a_json_line_with_the_standard_fields_and_extra_fields():
    logger, out = _capture("ordersync.test.stdlib")
    logger.warning("pull failed after %d tries", 3, extra={"fields": {"account": "main", "retry_in_s": 2.5}})
    [entry] = _lines(out)
    assert entry["message"] == "pull failed after 3 tries"
    assert entry["level"] == "WARNING"
    assert entry["service"] == "order-intake"
    assert entry["logger"] == "ordersync.test.stdlib"
    assert entry["account"] == "main" and entry["retry_in_s"] == 2.5
    assert entry["time"].endswith("Z")
    assert "trace_id" not in entry


def test_log_line_in_a_span_carries_its_trace_and_span_ids():
    logger, out = _capture("ordersync.test.span")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logger.info("inside")
    [entry] = _lines(out)
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert entry["span_id"] == format(span.get_span_context().span_id, "016x")


def test_order_fields_bound_in_contextvars_reach_stdlib_lines():
    logger, out = _capture("ordersync.test.bound")
    with structlog.contextvars.bound_contextvars(order_id="ord-1", tenant="acme"):
        logger.info("routed")
    logger.info("after")
    first, after = _lines(out)
    assert (first["order_id"], first["tenant"]) == ("ord-1", "acme")
    assert "order_id" not in after


def test_personal_data_and_secrets_never_reach_a_log_line():
    logger, out = _capture("ordersync.test.redact")
    logger.error(
        "refused for jane.doe@example.com, call +1 555-123-4567",
        extra={
            "fields": {
                "email": "x@y.z",
                "ship_to": {"firstName": "Jane", "address1": "1 Vine St", "city_code": "NAPA"},
                "Authorization": "Bearer abc.def",
                "url": "https://api.example/orders?APIKey=s3cret&page=2",
                "order_id": "ord-7",
            }
        },
    )
    [entry] = _lines(out)
    text = json.dumps(entry)
    for secret in ("jane.doe@example.com", "555-123-4567", "Jane", "1 Vine St", "abc.def", "s3cret", "x@y.z"):
        assert secret not in text
    assert entry["ship_to"]["city_code"] == "NAPA"  # not a personal field: kept
    assert entry["url"].endswith("APIKey=[REDACTED]&page=2")
    assert entry["order_id"] == "ord-7"


def test_exception_text_is_redacted_too():
    logger, out = _capture("ordersync.test.exc")
    try:
        raise ValueError("no customer for bob@example.org")
    except ValueError:
        logger.exception("import failed")
    [entry] = _lines(out)
    assert entry["level"] == "ERROR"
    assert "ValueError" in entry["exception"] and "bob@example.org" not in entry["exception"]


def test_structlog_logger_writes_the_same_shape():
    setup_logging("compliance-routing")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(log_formatter("compliance-routing"))
    logging.getLogger("ordersync.test.native").handlers[:] = [handler]
    logging.getLogger("ordersync.test.native").propagate = False
    structlog.get_logger("ordersync.test.native").info("decided", phone="555.123.4567", outcome="send")
    [entry] = _lines(out)
    assert entry["message"] == "decided" and entry["level"] == "INFO" and entry["outcome"] == "send"
    assert entry["phone"] == REDACTED and entry["service"] == "compliance-routing"


def test_shapes_that_are_not_personal_data_stay_readable():
    kept = "order 2026-12-01 ord_9f3a 1Z999AA10123456784 total 1234.56 tenant acme"
    assert redact_text(kept) == kept
    assert redact_value({"items": [{"phone": "1"}, "a@b.co"]}) == {"items": [{"phone": REDACTED}, REDACTED]}
