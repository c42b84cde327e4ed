"""The VinSuite suite's valid objects: a paid CellarPass reservation as an order, an account."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2

from libs.connectors.base.contract import Submission
from libs.connectors.base.convert import to_timestamp
from libs.connectors.base.testing import FakeClock
from libs.connectors.vinsuite.client import VinSuiteApi, VinSuiteClient
from libs.connectors.vinsuite.connector import VinSuiteAccount
from libs.connectors.vinsuite.orders import DateSource

BASE_URL = "https://ws.vinsuite.test/2.00/"
WINERY_ID = "4471"
ORDER_NUMBER = "CP-B1001"
SYNC_DAY = date(2026, 6, 20)


def usd(cents: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", minor_units=cents)


def valid_order(**changes: Any) -> order_pb2.Order:
    """A reservation for two at a tasting on 12 June, booked on 1 June, with guest notes."""
    order = order_pb2.Order(
        order_id="ord-1",
        tenant_id="tenant-a",
        channel="cellarpass",
        external_id="R-88231",
        external_number="B1001",
        customer=order_pb2.Customer(first_name="Ana", last_name="Reyes", email="ana@example.com", phone="7075550100"),
        bill_to=postal_address_pb2.PostalAddress(
            first_name="Ana",
            last_name="Reyes",
            address_lines=["1 Vine St", "Suite 2"],
            locality="Napa",
            administrative_area="CA",
            postal_code="94558",
            region_code="US",
        ),
        lines=[order_pb2.OrderLine(channel_line_id="EVT-1", sku="EVT-TASTING", quantity=2, unit_price=usd(4500))],
        customer_notes="Celebrating an anniversary",
        requested_ship_date="2026-06-12",
        placed_time=to_timestamp(datetime(2026, 6, 1, 23, 30, tzinfo=UTC)),
        currency_code="USD",
    )
    for name, value in changes.items():
        order.ClearField(name)
        if value is not None:
            if hasattr(value, "CopyFrom"):
                getattr(order, name).CopyFrom(value)
            else:
                setattr(order, name, value)
    return order


def account(**changes: Any) -> VinSuiteAccount:
    api = VinSuiteApi(BASE_URL, WINERY_ID, "cp-partner", "vs-password-value")
    fields: dict[str, Any] = {
        "order_number_prefix": "CP-",
        "order_date": DateSource.BOOKED,
        "pickup_date": DateSource.EVENT,
        "today": lambda: SYNC_DAY,
    }
    return VinSuiteAccount(api, **{**fields, **changes})


def client(transport, settings: VinSuiteAccount | None = None) -> VinSuiteClient:
    clock = FakeClock()
    return VinSuiteClient((settings or account()).api, transport=transport, sleep=clock.sleep)


def submission(order: order_pb2.Order | None = None, *, may_exist: bool = False) -> Submission:
    return Submission(
        order=order or valid_order(), order_number=ORDER_NUMBER, idempotency_key="key-1", may_exist=may_exist
    )
