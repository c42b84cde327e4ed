"""Commerce7 connector (sales channel): orders in, fulfillments and delivery back."""

from .client import Commerce7Client
from .fulfillments import (
    build_delivered_update,
    build_shipped_fulfillment,
    build_voided_update,
    order_has_delivery_recorded,
    order_has_fulfillment_with_tracking,
)
from .orders import parse_order
from .settings import Commerce7Settings
from .webhooks import parse_webhook, verify_basic_auth

__all__ = [
    "Commerce7Client",
    "Commerce7Settings",
    "build_delivered_update",
    "build_shipped_fulfillment",
    "build_voided_update",
    "order_has_delivery_recorded",
    "order_has_fulfillment_with_tracking",
    "parse_order",
    "parse_webhook",
    "verify_basic_auth",
]
