"""A Mintsoft order (GET /api/Order/{id}, a Connect Action callback, an Order/List row) ->
the shipment state ordersync keeps (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ordersync.common.v1 import shipment_pb2
from pydantic import ValidationError

from ..base import convert
from ..base.errors import InvalidResponse, InvalidWebhook
from ..base.models import describe_validation_error
from . import codes, schemas
from .orders import LINE_IDS_NAME, decode_line_ids

_TRACKING_SEPARATORS = re.compile(r"[,;\s]+")
_MAX_BODY = 1_000_000


def parse_order(data: Any, *, what: str = "order") -> schemas.Order:
    """Validate an order object read from Mintsoft.

    Raises:
        InvalidResponse: not an order object (no integer ID).
    """
    if not isinstance(data, dict):
        raise InvalidResponse(f"mintsoft {what}: not an order object")
    try:
        return schemas.Order.model_validate(data)
    except ValidationError as exc:
        raise InvalidResponse(f"mintsoft {what}: {describe_validation_error(exc)}") from None


def parse_callback(body: bytes) -> schemas.Order:
    """A Connect Action callback body: the order JSON, as `GET /api/Order/{id}` answers.

    Raises:
        InvalidWebhook: not JSON, not an order object, no ID or OrderNumber.
    """
    if len(body) > _MAX_BODY:
        raise InvalidWebhook("mintsoft callback: the body is too large")
    try:
        data = json.loads(body)
        order = parse_order(data, what="callback")
    except (ValueError, RecursionError, InvalidResponse):
        raise InvalidWebhook("mintsoft callback: the body is not a Mintsoft order") from None
    if not order.OrderNumber.strip():
        raise InvalidWebhook("mintsoft callback: the order has no OrderNumber")
    return order


def kept_line_ids(order: schemas.Order) -> dict[str, int]:
    """The channel line ids (and channel quantities) kept with the order at create."""
    for pair in order.OrderNameValues:
        if pair.Name == LINE_IDS_NAME:
            return decode_line_ids(pair.Value)
    return {}


def status_name(order: schemas.Order, statuses: Mapping[str, int]) -> str:
    """The order's status name (e.g. "DESPATCHED") by the account's status table; "" if unknown."""
    return next((name for name, sid in statuses.items() if sid == order.OrderStatusId), "")


def shipment_from_order(order: schemas.Order, statuses: Mapping[str, int]) -> shipment_pb2.Shipment | None:
    """The order's shipment: SHIPPED once despatched, CANCELLED once cancelled, else None.

    Args:
        order: the order as Mintsoft shows it.
        statuses: status name -> id from `GET /api/Order/Statuses` (ids are not hard-coded).

    A despatched order carries its tracking number(s), the despatch time, the courier service
    as Mintsoft names it (`service_code`: carrier mapping translates it per tenant to the
    channel's courier code), and one item per channel line kept at create with its channel
    quantity.
    """
    name = status_name(order, statuses)
    if name in codes.CANCELLED_STATUSES:
        return shipment_pb2.Shipment(
            status=shipment_pb2.SHIPMENT_STATUS_CANCELLED, cancel_reason="cancelled in Mintsoft"
        )
    if name not in codes.DESPATCHED_STATUSES:
        return None
    service = (order.CourierServiceName or "").strip()
    shipment = shipment_pb2.Shipment(
        status=shipment_pb2.SHIPMENT_STATUS_SHIPPED,
        tracking_numbers=[t for t in _TRACKING_SEPARATORS.split(order.TrackingNumber or "") if t],
        carrier=service,
        service=service,
        service_code=service,
        items=[
            shipment_pb2.ShipmentItem(channel_line_id=line_id, quantity=quantity)
            for line_id, quantity in kept_line_ids(order).items()
        ],
    )
    despatched = parse_mintsoft_time(order.DespatchDate)
    if despatched is not None:
        shipment.shipped_time.CopyFrom(convert.to_timestamp(despatched))
    return shipment


def parse_mintsoft_time(value: str | None) -> datetime | None:
    """A Mintsoft date-time (ISO-8601, usually without an offset: taken as UTC), or None."""
    if not value:
        return None
    try:
        return convert.parse_datetime(value)
    except ValueError:
        return None


# -- the polling cursor


def cursor_text(moment: datetime) -> str:
    """A LastUpdated watermark as Mintsoft's filters take it: whole seconds, no offset."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def query_since(watermark: str) -> str:
    """The SinceLastUpdated to ask for: one second before the watermark.

    Whether Mintsoft's filter is inclusive, and how finely it compares, is not published:
    asking from a second earlier re-reads the orders updated in the watermark's own second
    (harmless: a notice applied twice changes nothing) and never skips one of them.
    """
    moment = parse_mintsoft_time(watermark)
    return cursor_text(moment - timedelta(seconds=1)) if moment is not None else watermark


def last_updated(order: schemas.Order) -> datetime | None:
    return parse_mintsoft_time(order.LastUpdated)


def validate_rows(rows: list[dict[str, Any]]) -> list[schemas.Order]:
    return [parse_order(row, what="list_orders row") for row in rows]
