"""Consumes dispatch.shipments.v1: records the channel state each order should reach, then wakes the writer.

Voided labels accumulate: the stored shipment keeps every number the provider ever voided for
the order, so a late or repeated report of a voided label's number never makes it writable again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import asyncpg
from opentelemetry import propagate
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.dispatch.v1 import events_pb2

from libs.platform.events import EnvelopeError, unpack
from libs.platform.kafka import ConsumedEvent, claim_fresh, keep_dead_letter
from tracking_writeback.domain.writeback import NOTHING, advance
from tracking_writeback.storage.writebacks import Target, WantedState, load_targets, want

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
                known = targets.get(update.order_id) or Target(NOTHING, shipment_pb2.Shipment())
                reported = STATUS_NAME.get(update.shipment.status, "")
                voided = known.shipment.voided_tracking_numbers
                target = advance(known.status, voided, reported, update.shipment.voided_tracking_numbers)
                if target is None:
                    continue
                shipment = _with_voided(update.shipment, voided)
                targets[update.order_id] = Target(target, shipment)
                state = _wanted_state(event, update, target, shipment)
                earlier = states.get(update.order_id)
                if earlier is not None and not state.order_lines_proto:  # keep lines an earlier report gave
                    state = replace(state, order_lines_proto=earlier.order_lines_proto)
                states[update.order_id] = state
            await want(conn, list(states.values()))
        if states:
            self._on_wanted()


def _with_voided(shipment: shipment_pb2.Shipment, known: Sequence[str]) -> shipment_pb2.Shipment:
    """The reported shipment with the voided numbers known before added to its own."""
    merged = shipment_pb2.Shipment()
    merged.CopyFrom(shipment)
    del merged.voided_tracking_numbers[:]
    merged.voided_tracking_numbers.extend(dict.fromkeys([*known, *shipment.voided_tracking_numbers]))
    return merged


def _wanted_state(
    event: ConsumedEvent, update: events_pb2.ShipmentUpdated, target: str, shipment: shipment_pb2.Shipment
) -> WantedState:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=event.trace_context)
    return WantedState(
        order_id=update.order_id,
        tenant_id=event.envelope.tenant_id,
        channel=update.channel_ref.channel,
        external_id=update.channel_ref.external_id,
        external_number=update.channel_ref.external_number,
        target_status=target,
        shipment_proto=shipment.SerializeToString(),
        traceparent=carrier.get("traceparent", ""),
        provider=update.provider,
        channel_account=update.channel_ref.account,
        order_lines_proto=order_pb2.Order(lines=update.order_lines).SerializeToString() if update.order_lines else b"",
    )
