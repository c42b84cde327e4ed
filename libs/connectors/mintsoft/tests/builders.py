"""The Mintsoft suite's valid objects: a Groupon-style UK order, its mapped items, an account."""

from __future__ import annotations

from typing import Any

from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2

from libs.connectors.base.contract import Submission, SubmissionItem
from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.base.testing import FakeClock
from libs.connectors.mintsoft.client import BURST, MintsoftClient
from libs.connectors.mintsoft.connector import MintsoftAccount
from libs.connectors.mintsoft.settings import MintsoftSettings

BASE_URL = "https://mintsoft.test/api/"
ORDER_NUMBER = "GR-1001"
API_KEY = "key-7f0c9e1d"
CALLBACK_TOKEN = "cb-token-value"


def gbp(pence: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="GBP", minor_units=pence)


def valid_order(**changes: Any) -> order_pb2.Order:
    """A Groupon order of two lines (a bottle x2 and a gift set x1) to Leeds."""
    order = order_pb2.Order(
        order_id="ord-1",
        tenant_id="tenant-a",
        channel="groupon",
        external_id="FFB7A681BE",
        external_number="1001",
        order_type=order_pb2.ORDER_TYPE_SHIPPING,
        delivery_method=order_pb2.DELIVERY_METHOD_SHIP,
        customer=order_pb2.Customer(first_name="Jane", last_name="Doe", email="jane@example.com"),
        ship_to=postal_address_pb2.PostalAddress(
            first_name="Jane",
            last_name="Doe",
            address_lines=["10 High Street", "Flat 2"],
            locality="Leeds",
            administrative_area="West Yorkshire",
            postal_code="LS1 4AP",
            region_code="GB",
            phone="0113 496 0000",
        ),
        lines=[
            order_pb2.OrderLine(channel_line_id="54553918", sku="GRP-RED", title="Red wine", quantity=2),
            order_pb2.OrderLine(channel_line_id="54553919", sku="GRP-SET", title="Gift set", quantity=1),
        ],
        totals=order_pb2.OrderTotals(total=gbp(3499)),
        currency_code="GBP",
    )
    for name, value in changes.items():
        order.ClearField(name)
        if value is not None:
            if isinstance(value, list):
                getattr(order, name).extend(value)
            elif hasattr(value, "CopyFrom"):
                getattr(order, name).CopyFrom(value)
            else:
                setattr(order, name, value)
    return order


# The order's lines through the tenant's product map: an alternative code, and a bundle of two.
MAPPED_ITEMS = (
    SubmissionItem("54553918", "WH-RED-750", 2, "Red wine"),
    SubmissionItem("54553919", "WH-GLASS", 2, "Glass"),
    SubmissionItem("54553919", "WH-BOX", 1, "Box"),
)


def submission(**changes: Any) -> Submission:
    values: dict[str, Any] = {
        "order": valid_order(),
        "order_number": ORDER_NUMBER,
        "idempotency_key": "dispatch-7a1c0b2e9f",
        "items": MAPPED_ITEMS,
    }
    values.update(changes)
    return Submission(**values)


def account(**changes: Any) -> MintsoftAccount:
    values: dict[str, Any] = {
        "api": MintsoftSettings("ms-user", "ms-password", base_url=BASE_URL),
        "order_number_prefix": "GR-",
        "callback_base_url": "https://hub.example.test",
        "callback_token": CALLBACK_TOKEN,
    }
    values.update(changes)
    return MintsoftAccount(**values)


def client(transport: Any, settings: MintsoftSettings | None = None) -> MintsoftClient:
    """A client on `transport` whose pacing and backoff run on a fake clock (no real waits)."""
    settings = settings or account().api
    clock = FakeClock()
    limiter = KeyedRateLimiter(settings.requests_per_minute, burst=BURST, clock=clock, sleep=clock.sleep)
    return MintsoftClient(settings, transport=transport, rate_limiter=limiter, sleep=clock.sleep)
