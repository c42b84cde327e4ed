"""Canonical Shipment -> Commerce7 fulfillment and order-update bodies (pure); read-back checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ordersync.common.v1 import shipment_pb2

from ..base import convert
from ..base.errors import MAX_DETAIL_CHARS, InvalidRequest, redact
from . import codes, schemas
from .orders import validate_order


def build_shipped_fulfillment(
    shipment: shipment_pb2.Shipment, *, notify_customer: bool, carrier: str | None = None
) -> dict[str, Any]:
    """Build the body of `POST /order/{id}/fulfillment/all` for a shipped shipment.

    Args:
        shipment: a shipment with at least one tracking number and `shipped_time`.
        notify_customer: sent as `sendTransactionEmail`; True makes Commerce7 e-mail the
            customer the shipping notice (the provider's own e-mails are suppressed).
        carrier: Commerce7's spelling of the carrier, from carrier mapping; when None, the
            shipment's canonical carrier is spelled from this connector's own table.

    Returns:
        `{type: "Shipped", fulfillmentDate, sendTransactionEmail, shipped: {carrier,
        trackingNumbers}, packageCount}`; `fulfillmentDate` is ISO-8601 UTC with
        milliseconds and "Z"; one package per tracking number.

    Raises:
        InvalidRequest: no tracking number, no shipped_time, or no carrier.
    """
    tracking = _tracking_numbers(shipment.tracking_numbers)
    if not tracking:
        raise InvalidRequest("commerce7 fulfillment: the shipment has no tracking number")
    if not shipment.HasField("shipped_time"):
        raise InvalidRequest("commerce7 fulfillment: the shipment has no shipped_time")
    canonical = shipment.carrier.strip()
    carrier = (carrier or "").strip() or codes.CARRIER_TO_COMMERCE7.get(canonical.upper(), canonical)
    if not carrier:
        raise InvalidRequest("commerce7 fulfillment: the shipment has no carrier")
    body = schemas.FulfillmentAllRequest(
        type=codes.FULFILLMENT_TYPE_SHIPPED,
        fulfillmentDate=convert.format_iso_millis(shipment.shipped_time),
        sendTransactionEmail=notify_customer,
        shipped=schemas.FulfillmentShippedRequest(
            carrier=carrier,
            trackingNumbers=tracking,
        ),
        packageCount=len(tracking),
    )
    return body.to_json_dict()


def build_delivered_update(
    shipment: shipment_pb2.Shipment, *, existing_meta_data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build the body of `PUT /order/{id}` that records delivery.

    Commerce7 documents no endpoint that sets delivery, so delivery is recorded on the order
    itself: `shippingStatus: "Delivered"` plus two metaData keys an operator (and our
    read-back) can see: `ordersync-shipping-status` and `ordersync-delivered-at`.

    Args:
        shipment: a shipment with `delivered_time`.
        existing_meta_data: the order's current metaData. A PUT may replace the whole
            metaData object, so pass it to keep other apps' keys; ours are merged over it.

    Returns:
        `{shippingStatus: "Delivered", metaData: {..., "ordersync-shipping-status":
        "Delivered", "ordersync-delivered-at": <ISO-8601 UTC with milliseconds>}}`.

    Raises:
        InvalidRequest: the shipment has no delivered_time.
    """
    if not shipment.HasField("delivered_time"):
        raise InvalidRequest("commerce7 delivered update: the shipment has no delivered_time")
    meta = dict(existing_meta_data or {})
    meta[codes.META_SHIPPING_STATUS] = codes.SHIPPING_STATUS_DELIVERED
    meta[codes.META_DELIVERED_AT] = convert.format_iso_millis(shipment.delivered_time)
    body = schemas.OrderUpdateRequest(shippingStatus=codes.SHIPPING_STATUS_DELIVERED, metaData=meta)
    return body.to_json_dict()


def build_voided_update(
    shipment: shipment_pb2.Shipment, *, existing_meta_data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build the body of `PUT /order/{id}` that shows the provider voided the order.

    Commerce7 has no status for "voided at the provider", and the order itself must be
    refunded or voided by staff in Commerce7, so ordersync only records the fact where staff
    look: `metaData` `ordersync-shipping-status: "Voided"` and, when the provider gave one,
    `ordersync-void-reason`. `shippingStatus` is left alone.

    Args:
        shipment: a CANCELLED shipment.
        existing_meta_data: the order's current metaData, kept (see build_delivered_update).

    Returns:
        `{metaData: {..., "ordersync-shipping-status": "Voided"[, "ordersync-void-reason": …]}}`.

    Raises:
        InvalidRequest: the shipment is not CANCELLED.
    """
    if shipment.status != shipment_pb2.SHIPMENT_STATUS_CANCELLED:
        raise InvalidRequest("commerce7 voided update: the shipment is not cancelled")
    meta = dict(existing_meta_data or {})
    meta[codes.META_SHIPPING_STATUS] = codes.SHIPPING_STATUS_VOIDED
    reason = redact(shipment.cancel_reason, limit=MAX_DETAIL_CHARS)
    if reason:
        meta[codes.META_VOID_REASON] = reason
    else:
        meta.pop(codes.META_VOID_REASON, None)
    return schemas.OrderUpdateRequest(metaData=meta).to_json_dict()


def order_has_fulfillment_with_tracking(
    order: Mapping[str, Any] | schemas.Order, tracking_numbers: Iterable[str]
) -> bool:
    """Tell whether the order already carries every one of these tracking numbers.

    Commerce7 takes no idempotency key, so writeback reads the order before posting a
    fulfillment: if a previous attempt (perhaps one that timed out) already recorded these
    tracking numbers, posting again would duplicate it.

    Args:
        order: the order from `GET /order/{id}` (raw JSON or validated).
        tracking_numbers: the shipment's tracking numbers.

    Returns:
        True if the order's fulfillments together list all of them; False when
        `tracking_numbers` is empty.

    Raises:
        InvalidResponse: `order` is not shaped like an order.
    """
    wanted = set(_tracking_numbers(tracking_numbers))
    if not wanted:
        return False
    parsed = validate_order(order)
    recorded = {
        number.strip()
        for fulfillment in parsed.fulfillments
        if fulfillment.shipped is not None
        for number in fulfillment.shipped.trackingNumbers
    }
    return wanted <= recorded


def fulfillments_to_retract(order: Mapping[str, Any] | schemas.Order, voided: Iterable[str]) -> list[str]:
    """The ids of the order's shipped fulfillments listing a tracking number whose label was voided.

    Commerce7 removes a fulfillment whole (there is no call taking one tracking number off), so
    a fulfillment listing a voided number among live ones is removed too; the writeback then
    posts the live numbers again as a new fulfillment.

    Raises:
        InvalidResponse: `order` is not shaped like an order.
    """
    taken_back = set(_tracking_numbers(voided))
    if not taken_back:
        return []
    return [
        fulfillment.id
        for fulfillment in validate_order(order).fulfillments
        if fulfillment.id
        and fulfillment.shipped is not None
        and taken_back & {number.strip() for number in fulfillment.shipped.trackingNumbers}
    ]


def order_has_delivery_recorded(order: Mapping[str, Any] | schemas.Order) -> bool:
    """Tell whether `build_delivered_update` was already applied to this order (read-back)."""
    parsed = validate_order(order)
    meta = parsed.metaData or {}
    return meta.get(codes.META_SHIPPING_STATUS) == codes.SHIPPING_STATUS_DELIVERED


def _tracking_numbers(numbers: Iterable[str]) -> list[str]:
    # Keep the provider's order, drop blanks and repeats.
    return list(dict.fromkeys(n.strip() for n in numbers if n and n.strip()))
