"""Shipment updates from the provider: apply an order's state there and announce real changes.

The state comes from the provider connector: a notice it resolved (thin notices are re-read
with the account's credentials) or a read-back. Notices repeat and arrive out of order, so only
a change that moves the shipment forward is stored and published. The same path serves provider
webhooks, the poller of overdue orders and an operator's Check Fulfillment or Void Sync. A
cancellation makes the order Voided (in the provider's words, e.g. "Voided in <label>").
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
from libs.connectors.registry import Registry
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
        """Apply the provider's state; return 'applied', 'unchanged' or 'unknown_order'."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await lock_by_provider_number(conn, tenant_id, provider, provider_order_number)
            if row is None:
                return "unknown_order"
            status = _STATUS_NAME.get(shipment.status, "") if shipment is not None else ""
            if shipment is None or not shipment_advanced(row["shipment_status"], status):
                return "unchanged"
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
        return "applied"

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


def _describe(shipment: shipment_pb2.Shipment, provider_label: str) -> str:
    status = _STATUS_NAME[shipment.status]
    if shipment.status == shipment_pb2.SHIPMENT_STATUS_CANCELLED:
        return f"cancelled at {provider_label}: {shipment.cancel_reason or 'no reason given'}"
    if shipment.tracking_numbers:
        return f"{status}; tracking {', '.join(shipment.tracking_numbers)}"
    return status
