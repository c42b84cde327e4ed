"""Order history's step without a database: to OrderStep and back unchanged, and its JSON form."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.platform.order_history import Step, step_to_proto


def test_a_step_comes_back_from_its_order_step_unchanged_and_prints_its_time_as_iso():
    step = Step(
        time=datetime(2026, 12, 1, 12, 0, 0, 250000, tzinfo=UTC),
        service="fulfillment-dispatch",
        kind="provider_attempt",
        status="failed",
        reason_code="INVALID_ADDRESS",
        message="attempt 2: refused",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        failed=True,
        action="correct the address, then retry",
    )
    proto = step_to_proto(step)
    assert (proto.reason_code, proto.failed, proto.time.ToDatetime(UTC)) == ("INVALID_ADDRESS", True, step.time)
    assert Step.of(proto) == step
    assert step.as_json()["time"] == "2026-12-01T12:00:00.250000+00:00"
    assert step.as_json()["action"] == "correct the address, then retry"
