"""Consumes intake.orders.v1: decides each new order once and publishes RoutingDecided."""

from __future__ import annotations

import logging

import asyncpg
import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from ordersync.common.v1 import order_pb2
from ordersync.compliance.v1 import events_pb2, routing_pb2
from ordersync.intake.v1 import events_pb2 as intake_events

from compliance_routing.domain.routing import Decision, Kind, Outcome, RouteRules, RoutingInput, decide
from compliance_routing.storage.decisions import DecisionRow, decided_order_ids, insert_decisions
from libs.platform import metrics
from libs.platform.events import EnvelopeError, OutgoingEvent, new_event, unpack
from libs.platform.kafka import ConsumedEvent, claim_fresh, keep_dead_letter
from libs.platform.outbox import write_events
from libs.platform.tenants import Tenant, TenantDirectory

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

DECISIONS_TOPIC = "compliance.decisions.v1"
_OUTCOME_PROTO = {
    Outcome.ROUTE: routing_pb2.ROUTING_OUTCOME_ROUTE,
    Outcome.NOT_REQUIRED: routing_pb2.ROUTING_OUTCOME_NOT_REQUIRED,
    Outcome.NOT_SENT: routing_pb2.ROUTING_OUTCOME_NOT_SENT,
}
_KIND_BY_TYPE = {
    order_pb2.ORDER_TYPE_REFUND: Kind.REFUND,
    order_pb2.ORDER_TYPE_EXCHANGE: Kind.EXCHANGE,
    order_pb2.ORDER_TYPE_RESERVATION: Kind.RESERVATION,
}
_KIND_BY_DELIVERY = {
    order_pb2.DELIVERY_METHOD_SHIP: Kind.SHIPPING,
    order_pb2.DELIVERY_METHOD_PICKUP: Kind.PICKUP,
    order_pb2.DELIVERY_METHOD_CARRY_OUT: Kind.CARRY_OUT,
}


class OrderAcceptedConsumer:
    """Batch handler: one transaction per batch holds the claims, decisions and outbox events."""

    def __init__(self, pool: asyncpg.Pool, tenants: TenantDirectory, *, group: str, topic: str, producer: str):
        self._pool = pool
        self._tenants = tenants
        self._group = group
        self._topic = topic
        self._producer = producer

    async def handle(self, events: list[ConsumedEvent]) -> None:
        """Decide every order seen for the first time; redelivered events and later revisions change nothing."""
        async with self._pool.acquire() as conn, conn.transaction():
            orders = await self._open(conn, await claim_fresh(conn, self._group, events))
            decided = await decided_order_ids(conn, [order.order_id for _, order in orders])
            rows, outgoing = [], []
            for event, order in orders:
                if order.order_id in decided:
                    continue  # one decision per order; later revisions (e.g. our own writeback) do not re-route
                decided.add(order.order_id)
                try:
                    row, message = self._decide(event, order)
                except Exception as exc:  # a bad event must not block the batch: keep it for replay
                    await keep_dead_letter(conn, self._group, event, f"routing failed: {exc!r}")
                    continue
                rows.append(row)
                outgoing.append((row.order_id, message))
            inserted = await insert_decisions(conn, rows)
            # Publish only what was stored: a concurrent consumer (rebalance) may have decided first.
            await write_events(conn, [message for order_id, message in outgoing if order_id in inserted])
        for row in rows:  # counted once committed, and only the decisions stored here
            if row.order_id in inserted:
                metrics.ORDER_OUTCOMES.labels(
                    "compliance-routing", row.provider or "none", row.outcome, row.reason_code
                ).inc()

    async def _open(self, conn, events: list[ConsumedEvent]) -> list[tuple[ConsumedEvent, order_pb2.Order]]:
        opened = []
        for event in events:
            try:
                opened.append((event, unpack(event.envelope, intake_events.OrderAccepted).order))
            except EnvelopeError as exc:
                await keep_dead_letter(conn, self._group, event, str(exc))
        return opened

    def _decide(self, event: ConsumedEvent, order: order_pb2.Order) -> tuple[DecisionRow, OutgoingEvent]:
        with (
            _tracer.start_as_current_span("route order", context=event.trace_context, kind=SpanKind.CONSUMER) as span,
            structlog.contextvars.bound_contextvars(order_id=order.order_id, tenant=order.tenant_id),
        ):
            decision = decide(self._facts(order))
            span.set_attribute("ordersync.order_id", order.order_id)
            span.set_attribute("ordersync.routing.outcome", decision.outcome.value)
            span.set_attribute("ordersync.routing.reason_code", decision.reason_code)
            span.set_attribute("ordersync.routing.route", decision.route)
            span.set_attribute("ordersync.routing.rule", decision.rule)
            message = events_pb2.RoutingDecided(order=order, decision=_decision_proto(decision))
            outgoing = new_event(
                self._topic, message, aggregate_id=order.order_id, tenant_id=order.tenant_id, producer=self._producer
            )
        row = DecisionRow(
            order.order_id,
            order.tenant_id,
            decision.outcome.value,
            decision.provider,
            decision.reason_code,
            decision.reason,
            order.revision,
            decision.route,
            decision.rule,
            decision.provider_account,
        )
        return row, outgoing

    def _facts(self, order: order_pb2.Order) -> RoutingInput:
        tenant = self._tenants.get(order.tenant_id)
        kind = _KIND_BY_TYPE.get(order.order_type) or _KIND_BY_DELIVERY.get(order.delivery_method, Kind.SHIPPING)
        channel_account = _channel_account(tenant, order)
        return RoutingInput(
            kind=kind,
            ship_to_state=order.ship_to.administrative_area,
            ship_to_country=order.ship_to.region_code,
            channel_account=channel_account,
            routes=_route_rules(tenant, channel_account),
        )


def _channel_account(tenant: Tenant | None, order: order_pb2.Order) -> str:
    """The order's channel account; orders accepted before accounts had names carry only the
    channel's connector id, which names the account when the tenant has just one of it (the
    rule libs.platform.accounts applies to stored records)."""
    if order.channel_account or tenant is None:
        return order.channel_account
    candidates = tenant.accounts_of(order.channel)
    return candidates[0].name if len(candidates) == 1 else ""


def _route_rules(tenant: Tenant | None, channel_account: str) -> list[RouteRules]:
    """The tenant's routes from `channel_account`, in order, with each provider's connector id."""
    if tenant is None or not channel_account:
        return []
    rules = []
    for route in tenant.routes_from(channel_account):
        provider = tenant.account(route.provider)
        if provider is None:  # the tenants file refuses such routes; never route to nowhere
            continue
        rules.append(
            RouteRules(
                name=route.name,
                provider=provider.connector,
                provider_account=provider.name,
                order_kinds=route.order_kinds,
                ship_to_states=route.ship_to_states,
                ship_to_countries=route.ship_to_countries,
            )
        )
    return rules


def _decision_proto(decision: Decision) -> routing_pb2.RoutingDecision:
    proto = routing_pb2.RoutingDecision(
        outcome=_OUTCOME_PROTO[decision.outcome],
        provider=decision.provider,
        reason_code=decision.reason_code,
        reason=decision.reason,
        route=decision.route,
        rule=decision.rule,
        provider_account=decision.provider_account,
    )
    proto.decided_time.GetCurrentTime()
    return proto
