"""The ShipStation suite's valid objects: a canonical ship order, the account, a client on a recorder."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import money_pb2, order_pb2, postal_address_pb2

from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.base.testing import FakeClock, RequestRecorder
from libs.connectors.shipstation.client import ShipStationClient
from libs.connectors.shipstation.connector import ShipStationAccount
from libs.connectors.shipstation.settings import ShipStationSettings

BASE_URL = "https://ssapi.shipstation.test"
# base64("ss-key:ss-secret"), written out so the test does not reuse the code's own encoding.
AUTHORIZATION = "Basic c3Mta2V5OnNzLXNlY3JldA=="


def usd(cents: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", minor_units=cents)


def valid_order(number: str = "1001") -> order_pb2.Order:
    """A Cin7-style ship order to Napa, two bottles of 1.4 kg, with notes and a gift message."""
    address = postal_address_pb2.PostalAddress(
        first_name="Jane",
        last_name="Doe",
        address_lines=["100 Vine Street", "Suite 2"],
        locality="Napa",
        administrative_area="CA",
        postal_code="94558",
        region_code="US",
        phone="707-555-0100",
    )
    return order_pb2.Order(
        order_id="ord-7f3c2a",
        tenant_id="demo-cellar",
        channel="cin7",
        external_id="cin7-555",
        external_number=number,
        customer=order_pb2.Customer(first_name="Jane", last_name="Doe", email="jane.doe@example.com"),
        ship_to=address,
        bill_to=address,
        lines=[
            order_pb2.OrderLine(
                channel_line_id="line-1",
                sku="CAB-750",
                title="Cabernet 750ml",
                quantity=2,
                unit_price=usd(4500),
                weight_grams=1400,
                requires_shipping=True,
            ),
            order_pb2.OrderLine(sku="TASTING-FEE", title="Tasting fee", quantity=1, requires_shipping=False),
        ],
        shipping_method=order_pb2.ShippingMethod(title="USPS Priority"),
        gift=True,
        gift_message="Happy birthday",
        customer_notes="Leave at the door",
        internal_notes="VIP",
        totals=order_pb2.OrderTotals(total=usd(10500), shipping=usd(1500), tax=usd(0)),
        currency_code="USD",
        placed_time=Timestamp(seconds=1714554000),  # 2024-05-01 09:00 UTC
    )


def settings() -> ShipStationSettings:
    return ShipStationSettings("ss-key", "ss-secret", base_url=BASE_URL)


def account(**changes: object) -> ShipStationAccount:
    values: dict = {"api": settings(), "webhook_token": "path-token", "from_postal_code": "95476"}
    values.update(changes)
    return ShipStationAccount(**values)


def client(recorder: RequestRecorder, clock: FakeClock | None = None) -> ShipStationClient:
    """A client on the recorder whose pacing waits on a fake clock (nothing sleeps for real)."""
    clock = clock or FakeClock()
    fake = clock

    async def pace(seconds: float) -> None:
        # At least a millisecond: the bucket may ask for a wait below the fake clock's float
        # resolution, which would never advance it.
        await fake.sleep(max(seconds, 0.001))

    limiter = KeyedRateLimiter(40, burst=2, clock=clock, sleep=pace)
    return ShipStationClient(settings(), transport=recorder.transport, rate_limiter=limiter, sleep=clock.sleep)
