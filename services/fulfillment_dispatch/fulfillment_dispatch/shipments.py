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
creates none) is `partial`: `apply_notices` then reads the order back whole, once, and applies that.

A webhook naming a batch of labels, or a poll's page, is applied in one transaction (a few for a
very long one): one SELECT ... FOR UPDATE of the orders, one UPDATE, one activity insert, one
outbox insert, so a notice of hundreds of orders is answered well within the provider's timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import asyncpg
from opentelemetry import propagate, trace
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.domain.dispatch import shipment_advanced
from fulfillment_dispatch.provider_words import label
from fulfillment_dispatch.storage.dispatches import (
    ShipmentChange,
    add_activity,
    lock_by_provider_numbers,
    update_shipments,
)
from libs.connectors.base.contract import Capability, Notice
from libs.connectors.base.errors import ConnectorError
from libs.connectors.registry import Registry
from libs.platform.accounts import OpenAccount
from libs.platform.events import new_event
from libs.platform.outbox import write_events

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

SHIPMENTS_TOPIC = "dispatch.shipments.v1"
# A report: a provider order number and the provider's shipment state for it (None: no state).
Report = tuple[str, shipment_pb2.Shipment | None]
# Reports applied in one transaction at most: a ShipStation label batch or a poll page (up to
# 500 shipments) fits in one; a longer list is applied in chunks, each atomic.
MAX_REPORTS_PER_TRANSACTION = 500
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
        """Apply the provider's state for one order; return 'applied', 'partial' (applied, but a
        stored tracking number went unmentioned: read the order back), 'unchanged' or 'unknown_order'."""
        (outcome,) = await self.apply_many(tenant_id, provider, [(provider_order_number, shipment)])
        return outcome

    async def apply_many(self, tenant_id: str, provider: str, reports: Sequence[Report]) -> list[str]:
        """Apply each (provider order number, shipment) report as `apply` would, in order, and
        return each one's outcome.

        Up to MAX_REPORTS_PER_TRANSACTION reports are applied in one transaction: each order's
        change, activity and event commit together, and a failure leaves none of the chunk applied.
        """
        outcomes: list[str] = []
        for start in range(0, len(reports), MAX_REPORTS_PER_TRANSACTION):
            outcomes += await self._apply_chunk(
                tenant_id, provider, reports[start : start + MAX_REPORTS_PER_TRANSACTION]
            )
        return outcomes

    async def _apply_chunk(self, tenant_id: str, provider: str, reports: Sequence[Report]) -> list[str]:
        provider_label = label(self._registry, provider)
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await lock_by_provider_numbers(conn, tenant_id, provider, [number for number, _ in reports])
            rows = {r["provider_order_number"]: dict(r) for r in locked}
            outcomes: list[str] = []
            changes: dict[str, ShipmentChange] = {}
            activity: list[tuple[str, str, str, str]] = []
            events = []
            for number, reported in reports:
                row = rows.get(number)
                if row is None:
                    outcomes.append("unknown_order")
                    continue
                decided = _decided(row, reported)
                if decided is None:
                    outcomes.append("unchanged")
                    continue
                shipment, status, partial = decided
                description = _describe(shipment, provider_label)
                proto = shipment.SerializeToString()
                # A later report of the same order in this batch is judged against this one, and
                # only the order's last state is written (each change keeps its activity and event).
                row["shipment_status"], row["shipment_proto"] = status, proto
                changes[row["order_id"]] = ShipmentChange(row["order_id"], status, proto, description)
                activity.append((row["order_id"], tenant_id, f"shipment_{status}", description))
                events.append(self._event(row, provider, shipment))
                outcomes.append("partial" if partial else "applied")
            await update_shipments(conn, list(changes.values()), next_check_after=self._check_after)
            await add_activity(conn, activity)
            await write_events(conn, events)
        return outcomes

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
            order_lines=_order_lines(row["order_proto"]),
        )
        with _tracer.start_as_current_span("shipment updated", context=self._order_context(row)) as span:
            span.set_attribute("ordersync.order_id", row["order_id"])
            return new_event(
                self._topic,
                message,
                aggregate_id=row["order_id"],
                tenant_id=row["tenant_id"],
                producer=self._producer,
                traceparent=row["traceparent"],
            )

    @staticmethod
    def _order_context(row):
        # Continue the order's own trace so the writeback joins the journey that began at intake.
        return propagate.extract({"traceparent": row["traceparent"]}) if row["traceparent"] else None


def _order_lines(order_proto: bytes | None) -> list[order_pb2.OrderLine]:
    order = order_pb2.Order()
    order.ParseFromString(order_proto or b"")
    return list(order.lines)


async def apply_notices(
    recorder: ShipmentRecorder, opened: OpenAccount, tenant_id: str, notices: Sequence[Notice]
) -> list[str]:
    """Apply notices of the account's provider together (a webhook's batch, a poll's page) and
    return each one's outcome. A `partial` one is completed by reading its order back (when the
    provider can be), after the transaction so no lock waits on the provider, so a voided label
    is known as voided; it is then 'applied'."""
    provider = opened.connector.info.id
    outcomes = await recorder.apply_many(tenant_id, provider, [(n.order_number, n.shipment) for n in notices])
    partial = dict.fromkeys(n.order_number for n, o in zip(notices, outcomes, strict=True) if o == "partial")
    if partial and opened.connector.info.can(Capability.READ_BACK):
        wholes: list[Report] = []
        for number in partial:
            try:
                whole = await opened.connector.read_back(opened.client, opened.settings, number)
            except ConnectorError as exc:
                # What the notice said is stored; the order's status checks read it whole later.
                log.warning("could not read a relabelled order back", extra={"fields": {"error": exc.message}})
                continue
            if whole is not None:
                wholes.append((number, whole.shipment))
        await recorder.apply_many(tenant_id, provider, wholes)
    return ["applied" if o == "partial" else o for o in outcomes]


def _decided(row, reported: shipment_pb2.Shipment | None) -> tuple[shipment_pb2.Shipment, str, bool] | None:
    """What a report makes of the stored dispatch: the shipment to store, its status word and
    whether it is partial (a stored tracking number unmentioned); None when it is no news."""
    if reported is None:
        return None
    status = _STATUS_NAME.get(reported.status, "")
    if shipment_advanced(row["shipment_status"], status):
        return _keeping_voided(row, reported), status, False
    relabelled = _merged_labels(row, status, reported)
    if relabelled is None:
        return None
    partial = not set(row_tracking(row)) <= set(reported_numbers(reported))
    merged, status = relabelled
    return merged, status, partial


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
