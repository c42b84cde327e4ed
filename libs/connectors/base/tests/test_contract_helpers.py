"""The contract's two small helpers: one-at-a-time submit and the service's shared limiter."""

from __future__ import annotations

import pytest
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import ClientResources, Submission, Submitted, submit_one_by_one
from libs.connectors.base.errors import Rejected, Unavailable
from libs.connectors.base.ratelimit import KeyedRateLimiter

pytestmark = pytest.mark.asyncio


def submission(number: str) -> Submission:
    return Submission(order=order_pb2.Order(), order_number=number, idempotency_key=f"key-{number}")


async def test_each_item_is_submitted_in_turn_and_a_refusal_is_that_items_result() -> None:
    seen: list[str] = []

    async def submit_one(item: Submission) -> Submitted:
        seen.append(item.order_number)
        if item.order_number == "B":
            raise Rejected("no such product")
        if item.order_number == "C":
            raise Unavailable("503")
        return Submitted(f"taken as {item.order_number}")

    results = await submit_one_by_one([submission(n) for n in "ABCD"], submit_one)

    assert seen == ["A", "B", "C", "D"]
    assert [type(r).__name__ for r in results] == ["Submitted", "Rejected", "Unavailable", "Submitted"]
    assert results[0] == Submitted("taken as A")
    assert isinstance(results[2], Unavailable) and results[2].retryable


async def test_an_error_that_is_not_a_connector_error_is_not_swallowed() -> None:
    async def submit_one(item: Submission) -> Submitted:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        await submit_one_by_one([submission("A")], submit_one)


async def test_the_limiter_is_the_services_when_it_lends_one_and_none_otherwise() -> None:
    made: list[tuple[str, int, int]] = []

    def factory(scope: str, per_minute: int, burst: int) -> KeyedRateLimiter:
        made.append((scope, per_minute, burst))
        return KeyedRateLimiter(per_minute, burst=burst)

    assert ClientResources().limiter_for("acme", 120, 5) is None
    assert isinstance(ClientResources(rate_limiter=factory).limiter_for("acme", 120, 5), KeyedRateLimiter)
    assert made == [("acme", 120, 5)]
