"""The decisions consumer on real Postgres, with the fake provider's registry: routed orders are
queued under their provider account and route with the connector's order number; orders routed
nowhere are not required with no provider; an order that cannot be queued stays visible as
Failed to Send, announced, and an operator's Retry queues it once its account exists."""

from __future__ import annotations

import pytest
from ordersync.compliance.v1 import events_pb2, routing_pb2
from ordersync.dispatch.v1 import events_pb2 as dispatch_events_pb2

from fulfillment_dispatch.consumers.decisions import RoutingDecidedConsumer
from fulfillment_dispatch.operator_actions import Operator, OperatorActions, OrderSelector
from fulfillment_dispatch.provider_words import status_title
from libs.platform.events import parse_envelope
from libs.platform.kafka import ConsumedEvent
from libs.platform.testing import consumed
from services.fulfillment_dispatch.tests.fake_provider import TENANT, order, recorder

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
TOPIC = "compliance.decisions.v1"


def consumer(pool, hub, woken: list) -> RoutingDecidedConsumer:
    return RoutingDecidedConsumer(
        pool,
        hub.accounts,
        group="fulfillment-dispatch",
        on_queued=lambda: woken.append(True),
        topic="dispatch.orders.v1",
        producer="test",
    )


def decided(number: str, offset: int, **decision) -> ConsumedEvent:
    message = events_pb2.RoutingDecided(order=order(number), decision=routing_pb2.RoutingDecision(**decision))
    return consumed(TOPIC, message, aggregate_id=f"ord-{number}", tenant_id=TENANT, offset=offset)


ROUTED = {"outcome": routing_pb2.ROUTING_OUTCOME_ROUTE, "provider": "batchship", "reason_code": "SHIP_TO_STATE"}


async def test_a_routed_order_is_queued_with_its_account_route_and_the_connectors_number(pool, hub):
    woken: list = []
    await consumer(pool, hub, woken).handle(
        [decided("1001", 0, **ROUTED, provider_account="batch", route="west", rule="ship_to_states")]
    )

    row = await pool.fetchrow(
        "SELECT status, provider, provider_account, route, channel_account, provider_order_number FROM dispatches"
    )
    assert tuple(row) == ("sending", "batchship", "batch", "west", "store", "B-1001")
    assert woken == [True]


async def test_a_decision_naming_only_the_provider_is_queued_to_the_tenants_single_account_of_it(pool, hub):
    await consumer(pool, hub, []).handle([decided("1002", 0, **ROUTED)])

    row = await pool.fetchrow("SELECT provider_account, provider_order_number FROM dispatches")
    assert tuple(row) == ("batch", "B-1002")


async def test_an_order_routed_nowhere_is_not_required_with_no_provider(pool, hub):
    not_required = {
        "outcome": routing_pb2.ROUTING_OUTCOME_NOT_REQUIRED,
        "reason_code": "PICKUP",
        "reason": "picked up at the winery",
    }
    await consumer(pool, hub, []).handle([decided("1003", 0, **not_required)])

    row = await pool.fetchrow("SELECT status, provider, reason_code, reason FROM dispatches")
    assert tuple(row) == ("not_required", "", "PICKUP", "picked up at the winery")
    assert status_title(hub.registry, row) == "Not Required to Send"


async def test_an_order_for_an_account_the_tenant_lacks_is_failed_visibly_and_retried_once_it_exists(pool, hub):
    await consumer(pool, hub, []).handle([decided("1004", 0, **ROUTED, provider_account="east")])

    row = await pool.fetchrow("SELECT status, reason_code, reason, provider_order_number FROM dispatches")
    assert (row["status"], row["reason_code"], row["provider_order_number"]) == (
        "failed",
        "PROVIDER_NOT_CONFIGURED",
        "",
    )
    assert row["reason"] == "could not queue the order for batchship: tenant 'acme' has no account 'east'"
    [value] = [r["value"] for r in await pool.fetch("SELECT value FROM outbox")]
    announced = dispatch_events_pb2.OrderDispatchFailed()
    assert parse_envelope(value).payload.Unpack(announced)
    assert (announced.reason_code, announced.provider_account) == ("PROVIDER_NOT_CONFIGURED", "east")
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0

    # The tenant's file gains the account; an operator retries.
    hub.add_account("east", "batchship", "E")
    actions = OperatorActions(
        pool, hub.accounts, recorder(pool, hub.registry), registry=hub.registry, on_requeued=lambda: None
    )
    retried = await actions.retry(OrderSelector(TENANT, channel_order_number="1004"), Operator("jane", "east added"))

    assert (retried["status"], retried["provider_order_number"]) == ("sending", "E-1004")
