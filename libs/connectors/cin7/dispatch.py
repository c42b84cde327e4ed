"""Write-back as one PUT row (pure): a shipped order dispatched, a voided label taken back, a
cancellation staged, and the per-row answer checked.

Cin7 takes no idempotency key, so the order is read first and the row only carries what is
still to do: an order already dispatched with this tracking code needs nothing, the
dispatched date (which dispatches stock) is written once, and the carrier only where Cin7 has
none, so a carrier the tenant chose in Cin7 is never overwritten. A tracking code whose label
was voided is never written, and one written earlier is cleared with the stage put back to
Fully Picked, so ShipStation's next label can be written. Each step is applied to the order as
the previous one leaves it, and the steps make one row: one request, and a repeat finds
nothing left to do.

Cin7's SalesOrder (API v1) has no field for the carrier's fee (`freightTotal` is what the
customer paid), none for notes to the buyer, and none for shipped quantities per line
(`qtyShipped` is read-only: setting `dispatchedDate` dispatches every line). Those parts of
the shipment are not written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ordersync.common.v1 import shipment_pb2

from ..base import convert
from ..base.contract import WritebackStep
from ..base.errors import InvalidRequest, InvalidResponse
from .errors import row_error
from .schemas import DispatchUpdate, RowResult, SalesOrder


@dataclass(frozen=True, slots=True)
class Stages:
    """The tenant's workflow stages write-back moves an order between (Cin7Settings' names)."""

    fully_picked: str
    dispatched: str
    cancelled: str


def build_update(
    current: SalesOrder,
    steps: Sequence[WritebackStep],
    shipment: shipment_pb2.Shipment,
    *,
    stages: Stages,
    now: datetime,
    carrier: str | None = None,
) -> DispatchUpdate | None:
    """The one row taking `current` through `steps`, in order, or None when nothing is left to do.

    SHIP dispatches (build_dispatch_update); RETRACT clears a tracking code whose label was
    voided and puts a dispatched order back to the Fully Picked stage; VOID (ShipStation
    cancelled the order) writes the cancelled stage; DELIVER writes nothing (Cin7 has no
    delivered stage).

    Raises:
        InvalidRequest: a SHIP step and no tracking number that is not voided.
    """
    changes: dict[str, Any] = {}
    for step in steps:
        view = current.model_copy(update=changes)
        if step is WritebackStep.SHIP:
            row = build_dispatch_update(view, shipment, stage=stages.dispatched, now=now, carrier=carrier)
            changes |= row.to_json_dict() if row is not None else {}
        elif step is WritebackStep.RETRACT:
            changes |= _retraction(view, shipment, stages)
        elif step is WritebackStep.VOID and (view.stage or "") != stages.cancelled:
            changes["stage"] = stages.cancelled
    changes.pop("id", None)
    return DispatchUpdate(id=current.id, **changes) if changes else None


def build_dispatch_update(
    current: SalesOrder,
    shipment: shipment_pb2.Shipment,
    *,
    stage: str,
    now: datetime,
    carrier: str | None = None,
) -> DispatchUpdate | None:
    """The row marking `current` dispatched with the shipment's tracking, or None when it is already.

    Args:
        current: the order as Cin7 has it now (read just before).
        shipment: the shipment; its first tracking number whose label is not voided is Cin7's
            `trackingCode`.
        stage: the tenant's "Dispatched" stage.
        carrier: the carrier (and service) as Cin7 should read it, from carrier mapping; None
            spells the shipment's own: carrier then service ("UPS GROUND" from "UPS" and
            "UPS_GROUND"), since Cin7 has one carrier field.
        now: the dispatched date when the shipment carries no ship time.

    Raises:
        InvalidRequest: the shipment has no tracking number (or only voided ones).
    """
    tracking = next(iter(live_tracking(shipment)), "")
    if not tracking:
        raise InvalidRequest("cin7 write_back: the shipment has no tracking number whose label is not voided")
    if (current.stage or "") == stage and (current.trackingCode or "") == tracking:
        return None
    logistics = None
    if not (current.logisticsCarrier or "").strip():
        logistics = carrier.strip() if carrier and carrier.strip() else _carrier_and_service(shipment) or None
    dispatched = None
    if not current.dispatchedDate:
        shipped = convert.timestamp_to_datetime(shipment.shipped_time) if shipment.HasField("shipped_time") else now
        dispatched = shipped.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return DispatchUpdate(
        id=current.id, stage=stage, trackingCode=tracking, dispatchedDate=dispatched, logisticsCarrier=logistics
    )


def live_tracking(shipment: shipment_pb2.Shipment) -> list[str]:
    """The shipment's tracking numbers, blanks, repeats and voided labels left out."""
    voided = {t.strip() for t in shipment.voided_tracking_numbers}
    return [t for t in dict.fromkeys(t.strip() for t in shipment.tracking_numbers) if t and t not in voided]


def check_update_response(body: Any, order_id: int, operation: str = "update_sales_orders") -> None:
    """Check the answer to a one-row PUT: its row must say success.

    Raises:
        InvalidRequest: Cin7 refused the row (its errors as details).
        InvalidResponse: the answer is not an array holding a row for the order.
    """
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        raise InvalidResponse(f"cin7 {operation}: answer is not an array of row results")
    row = RowResult.model_validate(body[0])
    if row.id not in (None, order_id):
        raise InvalidResponse(f"cin7 {operation}: the answer's row is for another order")
    if not row.success:
        raise row_error(row, operation)


def _retraction(current: SalesOrder, shipment: shipment_pb2.Shipment, stages: Stages) -> dict[str, Any]:
    # Only a tracking code Cin7 still shows, of a voided label, is taken back: a code the
    # tenant typed, or one already cleared, is left alone (so a repeat writes nothing). The
    # dispatched date stays: Cin7 documents no way to undo a dispatch of stock.
    voided = {t.strip() for t in shipment.voided_tracking_numbers if t.strip()}
    if (current.trackingCode or "").strip() not in voided:
        return {}
    changes: dict[str, Any] = {"trackingCode": ""}
    if (current.stage or "") == stages.dispatched:
        changes["stage"] = stages.fully_picked
    return changes


def _carrier_and_service(shipment: shipment_pb2.Shipment) -> str:
    carrier = shipment.carrier.strip()
    service = shipment.service.strip().replace("_", " ")
    if carrier and service.upper().startswith(carrier.upper() + " "):
        service = service[len(carrier) + 1 :]
    return " ".join(part for part in (carrier, service) if part)
