"""The Cin7 suite's valid objects: the sample order, settings, a fixed clock, a shipment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.base.testing import FakeClock, load_vendor_json
from libs.connectors.cin7.client import BURST, Cin7Client
from libs.connectors.cin7.connector import Cin7Connector
from libs.connectors.cin7.rules import RuleContext
from libs.connectors.cin7.settings import Cin7Settings

NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
# base64("harbour-api:k3y-value"), written out so the test does not reuse the code's encoding.
AUTHORIZATION = "Basic aGFyYm91ci1hcGk6azN5LXZhbHVl"
SHIPPED_AT = Timestamp(seconds=1715342400)  # 2024-05-10T12:00:00Z


def sales_order(**changes: Any) -> dict[str, Any]:
    """The sample Fully Picked order; keyword arguments replace top-level fields."""
    order = load_vendor_json("cin7", "sales_order_fully_picked.json")
    order.update(changes)
    return order


def settings(**changes: Any) -> Cin7Settings:
    values: dict[str, Any] = {"username": "harbour-api", "api_key": "k3y-value", "base_url": "https://cin7.test/api"}
    return Cin7Settings(**(values | changes))


def context(**changes: Any) -> RuleContext:
    values: dict[str, Any] = {"fully_picked_stage": "Fully Picked", "now": NOW}
    return RuleContext(**(values | changes))


def connector() -> Cin7Connector:
    return Cin7Connector(clock=lambda: NOW)


def client(transport: Any, clock: FakeClock | None = None, **changes: Any) -> Cin7Client:
    """A client on `transport` whose backoff and pacing only advance `clock` (no real waits)."""
    clock = clock or FakeClock()
    limiter = KeyedRateLimiter(60, burst=BURST, clock=clock, sleep=clock.sleep)
    return Cin7Client(settings(**changes), transport=transport, rate_limiter=limiter, sleep=clock.sleep)


def shipment(**changes: Any) -> shipment_pb2.Shipment:
    values: dict[str, Any] = {
        "tracking_numbers": ["1Z999AA10123456784"],
        "carrier": "UPS",
        "service": "Ground",
        "shipped_time": SHIPPED_AT,
    }
    return shipment_pb2.Shipment(**(values | changes))
