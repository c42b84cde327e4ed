"""Consumes dispatch.shipments.v1: records the channel state each order should reach, then wakes the writer."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from opentelemetry import propagate
from ordersync.common.v1 import shipment_pb2
from ordersync.dispatch.v1 import events_pb2

from libs.platform.events import EnvelopeError, unpack
from libs.platform.kafka import ConsumedEvent, claim_fresh, keep_dead_letter
from tracking_writeback.domain.writeback import supersedes, wanted
from tracking_writeback.storage.writebacks import WantedState, load_targets, want

STATUS_NAME = {
    shipment_pb2.SHIPMENT_STATUS_FULFILLED: "fulfilled",
    shipment_pb2.SHIPMENT_STATUS_SHIPPED: "shipped",
    shipment_pb2.SHIPMENT_STATUS_DELIVERED: "delivered",
    shipment_pb2.SHIPMENT_STATUS_CANCELLED: "cancelled",
}


class ShipmentUpdatedConsumer:
    """Batch handler: claims and wanted states commit together."""

    def __init__(self, pool: asyncpg.Pool, *, group: str, on_wanted: Callable[[], None]):
        self._pool = pool
        self._group = group
        self._on_wanted = on_wanted

    async def handle(self, events: list[ConsumedEvent]) -> None:
        """Advance each order's wanted state; repeated or older reports change nothing."""
        async with self._pool.acquire() as conn, conn.transaction():
            updates = []
            for event in await claim_fresh(conn, self._group, events):
                try:
                    updates.append((event, unpack(event.envelope, events_pb2.ShipmentUpdated)))
                except EnvelopeError as exc:
                    await keep_dead_letter(conn, self._group, event, str(exc))
            targets = await load_targets(conn, [u.order_id for _, u in updates])
            states: dict[str, WantedState] = {}
            for event, update in updates:
                reported = STATUS_NAME.get(update.shipment.status, "")
                if wanted(reported) and supersedes(reported, targets.get(update.order_id, "")):
                    targets[update.order_id] = reported
                    states[update.order_id] = _wanted_state(event, update, reported)
            await want(conn, list(states.values()))
        if states:
            self._on_wanted()


def _wanted_state(event: ConsumedEvent, update: events_pb2.ShipmentUpdated, reported: str) -> WantedState:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=event.trace_context)
    return WantedState(
        order_id=update.order_id,
        tenant_id=event.envelope.tenant_id,
        channel=update.channel_ref.channel,
        external_id=update.channel_ref.external_id,
        external_number=update.channel_ref.external_number,
        target_status=reported,
        shipment_proto=update.shipment.SerializeToString(),
        traceparent=carrier.get("traceparent", ""),
        provider=update.provider,
        channel_account=update.channel_ref.account,
    )
