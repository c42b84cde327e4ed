"""Consumes dispatch.orders.v1: records the provider's answer on each order's handover row, for
the channels acknowledged only once the provider accepted an order (AckMoment.ON_HANDOVER) and
those told the provider's answer (Capability.SYNC_RESULTS); their pollers tell the channel.

OrderDispatched marks the order handed over (acknowledged, and reported accepted with the
provider's reference: `provider_reference`, else `provider_order_number`). OrderDispatchFailed
is never acknowledged, so the channel keeps listing the order; where results are reported it is
reported refused (`reason_code: reason`), and a later OrderDispatched (an operator's retry)
reports it accepted. Orders without a handover row (acknowledged on commit or never, no results
wanted) and any other event on the topic are ignored.
"""

from __future__ import annotations

import logging

import asyncpg
from google.protobuf.message import DecodeError
from ordersync.dispatch.v1 import events_pb2

from libs.platform.db import PgConnection
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
        """Record each dispatch outcome on its handover row; a redelivered event changes nothing.

        Outcomes are applied in the batch's order, so a refusal followed by an acceptance of
        one order (a retry) ends accepted."""
        async with self._pool.acquire() as conn, conn.transaction():
            outcomes: list[events_pb2.OrderDispatched | events_pb2.OrderDispatchFailed] = []
            for event in await claim_fresh(conn, self._group, events):
                kind = event.envelope.payload.TypeName()
                message_type = _OUTCOMES.get(kind)
                if message_type is None:
                    continue  # news intake has no use for
                try:
                    outcomes.append(unpack(event.envelope, message_type))  # type: ignore[arg-type]
                except (EnvelopeError, DecodeError) as exc:
                    await keep_dead_letter(
                        conn, self._group, event, f"{message_type.__name__} that does not parse: {exc}"
                    )
            accounts: set[pulls.AccountKey] = set()
            # Rows locked in order-id order, as a page's commit locks them: the two never wait in a
            # cycle. The sort is stable, so one order's outcomes keep their order.
            for outcome in sorted(outcomes, key=lambda o: o.order_id):
                accounts.update(await _record(conn, outcome))
        if accounts:
            await pulls.poll_soon(self._pool, sorted(accounts, key=lambda k: (k.tenant_id, k.account)))
            log.info(
                "dispatch outcomes recorded; their accounts tell the channel at their next poll",
                extra={"fields": {"accounts": len(accounts), "events": len(events)}},
            )


_OUTCOMES = {
    events_pb2.OrderDispatched.DESCRIPTOR.full_name: events_pb2.OrderDispatched,
    events_pb2.OrderDispatchFailed.DESCRIPTOR.full_name: events_pb2.OrderDispatchFailed,
}


async def _record(
    conn: PgConnection, outcome: events_pb2.OrderDispatched | events_pb2.OrderDispatchFailed
) -> list[pulls.AccountKey]:
    if isinstance(outcome, events_pb2.OrderDispatched):
        reference = outcome.provider_reference or outcome.provider_order_number
        return await pulls.handed_over(conn, [pulls.Handover(outcome.order_id, outcome.provider, reference)])
    failure = f"{outcome.reason_code}: {outcome.reason}" if outcome.reason_code else outcome.reason
    return await pulls.sync_refused(conn, [(outcome.order_id, failure)])
