"""Vinoshipper order detail -> canonical Shipment (pure): state derived from timestamps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import shipment_pb2

from ..base import convert
from ..base.errors import InvalidResponse
from ..base.json_text import check_carriable
from . import codes
from .orders import validate_order_detail


def parse_order_detail(detail: Mapping[str, Any]) -> shipment_pb2.Shipment | None:
    """Derive the shipment state of a Vinoshipper order from its detail.

    Vinoshipper publishes no full status vocabulary, so the state comes from timestamps,
    first match wins:
      1. `canceledAt` set -> CANCELLED (with `cancelReason`);
      2. `deliveredAt` set -> DELIVERED;
      3. `shippedAt` set and at least one `packages[].trackingNumber` -> SHIPPED;
      4. `status` "FULFILLED" (label created, not yet scanned) -> FULFILLED;
      5. otherwise None: nothing to report yet.

    Args:
        detail: JSON of `GET /api/v3/p/orders/{orderNumber}` (or of a webhook's hrefV3).

    Returns:
        The shipment, or None. Carrier is canonical (upper-case, "UPS" when absent); service
        comes from the rate code table ("03" -> "UPS_GROUND"; empty for an unknown code);
        tracking numbers keep Vinoshipper's order without blanks or repeats.

    Raises:
        InvalidResponse: the detail is not an order detail, has an unreadable timestamp, or
            holds text no store can keep (a NUL character or a lone surrogate); the detail
            is untrusted input too, since a webhook's hrefV3 chose what was read.
    """
    check_carriable(detail, label="vinoshipper order detail", error=InvalidResponse)
    parsed = validate_order_detail(detail)
    shipping = parsed.shipping
    packages = shipping.packages if shipping else []
    tracking = list(
        dict.fromkeys(p.trackingNumber.strip() for p in packages if p.trackingNumber and p.trackingNumber.strip())
    )
    carrier = ((shipping.carrier if shipping else None) or codes.CARRIER_UPS).strip().upper()
    rate = codes.RATES_BY_CODE.get((shipping.rateCode or "").strip()) if shipping else None
    shipment = shipment_pb2.Shipment(
        carrier=carrier,
        service=rate.service if rate and carrier == codes.CARRIER_UPS else "",
        service_code=((shipping.rateCode if shipping else None) or "").strip(),
        tracking_numbers=tracking,
    )
    if parsed.shippedAt:
        shipment.shipped_time.CopyFrom(_timestamp(parsed.shippedAt, "shippedAt"))
    if parsed.deliveredAt:
        shipment.delivered_time.CopyFrom(_timestamp(parsed.deliveredAt, "deliveredAt"))

    if parsed.canceledAt:
        _timestamp(parsed.canceledAt, "canceledAt")
        shipment.status = shipment_pb2.SHIPMENT_STATUS_CANCELLED
        shipment.cancel_reason = (parsed.cancelReason or "").strip()
    elif parsed.deliveredAt:
        shipment.status = shipment_pb2.SHIPMENT_STATUS_DELIVERED
    elif parsed.shippedAt and tracking:
        shipment.status = shipment_pb2.SHIPMENT_STATUS_SHIPPED
    elif (parsed.status or "").strip().upper() == codes.STATUS_FULFILLED:
        shipment.status = shipment_pb2.SHIPMENT_STATUS_FULFILLED
    else:
        return None
    return shipment


def _timestamp(value: str, field_name: str) -> Timestamp:
    try:
        return convert.to_timestamp(convert.parse_datetime(value))
    except (ValueError, OverflowError) as exc:  # OverflowError: a date at the calendar's edge
        raise InvalidResponse(f"vinoshipper order detail: {field_name} is not an ISO-8601 date-time") from exc
