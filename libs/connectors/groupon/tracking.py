"""Tracking back to CommerceInterface (pure): tracking_info per line, validated before sending.

CommerceInterface keeps uploaded tracking and cannot correct it through the API (a correction is
a request to Groupon support), so nothing doubtful is sent: the courier must be an approved
code, the tracking number non-empty, every item a line id with a positive quantity and, where
the order's lines are known, a line of this order shipping no more than was ordered.

A line shipped whole goes by `tracking_notification` (per ci_lineitem_id); a line shipped in
part goes by v4's `lineitem_tracking_notification`, per fulfillment_lineitem_id with the
quantity in this parcel, so the rest can follow under another tracking number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ordersync.common.v1 import order_pb2, shipment_pb2

from . import codes
from .errors import TrackingRefused, error_from_refusal
from .schemas import LineTrackingEntry, TrackingEntry


@dataclass(frozen=True)
class TrackingUpload:
    """What one shipment uploads: `whole` lines by tracking_notification, `partial` ones by
    lineitem_tracking_notification (each a list of JSON entries; either may be empty)."""

    whole: list[dict[str, Any]] = field(default_factory=list)
    partial: list[dict[str, Any]] = field(default_factory=list)


def build_upload(
    external_id: str,
    shipment: shipment_pb2.Shipment,
    carrier: str | None,
    order_lines: Sequence[order_pb2.OrderLine] = (),
) -> TrackingUpload:
    """Split the shipment's entries into whole and partial lines (all whole when the order's
    lines are not known).

    Raises:
        TrackingRefused: as build_tracking_info, or an item naming a line not of this order,
            shipping more than the line's quantity, or shipping part of a line that has no
            fulfillment_lineitem_id.
    """
    entries = build_tracking_info(external_id, shipment, carrier)
    if not order_lines:
        return TrackingUpload(whole=entries)
    lines = {line.channel_line_id: line for line in order_lines}
    upload = TrackingUpload()
    for entry in entries:
        line = lines.get(str(entry["ci_lineitem_id"]))
        if line is None:
            raise TrackingRefused(
                f"groupon order {external_id}: line {str(entry['ci_lineitem_id'])[:40]} is not a line of this order"
            )
        if entry["quantity"] > line.quantity:
            raise TrackingRefused(
                f"groupon order {external_id}: line {line.channel_line_id} ships {entry['quantity']}"
                f" of {line.quantity} ordered"
            )
        if entry["quantity"] == line.quantity:
            upload.whole.append(entry)
            continue
        fulfillment_line = _option(line, codes.OPTION_FULFILLMENT_LINE)
        if not fulfillment_line:
            raise TrackingRefused(
                f"groupon order {external_id}: line {line.channel_line_id} ships {entry['quantity']} of"
                f" {line.quantity}, and a partial shipment needs its fulfillment_lineitem_id, which it lacks"
            )
        partial = LineTrackingEntry(
            carrier=entry["carrier"],
            fulfillment_lineitem_id=fulfillment_line,
            tracking=entry["tracking"],
            quantity=entry["quantity"],
        )
        upload.partial.append(partial.to_json_dict())
    return upload


def _option(line: order_pb2.OrderLine, name: str) -> str:
    return next((option.value for option in line.options if option.name == name), "")


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
