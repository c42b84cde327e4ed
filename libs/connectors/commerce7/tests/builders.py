"""The Commerce7 suite's valid objects: one sample order, settings, and shipments to write back."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import shipment_pb2

from libs.connectors.base.testing import load_vendor_json
from libs.connectors.commerce7.settings import Commerce7Settings

TENANT = "demo-winery"
ORDER_ID = "5b1d0c1e-2f0a-4c7e-9d4f-0c1a7e2b9a01"
# base64("ordersync-app:s3cret-value"), written out so the test does not reuse the code's own
# encoding.
AUTHORIZATION = "Basic b3JkZXJzeW5jLWFwcDpzM2NyZXQtdmFsdWU="
TRACKING = ["1Z999AA10123456784", "1Z999AA10123456795"]
SHIPPED_AT = Timestamp(seconds=1714760400)  # 2024-05-03T18:20:00Z
DELIVERED_AT = Timestamp(seconds=1715115930)  # 2024-05-07T21:05:30Z


def web_ship_order(**changes: Any) -> dict[str, Any]:
    """A valid Web ship order to CA with UPS Ground "03" (the webhook sample's payload).

    Keyword arguments replace top-level fields; nested changes are made on the result.
    """
    order = load_vendor_json("commerce7", "webhook_order_create_web_ship.json")["payload"]
    order.update(changes)
    return order


def settings(**changes: Any) -> Commerce7Settings:
    """Valid settings for the demo tenant."""
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "app_id": "ordersync-app",
        "app_secret": "s3cret-value",
        "base_url": "https://api.commerce7.test/v1",
    }
    values.update(changes)
    return Commerce7Settings(**values)


def shipment(**changes: Any) -> shipment_pb2.Shipment:
    """A shipped UPS Ground shipment with two packages, delivered."""
    result = shipment_pb2.Shipment(
        status=shipment_pb2.SHIPMENT_STATUS_SHIPPED,
        tracking_numbers=TRACKING,
        carrier="UPS",
        service="UPS_GROUND",
        shipped_time=SHIPPED_AT,
        delivered_time=DELIVERED_AT,
    )
    for name, value in changes.items():
        if value is None:
            result.ClearField(name)
        elif name == "tracking_numbers":
            del result.tracking_numbers[:]
            result.tracking_numbers.extend(value)
        else:
            setattr(result, name, value)
    return result


# The body the reference describes for POST /order/{id}/fulfillment/all, for shipment().
EXPECTED_SHIPPED_BODY: dict[str, Any] = {
    "type": "Shipped",
    "fulfillmentDate": "2024-05-03T18:20:00.000Z",
    "sendTransactionEmail": True,
    "shipped": {"carrier": "UPS", "trackingNumbers": TRACKING},
    "packageCount": 2,
}

# The PUT /order/{id} body recording delivery of shipment() (README "Delivery").
EXPECTED_DELIVERED_BODY: dict[str, Any] = {
    "shippingStatus": "Delivered",
    "metaData": {
        "ordersync-shipping-status": "Delivered",
        "ordersync-delivered-at": "2024-05-07T21:05:30.000Z",
    },
}
