"""Shipment updates from the provider: apply an order's state there and announce real changes.

The state comes from the provider connector: a notice it resolved (thin notices are re-read
with the account's credentials) or a read-back. Notices repeat and arrive out of order, so only
a change that moves the shipment forward is stored and published. The same path serves provider
webhooks, the shipment poller, the poller of overdue orders and an operator's Check Fulfillment
or Void Sync. A cancellation makes the order Voided (in the provider's words, e.g. "Voided in
<label>").

Labels change without the status moving: a label voided and another bought (still shipped).
A report at the stored status that names tracking numbers not known yet, or voids one, is
applied too, merged with what is stored (a poll may see only the newest label of an order):
a voided number leaves the tracking and is kept in `voided_tracking_numbers`, so writeback
takes it back and never writes it. Such a report that leaves a stored tracking number unmentioned
(a new label, the old one's fate unknown: ShipStation lists labels by creation, and a void
creates none) is `partial`: `apply_notice` then reads the order back whole, once, and applies that.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import asyncpg
from opentelemetry import propagate, trace
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.domain.dispatch import shipment_advanced
from fulfillment_dispatch.provider_words import label
from fulfillment_dispatch.storage.dispatches import add_activity, lock_by_provider_number, update_shipment
from libs.connectors.base.contract import Capability, Notice
from libs.connectors.base.errors import ConnectorError
from libs.connectors.registry import Registry
from libs.platform.accounts import OpenAccount
from libs.platform.events import new_event
from libs.platform.outbox import write_events

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

SHIPMENTS_TOPIC = "dispatch.shipments.v1"
_STATUS_NAME = {
    shipment_pb2.SHIPMENT_STATUS_FULFILLED: "fulfilled",
    shipment_pb2.SHIPMENT_STATUS_SHIPPED: "shipped",
    shipment_pb2.SHIPMENT_STATUS_DELIVERED: "delivered",
    shipment_pb2.SHIPMENT_STATUS_CANCELLED: "cancelled",
}


class ShipmentRecorder:
    """Stores a provider's shipment state for an order and publishes ShipmentUpdated on progress."""

    def __init__(self, pool: asyncpg.Pool, registry: Registry, *, topic: str, producer: str, check_after: timedelta):
        self._pool = pool
        self._registry = registry
        self._topic = topic
        self._producer = producer
        self._check_after = check_after

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    async def apply(
        self, tenant_id: str, provider: str, provider_order_number: str, shipment: shipment_pb2.Shipment | None
    ) -> str:
        """Apply the provider's state; return 'applied', 'partial' (applied, but a stored
        tracking number went unmentioned: read the order back), 'unchanged' or 'unknown_order'."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await lock_by_provider_number(conn, tenant_id, provider, provider_order_number)
            if row is None:
                return "unknown_order"
            status = _STATUS_NAME.get(shipment.status, "") if shipment is not None else ""
            if shipment is None:
                return "unchanged"
            partial = False
            if not shipment_advanced(row["shipment_status"], status):
                relabelled = _merged_labels(row, status, shipment)
                if relabelled is None:
                    return "unchanged"
                partial = not set(row_tracking(row)) <= set(reported_numbers(shipment))
                shipment, status = relabelled
            else:
                shipment = _keeping_voided(row, shipment)
            description = _describe(shipment, label(self._registry, provider))
            await update_shipment(
                conn,
                row["order_id"],
                status,
                shipment.SerializeToString(),
                next_check_after=self._check_after,
                void_reason=description,
            )
            await add_activity(conn, [(row["order_id"], tenant_id, f"shipment_{status}", description)])
            await write_events(conn, [self._event(row, provider, shipment)])
        return "partial" if partial else "applied"

    def _event(self, row, provider: str, shipment: shipment_pb2.Shipment):
        ref = order_pb2.ChannelOrderRef(
            channel=row["channel"],
            external_id=row["external_id"],
            external_number=row["external_number"],
            account=row["channel_account"],
        )
        message = events_pb2.ShipmentUpdated(
            order_id=row["order_id"],
            channel_ref=ref,
            provider=provider,
            provider_order_number=row["provider_order_number"],
            shipment=shipment,
            provider_account=row["provider_account"],
        )
        with _tracer.start_as_current_span("shipment updated", context=self._order_context(row)) as span:
            span.set_attribute("ordersync.order_id", row["order_id"])
            return new_event(
                self._topic, message, aggregate_id=row["order_id"], tenant_id=row["tenant_id"], producer=self._producer
            )

    @staticmethod
    def _order_context(row):
        # Continue the order's own trace so the writeback joins the journey that began at intake.
        return propagate.extract({"traceparent": row["traceparent"]}) if row["traceparent"] else None


async def apply_notice(recorder: ShipmentRecorder, opened: OpenAccount, tenant_id: str, notice: Notice) -> str:
    """Apply one notice of the account's provider; a `partial` one is completed by reading the
    order back (when the provider can be), so a voided label is known as voided."""
    provider = opened.connector.info.id
    outcome = await recorder.apply(tenant_id, provider, notice.order_number, notice.shipment)
    if outcome != "partial":
        return outcome
    if opened.connector.info.can(Capability.READ_BACK):
        try:
            whole = await opened.connector.read_back(opened.client, opened.settings, notice.order_number)
        except ConnectorError as exc:
            # What the notice said is stored; the order's status checks read it whole later.
            log.warning("could not read a relabelled order back", extra={"fields": {"error": exc.message}})
            return "applied"
        if whole is not None:
            await recorder.apply(tenant_id, provider, notice.order_number, whole.shipment)
    return "applied"


def row_tracking(row) -> list[str]:
    stored = shipment_pb2.Shipment()
    if row["shipment_proto"]:
        stored.ParseFromString(row["shipment_proto"])
    return list(stored.tracking_numbers)


def reported_numbers(shipment: shipment_pb2.Shipment) -> list[str]:
    return [*shipment.tracking_numbers, *shipment.voided_tracking_numbers]


def _keeping_voided(row, reported: shipment_pb2.Shipment) -> shipment_pb2.Shipment:
    """The report with the labels voided before it still named voided (a report of the new
    label alone would forget them)."""
    stored = shipment_pb2.Shipment()
    if row["shipment_proto"]:
        stored.ParseFromString(row["shipment_proto"])
    earlier = [t for t in stored.voided_tracking_numbers if t not in reported.voided_tracking_numbers]
    if not earlier:
        return reported
    kept = shipment_pb2.Shipment()
    kept.CopyFrom(reported)
    kept.voided_tracking_numbers.extend(earlier)
    return kept


def _merged_labels(row, status: str, reported: shipment_pb2.Shipment) -> tuple[shipment_pb2.Shipment, str] | None:
    """The stored shipment with the report's labels merged in, and its status; None when the
    report is no news (no tracking number new or newly voided) or not about labels.

    Labels are news at the stored status (a reprint) and, for a report voiding labels, at a
    lower one: when no live label is left the order is back to its reported state (every label
    voided: fulfilled, nothing to show the customer). A cancellation is never undone here.
    """
    stored_status = row["shipment_status"]
    newly_voided = bool(reported.voided_tracking_numbers)
    if not status or stored_status == "cancelled" or not (status == stored_status or newly_voided):
        return None
    stored = shipment_pb2.Shipment()
    if row["shipment_proto"]:
        stored.ParseFromString(row["shipment_proto"])
    known = set(stored.tracking_numbers)
    voided = set(stored.voided_tracking_numbers) | set(reported.voided_tracking_numbers)
    if set(reported.tracking_numbers) <= known | voided and voided == set(stored.voided_tracking_numbers):
        return None
    merged = shipment_pb2.Shipment()
    merged.CopyFrom(reported)
    tracking = [t for t in dict.fromkeys([*stored.tracking_numbers, *reported.tracking_numbers]) if t not in voided]
    merged.tracking_numbers[:] = tracking
    merged.voided_tracking_numbers[:] = sorted(voided)
    if tracking:
        merged.status = stored.status or reported.status
        return merged, stored_status
    return merged, status


def _describe(shipment: shipment_pb2.Shipment, provider_label: str) -> str:
    status = _STATUS_NAME[shipment.status]
    if shipment.status == shipment_pb2.SHIPMENT_STATUS_CANCELLED:
        return f"cancelled at {provider_label}: {shipment.cancel_reason or 'no reason given'}"
    voided = f"; voided {', '.join(shipment.voided_tracking_numbers)}" if shipment.voided_tracking_numbers else ""
    if shipment.tracking_numbers:
        return f"{status}; tracking {', '.join(shipment.tracking_numbers)}{voided}"
    return status + voided
