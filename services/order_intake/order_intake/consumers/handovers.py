"""Consumes dispatch.orders.v1: marks orders the provider accepted as handed over, for the
channels acknowledged only then (AckMoment.ON_HANDOVER); their pollers acknowledge them.

Only OrderDispatched counts: an OrderDispatchFailed (or any other event on the topic) leaves the
order unacknowledged, so the channel keeps listing it. Orders of accounts acknowledged on commit
(or never) have no handover row and are ignored.
"""

from __future__ import annotations

import logging

import asyncpg
from google.protobuf.message import DecodeError
from ordersync.dispatch.v1 import events_pb2

from libs.platform.events import EnvelopeError, unpack
from libs.platform.kafka import ConsumedEvent, claim_fresh, keep_dead_letter
from order_intake.storage import pulls

log = logging.getLogger(__name__)

DISPATCH_TOPIC = "dispatch.orders.v1"


class OrderDispatchedConsumer:
    """Batch handler: the claims and the handovers of a batch commit together."""

    def __init__(self, pool: asyncpg.Pool, *, group: str):
        self._pool = pool
        self._group = group

    async def handle(self, events: list[ConsumedEvent]) -> None:
        """Mark each dispatched order handed over; a redelivered event changes nothing."""
        async with self._pool.acquire() as conn, conn.transaction():
            dispatched = []
            for event in await claim_fresh(conn, self._group, events):
                if event.envelope.payload.TypeName() != events_pb2.OrderDispatched.DESCRIPTOR.full_name:
                    continue  # a failed dispatch, or news intake has no use for
                try:
                    dispatched.append(unpack(event.envelope, events_pb2.OrderDispatched).order_id)
                except (EnvelopeError, DecodeError) as exc:
                    await keep_dead_letter(conn, self._group, event, f"OrderDispatched that does not parse: {exc}")
            accounts = await pulls.handed_over(conn, dispatched) if dispatched else []
        if accounts:
            await pulls.poll_soon(self._pool, accounts)
            log.info(
                "orders handed over; their accounts acknowledge them at their next poll",
                extra={"fields": {"accounts": len(accounts), "events": len(dispatched)}},
            )
