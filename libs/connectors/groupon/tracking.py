"""Tracking back to CommerceInterface (pure): tracking_info per line, validated before sending.

CommerceInterface keeps uploaded tracking and cannot correct it through the API (a correction is
a request to Groupon support), so nothing doubtful is sent: the courier must be an approved
code, the tracking number non-empty, every item a line id with a positive quantity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ordersync.common.v1 import shipment_pb2

from . import codes
from .errors import TrackingRefused, error_from_refusal
from .schemas import TrackingEntry


def build_tracking_info(external_id: str, shipment: shipment_pb2.Shipment, carrier: str | None) -> list[dict[str, Any]]:
    """`tracking_info` for one order's shipment: one entry per shipment item.

    Args:
        external_id: the Groupon order id (for messages).
        shipment: the shipment; `items` name the lines (channel_line_id = ci_lineitemid) and
            quantities; the first tracking number not voided is the one uploaded.
        carrier: the courier as carrier mapping spells it for Groupon (either accepted spelling).

    Raises:
        TrackingRefused: what would be uploaded is not acceptable, with what to fix.
    """
    code = codes.approved_code(carrier or "")
    if code is None:
        shown = f"courier {carrier.strip()[:40]!r}" if carrier and carrier.strip() else "no courier"
        raise TrackingRefused(
            f"groupon order {external_id}: {shown} is not on Groupon's approved courier list: "
            "map the warehouse's courier to a Groupon code in carrier mapping"
        )
    voided = set(shipment.voided_tracking_numbers)
    tracking = next((t.strip() for t in shipment.tracking_numbers if t.strip() and t not in voided), "")
    if not tracking:
        raise TrackingRefused(f"groupon order {external_id}: the shipment has no tracking number")
    if not shipment.items:
        raise TrackingRefused(
            f"groupon order {external_id}: the shipment names no lines (ci_lineitem_id and quantity per line)"
        )
    entries = []
    for index, item in enumerate(shipment.items):
        line_id = item.channel_line_id.strip()
        if not line_id:
            raise TrackingRefused(f"groupon order {external_id}: shipment item {index} has no ci_lineitem_id")
        if item.quantity < 1:
            raise TrackingRefused(
                f"groupon order {external_id}: shipment item {index} (line {line_id[:40]}) has no positive quantity"
            )
        entry = TrackingEntry(carrier=code, ci_lineitem_id=wire_id(line_id), tracking=tracking, quantity=item.quantity)
        entries.append(entry.to_json_dict())
    return entries


def wire_id(line_id: str) -> int | str:
    """A line id as CommerceInterface writes it: a number when it is all digits."""
    return int(line_id) if line_id.isdigit() else line_id


def check_tracking_response(body: Mapping[str, Any]) -> None:
    """Accept a tracking_notification answer: `success: true`, or the answer to an identical
    upload repeated ("already uploaded"), which is done too.

    Raises:
        TrackingRefused (or Unauthorized): CommerceInterface refused, with its reason.
    """
    if body.get("success") is True:
        return
    reason = body.get("reason")
    text = reason if isinstance(reason, str) else ""
    if codes.ALREADY_UPLOADED_WORDS in text.casefold():
        return
    raise error_from_refusal(text, "tracking_notification", refused=TrackingRefused)
