"""Vinoshipper connector (compliance and fulfilment provider): orders out, shipments back."""

from .client import CreatedOrder, VinoshipperClient
from .orders import (
    build_create_order_request,
    parse_compliance_response,
    parse_create_order_response,
    provider_order_number,
)
from .settings import VinoshipperSettings
from .shipments import parse_order_detail
from .webhooks import parse_webhook

__all__ = [
    "CreatedOrder",
    "VinoshipperClient",
    "VinoshipperSettings",
    "build_create_order_request",
    "parse_compliance_response",
    "parse_create_order_response",
    "parse_order_detail",
    "parse_webhook",
    "provider_order_number",
]
