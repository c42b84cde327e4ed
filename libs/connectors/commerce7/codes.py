"""Commerce7 code tables: channel, delivery method, purchase type and carrier <-> ordersync."""

from __future__ import annotations

from types import MappingProxyType

from ordersync.common.v1 import order_pb2

CHANNEL_NAME = "commerce7"
DEFAULT_CURRENCY = "USD"

# `channel`: where in Commerce7 the order was placed. Inbound and Outbound are orders keyed in
# by staff (phone and outbound sales), so they count as back-office orders.
CHANNEL_TO_ORIGIN = MappingProxyType(
    {
        "Web": order_pb2.ORDER_ORIGIN_WEB,
        "Club": order_pb2.ORDER_ORIGIN_CLUB,
        "POS": order_pb2.ORDER_ORIGIN_POS,
        "Inbound": order_pb2.ORDER_ORIGIN_ADMIN,
        "Outbound": order_pb2.ORDER_ORIGIN_ADMIN,
        "Marketplace": order_pb2.ORDER_ORIGIN_MARKETPLACE,
    }
)

# `orderDeliveryMethod`.
DELIVERY_METHODS = MappingProxyType(
    {
        "Ship": order_pb2.DELIVERY_METHOD_SHIP,
        "Pickup": order_pb2.DELIVERY_METHOD_PICKUP,
        "Carry Out": order_pb2.DELIVERY_METHOD_CARRY_OUT,
    }
)

# The order type of an ordinary sale, by delivery method: pickup and carry-out are both
# collected by the customer.
SALE_ORDER_TYPES = MappingProxyType(
    {
        order_pb2.DELIVERY_METHOD_SHIP: order_pb2.ORDER_TYPE_SHIPPING,
        order_pb2.DELIVERY_METHOD_PICKUP: order_pb2.ORDER_TYPE_PICKUP,
        order_pb2.DELIVERY_METHOD_CARRY_OUT: order_pb2.ORDER_TYPE_PICKUP,
    }
)

# `purchaseType` values that name a refund or an exchange themselves (compared lower-case).
# Ordinary sales carry other values (e.g. "Order"); see README "Order type".
PURCHASE_TYPE_ORDER_TYPES = MappingProxyType(
    {
        "refund": order_pb2.ORDER_TYPE_REFUND,
        "exchange": order_pb2.ORDER_TYPE_EXCHANGE,
    }
)

# Canonical carrier (ordersync) -> Commerce7 `shipped.carrier` spelling. Unknown carriers are
# sent as they are.
CARRIER_TO_COMMERCE7 = MappingProxyType(
    {
        "UPS": "UPS",
        "FEDEX": "FedEx",
        "GSO": "GSO",
        "USPS": "USPS",
        "DHL": "DHL",
    }
)

FULFILLMENT_TYPE_SHIPPED = "Shipped"
SHIPPING_STATUS_DELIVERED = "Delivered"
# Our own marker value: Commerce7 has no status for an order voided at the provider.
SHIPPING_STATUS_VOIDED = "Voided"

# metaData keys ordersync writes on an order (Commerce7 has no endpoint that sets delivery).
META_SHIPPING_STATUS = "ordersync-shipping-status"
META_DELIVERED_AT = "ordersync-delivered-at"
META_VOID_REASON = "ordersync-void-reason"

# metaData keys ordersync reads.
META_INTERNAL_NOTES = "internalNotes"
META_REQUESTED_SHIP_DATE = "requestedShipDate"
