"""ShipStation shipments (labels) -> canonical Shipment (pure); voided labels are no shipment,
their tracking numbers are carried as voided. Also the page of labels a poll reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import money_pb2, shipment_pb2

from ..base import convert
from ..base.errors import InvalidResponse
from ..base.json_text import check_carriable
from . import codes

CENT = Decimal("0.01")


def parse_shipments(shipments: Sequence[Mapping[str, Any]]) -> shipment_pb2.Shipment | None:
    """The order's shipment from its ShipStation labels, or None when it has none.

    A voided label (`voided: true`) is not a shipment: it is left out. An order whose every
    label is voided reads as FULFILLED (no longer shipped: ShipStation puts it back to awaiting
    shipment) with no tracking and the voided numbers, so a channel told of them takes them
    back; it is no shipment the customer hears of. The live labels make one Shipment: status SHIPPED (ShipStation ships when the label is
    bought and marks the order shipped), every tracking number in label order, the latest
    label's carrier (canonical) and service (`serviceCode` upper-cased, e.g. "UPS_GROUND",
    and as `service_code`), the sum of `shipmentCost` as the carrier fee, the earliest
    `shipDate` as the shipped time, and the items of every label. The tracking numbers of
    voided labels (a label reprinted, say) are `voided_tracking_numbers`, never tracking, so
    the channel can take back one it was told before.

    Raises:
        InvalidResponse: a label of the wrong shape, an unreadable date or cost, or text no
            store can keep (the list may come from a webhook's resource_url).
    """
    check_carriable(list(shipments), label="shipstation shipments", error=InvalidResponse)
    live = [s for s in shipments if not _voided(s)]
    if not live:
        voided = voided_tracking(shipments)
        if not voided:
            return None
        return shipment_pb2.Shipment(status=shipment_pb2.SHIPMENT_STATUS_FULFILLED, voided_tracking_numbers=voided)
    live.sort(key=lambda s: (str(s.get("createDate") or ""), _int(s.get("shipmentId"))))
    latest = live[-1]
    tracking = [t for t in dict.fromkeys(str(s.get("trackingNumber") or "").strip() for s in live) if t]
    service_code = str(latest.get("serviceCode") or "").strip()
    shipment = shipment_pb2.Shipment(
        status=shipment_pb2.SHIPMENT_STATUS_SHIPPED,
        tracking_numbers=tracking,
        carrier=codes.canonical_carrier(str(latest.get("carrierCode") or "")),
        service=service_code.upper(),
        service_code=service_code,
        items=[item for s in live for item in _items(s)],
        voided_tracking_numbers=[t for t in voided_tracking(shipments) if t not in tracking],
    )
    fee = sum((_decimal(s.get("shipmentCost"), "shipmentCost") for s in live), Decimal(0))
    if fee:
        shipment.carrier_fee.CopyFrom(money_minor(fee))
    dates = sorted(str(s["shipDate"]) for s in live if s.get("shipDate"))
    if dates:
        shipment.shipped_time.CopyFrom(_timestamp(dates[0]))
    return shipment


def voided_tracking(shipments: Sequence[Mapping[str, Any]]) -> list[str]:
    """Tracking numbers of voided labels: what a channel must not show (or must retract)."""
    return [t for t in dict.fromkeys(str(s.get("trackingNumber") or "").strip() for s in shipments if _voided(s)) if t]


@dataclass(frozen=True)
class ShipmentsPage:
    """One page of a poll: the labels by order number (in the page's order), the newest
    createDate seen (the next watermark), and whether more labels wait after it."""

    by_order: Mapping[str, Sequence[Mapping[str, Any]]]
    watermark: str
    more: bool


def shipments_page(answer: Mapping[str, Any], cursor: str) -> ShipmentsPage:
    """Read a `GET /shipments` page sorted by createDate, oldest first, asked from `cursor`.

    `more` is True when ShipStation has further pages and the watermark moved: asking again
    from the new watermark then gives the next labels (a page whose every label has the
    cursor's own createDate cannot move it, so the poll stops there rather than loop).

    Raises:
        InvalidResponse: no `shipments` list, or labels of the wrong shape.
    """
    labels = answer.get("shipments")
    if not isinstance(labels, list) or not all(isinstance(s, Mapping) for s in labels):
        raise InvalidResponse("shipstation shipments: the answer has no 'shipments' list")
    check_carriable(labels, label="shipstation shipments", error=InvalidResponse)
    by_order: dict[str, list[Mapping[str, Any]]] = {}
    watermark = cursor
    for label in labels:
        number = str(label.get("orderNumber") or "")
        if number:
            by_order.setdefault(number, []).append(label)
        created = label.get("createDate")
        if isinstance(created, str) and created > watermark:
            # ShipStation writes every createDate in one fixed format, so text order is time order.
            watermark = created
    pages = answer.get("pages")
    more = isinstance(pages, int) and pages > 1 and watermark != cursor
    return ShipmentsPage(by_order, watermark, more)


def money_minor(amount: Decimal) -> money_pb2.Money:
    """A dollar Decimal as Money in cents, rounded half up (ShipStation writes cents already)."""
    cents = int((amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())
    return money_pb2.Money(currency_code=codes.CURRENCY, minor_units=cents)


def _voided(shipment: Mapping[str, Any]) -> bool:
    if not isinstance(shipment, Mapping):
        raise InvalidResponse("shipstation shipments: a shipment is not an object")
    return shipment.get("voided") is True


def _items(shipment: Mapping[str, Any]) -> list[shipment_pb2.ShipmentItem]:
    items = shipment.get("shipmentItems") or []
    if not isinstance(items, list):
        raise InvalidResponse("shipstation shipments: shipmentItems is not a list")
    return [
        shipment_pb2.ShipmentItem(
            channel_line_id=str(i.get("lineItemKey") or ""),
            sku=str(i.get("sku") or ""),
            quantity=_int(i.get("quantity")),
        )
        for i in items
        if isinstance(i, Mapping)
    ]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _decimal(value: Any, name: str) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidResponse(f"shipstation shipments: {name} is not a number") from None
    if not amount.is_finite():
        raise InvalidResponse(f"shipstation shipments: {name} is not a number")
    return amount


def _timestamp(value: str) -> Timestamp:
    text = value.strip()
    if len(text) == 10:  # shipDate is a date ("2024-05-02"): midnight UTC of that day
        text += "T00:00:00Z"
    try:
        moment = convert.parse_datetime(text)
    except (ValueError, OverflowError):
        raise InvalidResponse("shipstation shipments: shipDate is not an ISO-8601 date") from None
    return convert.to_timestamp(moment)
