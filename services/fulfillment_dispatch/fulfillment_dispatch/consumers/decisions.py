"""Consumes compliance.decisions.v1: queues every order routed to a provider for the sender, and
records every other order as Not Required to Send with routing's reason, so each order has a
sync status an operator can list."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from opentelemetry import propagate
from ordersync.compliance.v1 import events_pb2, routing_pb2

from fulfillment_dispatch.providers import PROVIDER
from fulfillment_dispatch.storage.dispatches import NewDispatch, NotRequired, enqueue, record_not_required
from libs.connectors.vinoshipper.orders import provider_order_number
from libs.platform.events import EnvelopeError, unpack
from libs.platform.kafka import ConsumedEvent, claim_fresh, keep_dead_letter
from libs.platform.tenants import TenantDirectory


class RoutingDecidedConsumer:
    """Batch handler: claims, queue rows and their activity commit together; then wakes the sender."""

    def __init__(self, pool: asyncpg.Pool, tenants: TenantDirectory, *, group: str, on_queued: Callable[[], None]):
        self._pool = pool
        self._tenants = tenants
        self._group = group
        self._on_queued = on_queued

    async def handle(self, events: list[ConsumedEvent]) -> None:
        """Queue routed orders once each; record the others as not required."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows, not_required = [], []
            for event in await claim_fresh(conn, self._group, events):
                try:
                    decided = unpack(event.envelope, events_pb2.RoutingDecided)
                except EnvelopeError as exc:
                    await keep_dead_letter(conn, self._group, event, str(exc))
                    continue
                try:
                    if decided.decision.outcome == routing_pb2.ROUTING_OUTCOME_ROUTE:
                        rows.append(self._queue_row(event, decided))
                    else:
                        not_required.append(_not_required_row(event, decided))
                except Exception as exc:  # a bad event must not block the batch: keep it for replay
                    await keep_dead_letter(conn, self._group, event, f"could not queue the order: {exc!r}")
            queued = await enqueue(conn, rows)
            await record_not_required(conn, not_required)
        if queued:
            self._on_queued()

    def _queue_row(self, event: ConsumedEvent, decided: events_pb2.RoutingDecided) -> NewDispatch:
        order = decided.order
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=event.trace_context)
        tenant = self._tenants.get(order.tenant_id)
        prefix = tenant.vinoshipper.order_number_prefix if tenant and tenant.vinoshipper else order.tenant_id
        return NewDispatch(
            order_id=order.order_id,
            tenant_id=order.tenant_id,
            provider=decided.decision.provider,
            provider_order_number=provider_order_number(prefix, order),
            order_proto=order.SerializeToString(),
            channel=order.channel,
            external_id=order.external_id,
            external_number=order.external_number,
            traceparent=carrier.get("traceparent", ""),
        )


def _not_required_row(event: ConsumedEvent, decided: events_pb2.RoutingDecided) -> NotRequired:
    order = decided.order
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=event.trace_context)
    return NotRequired(
        order_id=order.order_id,
        tenant_id=order.tenant_id,
        provider=decided.decision.provider or PROVIDER,
        order_proto=order.SerializeToString(),
        channel=order.channel,
        external_id=order.external_id,
        external_number=order.external_number,
        traceparent=carrier.get("traceparent", ""),
        reason_code=decided.decision.reason_code,
        reason=decided.decision.reason,
    )
