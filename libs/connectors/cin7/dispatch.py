"""Write-back as a dispatch (pure): the PUT row for a shipped order, and its per-row answer.

Cin7 takes no idempotency key, so the order is read first and the row only carries what is
still to do: an order already dispatched with this tracking code needs nothing, the
dispatched date (which dispatches stock) is written once, and the carrier only where Cin7 has
none, so a carrier the tenant chose in Cin7 is never overwritten.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ordersync.common.v1 import shipment_pb2

from ..base import convert
from ..base.errors import InvalidRequest, InvalidResponse
from .errors import row_error
from .schemas import DispatchUpdate, RowResult, SalesOrder


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
        shipment: the shipment; its first tracking number is Cin7's `trackingCode`.
        stage: the tenant's "Dispatched" stage.
        carrier: the carrier (and service) as Cin7 should read it, from carrier mapping; None
            spells the shipment's own: carrier then service ("UPS GROUND" from "UPS" and
            "UPS_GROUND"), since Cin7 has one carrier field.
        now: the dispatched date when the shipment carries no ship time.

    Raises:
        InvalidRequest: the shipment has no tracking number.
    """
    tracking = next((t.strip() for t in shipment.tracking_numbers if t.strip()), "")
    if not tracking:
        raise InvalidRequest("cin7 write_back: the shipment has no tracking number")
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


def _carrier_and_service(shipment: shipment_pb2.Shipment) -> str:
    carrier = shipment.carrier.strip()
    service = shipment.service.strip().replace("_", " ")
    if carrier and service.upper().startswith(carrier.upper() + " "):
        service = service[len(carrier) + 1 :]
    return " ".join(part for part in (carrier, service) if part)
