"""The orders consumer on real Postgres: one decision per order, published once, with its outbox
event, naming the route that decided; and the read API returning it over real gRPC."""

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2, postal_address_pb2
from ordersync.compliance.v1 import compliance_service_pb2, compliance_service_pb2_grpc
from ordersync.compliance.v1 import events_pb2 as compliance_events
from ordersync.intake.v1 import events_pb2

from compliance_routing.api.grpc import ComplianceRoutingServicer
from compliance_routing.app import MIGRATIONS
from compliance_routing.consumers.orders import OrderAcceptedConsumer
from libs.platform.db import create_pool, migrate
from libs.platform.events import parse_envelope, unpack
from libs.platform.grpc_server import bind
from libs.platform.tenants import Account, Route, Tenant, TenantDirectory
from libs.platform.testing import ACME_READER, access_for_tests, authorized, consumed, serving

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

# The demo tenant's shape (deploy/demo/tenants.toml): a Commerce7 store routed to Vinoshipper for
# chosen states. Routing reads only the accounts' connectors, so their settings are left out.
ACCOUNTS = {
    "store": Account("store", "commerce7", None),
    "wine-shipping": Account("wine-shipping", "vinoshipper", None),
}
ROUTE = Route("wine-clubs-and-web", "store", "wine-shipping", frozenset({"shipping"}), frozenset({"CA"}))
TENANTS = TenantDirectory({"acme": Tenant("acme", ACCOUNTS, (ROUTE,))})


def accepted(
    order_id: str, state: str = "CA", revision: str = "2026-11-23T10:00:00Z", channel_account: str = "store"
) -> events_pb2.OrderAccepted:
    order = order_pb2.Order(
        order_id=order_id,
        tenant_id="acme",
        channel="commerce7",
        channel_account=channel_account,
        external_id=order_id,
        revision=revision,
        order_type=order_pb2.ORDER_TYPE_SHIPPING,
        delivery_method=order_pb2.DELIVERY_METHOD_SHIP,
        ship_to=postal_address_pb2.PostalAddress(administrative_area=state),
    )
    return events_pb2.OrderAccepted(order=order)


@pytest_asyncio.fixture
async def pool(database):
    await migrate(database, "compliance_routing", MIGRATIONS)
    pool = await create_pool(database, "compliance_routing", 4)
    yield pool
    await pool.close()


async def decisions_and_events(pool) -> tuple[list, int]:
    rows = await pool.fetch("SELECT order_id, outcome, reason_code FROM decisions ORDER BY order_id")
    return [tuple(r) for r in rows], await pool.fetchval("SELECT count(*) FROM outbox")


async def published_decisions(pool) -> dict:
    rows = await pool.fetch("SELECT value FROM outbox ORDER BY id")
    published = [unpack(parse_envelope(r["value"]), compliance_events.RoutingDecided) for r in rows]
    return {event.order.order_id: event.decision for event in published}


async def test_the_decision_names_the_route_rule_and_provider_account_where_stored_and_published(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    await consumer.handle(
        [
            consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme"),
            consumed("intake.orders.v1", accepted("o2", state="NV"), aggregate_id="o2", tenant_id="acme"),
        ]
    )
    decisions = await published_decisions(pool)
    routed, stayed = decisions["o1"], decisions["o2"]
    assert (routed.provider, routed.provider_account, routed.route, routed.rule) == (
        "vinoshipper",
        "wine-shipping",
        "wine-clubs-and-web",
        "ship_to_states",
    )
    assert routed.reason == "shipping order to CA by route 'wine-clubs-and-web'"
    assert (stayed.provider, stayed.route, stayed.rule, stayed.reason_code) == (
        "",
        "",
        "ship_to_states",
        "STATE_NOT_CHOSEN",
    )
    stored = await pool.fetchrow("SELECT route, rule, provider_account FROM decisions WHERE order_id = 'o1'")
    assert tuple(stored) == ("wine-clubs-and-web", "ship_to_states", "wine-shipping")


async def test_a_tenant_with_two_provider_accounts_routes_each_order_by_its_state(pool):
    accounts = {
        **ACCOUNTS,
        "east-shipping": Account("east-shipping", "vinoshipper", None),
    }
    east = Route("east-coast", "store", "east-shipping", frozenset({"shipping"}), frozenset({"NY"}))
    tenants = TenantDirectory({"acme": Tenant("acme", accounts, (ROUTE, east))})
    consumer = OrderAcceptedConsumer(pool, tenants, group="routing", topic="compliance.decisions.v1", producer="t")
    await consumer.handle(
        [
            consumed("intake.orders.v1", accepted("o1", state="CA"), aggregate_id="o1", tenant_id="acme"),
            consumed("intake.orders.v1", accepted("o2", state="NY"), aggregate_id="o2", tenant_id="acme"),
        ]
    )
    decisions = await published_decisions(pool)
    assert (decisions["o1"].route, decisions["o1"].provider_account) == ("wine-clubs-and-web", "wine-shipping")
    assert (decisions["o2"].route, decisions["o2"].provider_account) == ("east-coast", "east-shipping")


async def test_the_read_api_returns_the_route_rule_and_provider_account(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    await consumer.handle([consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")])
    binding = bind(
        compliance_service_pb2,
        compliance_service_pb2_grpc,
        "ComplianceRoutingService",
        ComplianceRoutingServicer(pool, access_for_tests()),
    )
    async with serving(binding) as channel:
        stub = authorized(compliance_service_pb2_grpc.ComplianceRoutingServiceStub(channel), ACME_READER)
        answer = await stub.GetRoutingDecision(
            compliance_service_pb2.GetRoutingDecisionRequest(tenant_id="acme", order_id="o1")
        )
    decision = answer.decision
    assert (decision.provider, decision.provider_account, decision.route, decision.rule, decision.reason_code) == (
        "vinoshipper",
        "wine-shipping",
        "wine-clubs-and-web",
        "ship_to_states",
        "SHIPPING_TO_CHOSEN_STATE",
    )


async def test_an_order_from_before_accounts_had_names_is_routed_from_the_tenants_only_store(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    old = accepted("o1", channel_account="")
    await consumer.handle([consumed("intake.orders.v1", old, aggregate_id="o1", tenant_id="acme")])
    assert (await published_decisions(pool))["o1"].route == "wine-clubs-and-web"


async def test_an_order_of_a_tenant_not_configured_is_kept_in_the_channel(pool):
    consumer = OrderAcceptedConsumer(
        pool, TenantDirectory({}), group="routing", topic="compliance.decisions.v1", producer="t"
    )
    await consumer.handle([consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")])
    decision = (await published_decisions(pool))["o1"]
    assert (decision.reason_code, decision.rule) == ("NO_PROVIDER", "no_route")


async def test_each_order_is_decided_and_announced_once(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    first = consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")
    await consumer.handle(
        [first, consumed("intake.orders.v1", accepted("o2", state="NV"), aggregate_id="o2", tenant_id="acme")]
    )
    assert await decisions_and_events(pool) == (
        [("o1", "route", "SHIPPING_TO_CHOSEN_STATE"), ("o2", "not_required", "STATE_NOT_CHOSEN")],
        2,
    )

    # Redelivery of the same event, and a later revision of the same order (our own writeback
    # causes one), change nothing and publish nothing.
    later = consumed(
        "intake.orders.v1", accepted("o1", revision="2026-11-23T11:00:00Z"), aggregate_id="o1", tenant_id="acme"
    )
    await consumer.handle([first, later])
    assert (await decisions_and_events(pool))[1] == 2


async def test_the_same_event_twice_in_one_batch_is_decided_once(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    event = consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")
    await consumer.handle([event, event])
    assert await decisions_and_events(pool) == ([("o1", "route", "SHIPPING_TO_CHOSEN_STATE")], 1)


async def test_an_event_of_the_wrong_type_is_kept_as_a_dead_letter(pool):
    consumer = OrderAcceptedConsumer(pool, TENANTS, group="routing", topic="compliance.decisions.v1", producer="t")
    wrong = consumed("intake.orders.v1", order_pb2.Order(order_id="o9"), aggregate_id="o9", tenant_id="acme")
    await consumer.handle([wrong, consumed("intake.orders.v1", accepted("o1"), aggregate_id="o1", tenant_id="acme")])
    assert (await decisions_and_events(pool))[0] == [("o1", "route", "SHIPPING_TO_CHOSEN_STATE")]
    assert "expected ordersync.intake.v1.OrderAccepted" in await pool.fetchval("SELECT error FROM dead_letters")
