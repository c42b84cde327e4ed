"""Consumes compliance.decisions.v1: queues every order routed to a provider for the sender, and
records every other order as Not Required to Send with routing's reason, so each order has a
sync status an operator can list.

A routed order names its provider (a connector id), the tenant's provider account and the route
that chose it. Its number at the provider comes from the provider's connector. An order that
cannot be queued (the account is not configured, the connector cannot number the order) is
recorded Failed to Send with the precise reason and announced, rather than kept out of sight in
the dead letters; an operator's Retry queues it once the account is fixed.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from opentelemetry import propagate
from ordersync.common.v1 import order_pb2
from ordersync.compliance.v1 import events_pb2, routing_pb2
from ordersync.dispatch.v1 import events_pb2 as dispatch_events_pb2

from fulfillment_dispatch.storage.dispatches import (
    NewDispatch,
    NotRequired,
    enqueue,
    record_not_required,
    record_unsendable,
)
from libs.connectors.base.errors import ConnectorError
from libs.platform.accounts import AccountClients
from libs.platform.events import EnvelopeError, OutgoingEvent, new_event, unpack
from libs.platform.kafka import ConsumedEvent, claim_fresh, keep_dead_letter
from libs.platform.outbox import write_events


class RoutingDecidedConsumer:
    """Batch handler: claims, queue rows and their activity commit together; then wakes the sender."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        accounts: AccountClients,
        *,
        group: str,
        on_queued: Callable[[], None],
        topic: str,
        producer: str,
    ):
        self._pool = pool
        self._accounts = accounts
        self._group = group
        self._on_queued = on_queued
        self._topic = topic  # dispatch.orders.v1, for orders that cannot be queued
        self._producer = producer

    async def handle(self, events: list[ConsumedEvent]) -> None:
        """Queue routed orders once each; record the others as not required (or failed)."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows, not_required, unsendable = [], [], []
            for event in await claim_fresh(conn, self._group, events):
                try:
                    decided = unpack(event.envelope, events_pb2.RoutingDecided)
                except EnvelopeError as exc:
                    await keep_dead_letter(conn, self._group, event, str(exc))
                    continue
                try:
                    if decided.decision.outcome != routing_pb2.ROUTING_OUTCOME_ROUTE:
                        not_required.append(_unsent_row(event, decided, decided.decision.reason_code, ""))
                        continue
                    try:
                        rows.append(self._queue_row(event, decided))
                    except (LookupError, ConnectorError, ValueError) as exc:
                        unsendable.append(_unsendable_row(event, decided, exc))
                except Exception as exc:  # a bad event must not block the batch: keep it for replay
                    await keep_dead_letter(conn, self._group, event, f"could not queue the order: {exc!r}")
            queued = await enqueue(conn, rows)
            await record_not_required(conn, not_required)
            failed = set(await record_unsendable(conn, unsendable))
            await write_events(conn, [self._failed_event(row) for row in unsendable if row.order_id in failed])
        if queued:
            self._on_queued()

    def _queue_row(self, event: ConsumedEvent, decided: events_pb2.RoutingDecided) -> NewDispatch:
        """The queue row of a routed order; raises LookupError (account not configured),
        ConnectorError or ValueError (the connector cannot number the order)."""
        order, decision = decided.order, decided.decision
        account = self._accounts.account(order.tenant_id, decision.provider_account, decision.provider)
        connector = self._accounts.provider_connector(account)
        return NewDispatch(
            order_id=order.order_id,
            tenant_id=order.tenant_id,
            provider=decision.provider or account.connector,
            provider_order_number=connector.order_number(account.settings, order),
            order_proto=order.SerializeToString(),
            channel=order.channel,
            external_id=order.external_id,
            external_number=order.external_number,
            traceparent=_traceparent(event),
            provider_account=account.name,
            route=decision.route,
            channel_account=order.channel_account,
        )

    def _failed_event(self, row: NotRequired) -> OutgoingEvent:
        ref = order_pb2.ChannelOrderRef(
            channel=row.channel, external_id=row.external_id, external_number=row.external_number,
            account=row.channel_account,
        )  # fmt: skip
        message = dispatch_events_pb2.OrderDispatchFailed(
            order_id=row.order_id,
            channel_ref=ref,
            provider=row.provider,
            reason_code=row.reason_code,
            reason=row.reason,
            provider_account=row.provider_account,
        )
        return new_event(
            self._topic,
            message,
            aggregate_id=row.order_id,
            tenant_id=row.tenant_id,
            producer=self._producer,
            traceparent=row.traceparent,
        )


def _unsendable_row(event: ConsumedEvent, decided: events_pb2.RoutingDecided, exc: Exception) -> NotRequired:
    if isinstance(exc, ConnectorError):
        code, why = exc.reason_code, exc.message
    else:
        code, why = "PROVIDER_NOT_CONFIGURED", str(exc)
    reason = f"could not queue the order for {decided.decision.provider or 'its provider'}: {why}"
    return _unsent_row(event, decided, code, reason)


def _unsent_row(event: ConsumedEvent, decided: events_pb2.RoutingDecided, code: str, reason: str) -> NotRequired:
    order, decision = decided.order, decided.decision
    return NotRequired(
        order_id=order.order_id,
        tenant_id=order.tenant_id,
        provider=decision.provider,  # '' for an order routed to no provider
        order_proto=order.SerializeToString(),
        channel=order.channel,
        external_id=order.external_id,
        external_number=order.external_number,
        traceparent=_traceparent(event),
        reason_code=code,
        reason=reason or decision.reason,
        channel_account=order.channel_account,
        provider_account=decision.provider_account,
        route=decision.route,
    )


def _traceparent(event: ConsumedEvent) -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=event.trace_context)
    return carrier.get("traceparent", "")
