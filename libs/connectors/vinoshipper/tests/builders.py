"""The Vinoshipper suite's valid objects: one canonical ship order and the account settings."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2

from libs.connectors.vinoshipper.settings import VinoshipperSettings

ORDER_NUMBER = "C7-napa-1001"
SOURCE_URL = "https://admin.example-winery.test/order/5b1d0c1e-2f0a-4c7e-9d4f-0c1a7e2b9a01"
# base64("vs-key:vs-secret"), written out so the test does not reuse the code's own encoding.
AUTHORIZATION = "Basic dnMta2V5OnZzLXNlY3JldA=="
BASE_URL = "https://vinoshipper.test"


def usd(cents: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", minor_units=cents)


def valid_order(**changes: Any) -> order_pb2.Order:
    """A canonical Web ship order to Napa, CA, UPS Ground, with a requested ship date.

    It is the order vendor/create_order_request.json was written for. Keyword arguments set
    top-level fields: None clears one, a list replaces a repeated field, a dict changes parts
    of a message field.
    """
    address = postal_address_pb2.PostalAddress(
        first_name="Jane",
        last_name="Doe",
        address_lines=["100 Vine Street", "Suite 2"],
        locality="Napa",
        administrative_area="CA",
        postal_code="94558",
        region_code="US",
        phone="707-555-0100",
        birth_date="1980-04-12",
    )
    order = order_pb2.Order(
        order_id="ord-7f3c2a",
        tenant_id="demo-winery",
        channel="commerce7",
        external_id="5b1d0c1e-2f0a-4c7e-9d4f-0c1a7e2b9a01",
        external_number="1001",
        revision="2024-05-01T17:03:15.120Z",
        order_type=order_pb2.ORDER_TYPE_SHIPPING,
        delivery_method=order_pb2.DELIVERY_METHOD_SHIP,
        origin=order_pb2.ORDER_ORIGIN_WEB,
        customer=order_pb2.Customer(
            customer_id="0e6f2a4b-7c1d-4e9f-a3b5-d8c2e1f0a9b7",
            first_name="Jane",
            last_name="Doe",
            email="jane.doe@example.com",
            phone="707-555-0100",
            birth_date="1980-04-12",
        ),
        ship_to=address,
        bill_to=address,
        lines=[
            order_pb2.OrderLine(
                channel_line_id="line-1", sku="CAB-2019-750", quantity=2, unit_price=usd(4500), requires_shipping=True
            ),
            order_pb2.OrderLine(
                channel_line_id="line-2", sku="CHARD-2021-750", quantity=1, unit_price=usd(2800), requires_shipping=True
            ),
            # A tasting fee ships nothing and must not reach Vinoshipper as a product.
            order_pb2.OrderLine(
                channel_line_id="line-3", sku="TASTING-FEE", quantity=1, unit_price=usd(0), requires_shipping=False
            ),
        ],
        shipping_method=order_pb2.ShippingMethod(
            carrier="UPS", service="Ground", code="03", title="UPS Ground", price=usd(2499)
        ),
        payment=order_pb2.Payment(status="Paid"),
        customer_notes="Leave with the front desk",
        requested_ship_date="2024-05-06",
        totals=order_pb2.OrderTotals(
            subtotal=usd(11800), shipping=usd(2499), tax=usd(1062), tip=usd(0), total=usd(15361)
        ),
        currency_code="USD",
        placed_time=Timestamp(seconds=1714582992),  # 2024-05-01T17:03:12Z
    )
    for name, value in changes.items():
        if value is None:
            order.ClearField(name)
        elif isinstance(value, (list, tuple)):
            del getattr(order, name)[:]
            getattr(order, name).extend(value)
        elif hasattr(value, "CopyFrom"):
            getattr(order, name).CopyFrom(value)
        elif isinstance(value, dict):
            # Partial change of a message field, e.g. totals={"tax": usd(1)}.
            for key, part in value.items():
                getattr(getattr(order, name), key).CopyFrom(part)
        else:
            setattr(order, name, value)
    return order


def settings(**changes: Any) -> VinoshipperSettings:
    """Valid settings for the demo producer account."""
    values: dict[str, Any] = {
        "api_key": "vs-key",
        "api_secret": "vs-secret",
        "base_url": BASE_URL,
        "order_number_prefix": "C7-napa",
    }
    values.update(changes)
    return VinoshipperSettings(**values)
