"""Commerce7 → Vinoshipper as a winery runs it: every order kind, every status, every operator action.

One stack (five service processes, real Kafka and Postgres, both simulators) serves four tenants:
an ordinary winery (with two operators), one with Vinoshipper's compliance pre-check on, one
whose Vinoshipper requests time out after one second, and one with two Vinoshipper accounts, each
the provider of its own route. Operators act through the admin gRPC API,
as the CLI does, each with their own bearer token.
"""

from __future__ import annotations

import asyncio
import os
import sys

import grpc
import pytest
import pytest_asyncio
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc
from ordersync.intake.v1 import intake_service_pb2, intake_service_pb2_grpc
from ordersync.ops.v1 import connection_health_pb2 as health_pb

from libs.platform.testing import authorized
from tests.e2e.conftest import Driver, tenant, two_coasts, web_order
from tests.system.journey import JourneyReader
from tests.system.stack import READER, REPO, SHIPPING_ROUTE, WINE_SHIPPING, Stack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]

SENT, FAILED, NOT_REQUIRED, VOIDED = (
    "Sent to Vinoshipper",
    "Failed to Send",
    "Not Required to Send",
    "Voided in Vinoshipper",
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def winery(infra, tmp_path_factory):
    """Drivers by role: 'main', 'precheck' (compliance pre-check on), 'slow' (1 s provider timeout),
    'coasts' (two Vinoshipper accounts, a route to each)."""
    specs = {
        "main": tenant("napa-hills", prefix="NAPA", operators=("jane@winery.example", "sam@winery.example")),
        "precheck": tenant("check-first", prefix="CHECK", compliance_precheck=True),
        "slow": tenant("slow-link", prefix="SLOW", provider_timeout_s=1.0),
        "coasts": two_coasts(),
    }
    run_dir = tmp_path_factory.mktemp("c7vs")
    async with Stack(
        list(specs.values()), run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap
    ) as stack:
        addresses = {name: stack.grpc_address(name) for name in stack.services}
        async with JourneyReader(addresses, stack.token(READER)) as reader:
            drivers = {role: Driver(stack, reader, spec.tenant_id) for role, spec in specs.items()}
            yield drivers
            for driver in drivers.values():
                await driver.close()


async def _place(driver: Driver, order: dict) -> dict:
    return (await driver.place(order))["order"]


async def _provider_number(driver: Driver, placed: dict) -> str:
    shown = await driver.wait_for_status(placed["orderNumber"], SENT)
    return shown.sync.provider_order_number


def _kinds(entries) -> list[str]:
    return [entry.kind for entry in entries]


# ---- which orders go ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["Web", "Inbound", "Club"], ids=["web", "admin", "club"])
async def test_shipping_orders_from_web_admin_and_club_are_sent(winery, channel):
    driver = winery["main"]
    placed = await _place(driver, web_order(channel=channel))
    shown = await driver.wait_for_status(placed["orderNumber"], SENT)
    assert shown.sync.provider_order_number == f"NAPA-{placed['orderNumber']}"
    detail = await driver.provider_order(shown.sync.provider_order_number)
    assert detail["orderNumber"] == shown.sync.provider_order_number


def _collected(channel: str, method: str) -> dict:
    order = web_order(channel=channel, orderDeliveryMethod=method)
    order.pop("shipTo")
    return order


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (_collected("Web", "Pickup"), "PICKUP_ORDER"),
        (_collected("Club", "Pickup"), "PICKUP_ORDER"),
        (_collected("Inbound", "Pickup"), "PICKUP_ORDER"),
        (_collected("POS", "Carry Out"), "CARRY_OUT_ORDER"),
        (web_order(state="TX"), "STATE_NOT_CHOSEN"),
    ],
    ids=["web-pickup", "club-pickup", "admin-pickup", "pos-carry-out", "state-not-chosen"],
)
async def test_orders_that_stay_in_the_channel_are_not_required_to_send(winery, order, code):
    driver = winery["main"]
    before = (await driver.provider_stats())["orders_created"]
    placed = await _place(driver, order)
    shown = await driver.wait_for_status(placed["orderNumber"], NOT_REQUIRED)
    assert shown.sync.reason_code == code and shown.sync.reason
    assert shown.activity[0].kind == "not_required"
    assert (await driver.provider_stats())["orders_created"] == before


@pytest.mark.parametrize(
    ("link", "code"),
    [
        ({"purchaseType": "Refund", "refundOrderId": None}, "REFUND_NOT_SENT"),
        ({"previousOrderId": None}, "EXCHANGE_NOT_SENT"),
    ],
    ids=["refund", "exchange"],
)
async def test_refund_and_exchange_orders_are_never_sent(winery, link, code):
    driver = winery["main"]
    original = await _place(driver, web_order())
    await driver.wait_for_status(original["orderNumber"], SENT)
    linked = await _place(driver, web_order(**{key: value or original["id"] for key, value in link.items()}))
    shown = await driver.wait_for_status(linked["orderNumber"], NOT_REQUIRED)
    assert shown.sync.reason_code == code
    assert shown.sync.provider_order_number == ""


async def test_chosen_states_change_without_a_restart(winery):
    driver = winery["main"]
    spec = driver.stack.tenants[driver.tenant_id]
    before = await _place(driver, web_order(state="OR"))
    await driver.wait_for_status(before["orderNumber"], SENT)

    driver.stack.update_tenant(spec.with_route(SHIPPING_ROUTE, ship_to_states=("CA",)))
    await asyncio.sleep(2.0)  # the services re-read the tenants file every half second
    try:
        after = await _place(driver, web_order(state="OR"))
        shown = await driver.wait_for_status(after["orderNumber"], NOT_REQUIRED)
        assert shown.sync.reason_code == "STATE_NOT_CHOSEN" and "(CA)" in shown.sync.reason
    finally:
        driver.stack.update_tenant(spec)
        await asyncio.sleep(2.0)


async def test_two_routes_send_each_order_to_the_account_its_ship_to_state_chooses(winery):
    driver = winery["coasts"]
    west = await _place(driver, web_order(state="OR"))
    east = await _place(driver, web_order(state="NY"))
    for placed, route, account in ((west, "west-coast", "west"), (east, "new-york", "east")):
        journey = await driver.wait_for(placed["id"], lambda j: j.dispatch == "sent")
        assert (journey.route_name, journey.provider, journey.provider_account) == (route, "vinoshipper", account)
        assert journey.provider_order_number == f"{account.upper()}-{placed['orderNumber']}"
        detail = await driver.provider_order(journey.provider_order_number)
        assert detail["producer_id"] == f"{driver.tenant_id}.{account}", "created with that account's credentials"


# ---- what reaches Vinoshipper ---------------------------------------------------------------


async def test_requested_ship_date_and_email_suppression_reach_vinoshipper(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order(requestedShipDate="2026-12-14"))
    number = await _provider_number(driver, placed)
    detail = await driver.provider_order(number)
    assert detail["requestedShipDate"] == "2026-12-14"
    assert detail["suppressCustomerEmails"] is True


# ---- failures and what an operator does about them -------------------------------------------


async def test_unknown_sku_fails_then_retry_sends_it_once_the_sku_exists(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order(sku="SKU-ROSE"))
    failed = await driver.wait_for_status(placed["orderNumber"], FAILED)
    assert failed.sync.reason_code == "UNKNOWN_SKU" and "SKU-ROSE" in failed.sync.reason
    health = await driver.dispatch_health()
    unmapped = {(u.kind, u.code, u.example_order_id) for c in health.connections for u in c.unmapped}
    assert (health_pb.UNMAPPED_KIND_SKU, "SKU-ROSE", failed.sync.order_id) in unmapped

    products = driver.stack.tenants[driver.tenant_id].account(WINE_SHIPPING)["products"]
    await driver.stack.update_account(driver.tenant_id, WINE_SHIPPING, products=[*products, "SKU-ROSE"])
    retried = await driver.act("RetrySend", placed["orderNumber"], reason="SKU-ROSE added in Vinoshipper")
    assert retried.sync.status_title in ("Sending to Vinoshipper", SENT)
    shown = await driver.wait_for_status(placed["orderNumber"], SENT)
    retry_entry = next(e for e in shown.activity if e.kind == "operator_retry")
    assert (retry_entry.actor, retry_entry.message) == ("jane@winery.example", "SKU-ROSE added in Vinoshipper")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await driver.act("RetrySend", placed["orderNumber"], reason="again")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "only a Failed to Send order can be retried; this one is Sent to Vinoshipper" in refused.value.details()


async def test_compliance_rejection_lists_the_problems_and_dont_send_keeps_it_in_the_channel(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order(state="NY"))  # chosen by the winery, not licensed at Vinoshipper
    failed = await driver.wait_for_status(placed["orderNumber"], FAILED)
    assert failed.sync.reason_code == "COMPLIANCE_REJECTED" and "NY" in failed.sync.reason

    kept = await driver.act(
        "DontSend", placed["orderNumber"], operator="sam@winery.example", reason="customer will pick up"
    )
    assert kept.sync.status_title == NOT_REQUIRED and kept.sync.reason_code == "DONT_SEND"
    assert "sam@winery.example" in kept.sync.reason and "customer will pick up" in kept.sync.reason
    shown = await driver.show(placed["orderNumber"])
    assert ("operator_dont_send", "sam@winery.example") in [(e.kind, e.actor) for e in shown.activity]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await driver.act("RetrySend", placed["orderNumber"], reason="changed my mind")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Not Required to Send" in refused.value.details()


async def test_compliance_precheck_fails_the_order_without_creating_it(winery):
    driver = winery["precheck"]
    before = await driver.provider_stats()
    placed = await _place(driver, web_order(state="NY"))
    failed = await driver.wait_for_status(placed["orderNumber"], FAILED)
    assert failed.sync.reason_code == "COMPLIANCE_PRECHECK_FAILED" and "NY" in failed.sync.reason
    after = await driver.provider_stats()
    assert after["orders_created"] == before["orders_created"]
    assert after["requests"]["check_compliance"] > before["requests"].get("check_compliance", 0)

    compliant = await _place(driver, web_order(state="CA"))
    await driver.wait_for_status(compliant["orderNumber"], SENT)


async def _fault(driver: Driver, **fault) -> None:
    (await driver.stack.http.post(f"{driver.vs}/_sim/faults", json=fault)).raise_for_status()


async def test_provider_5xx_on_create_is_retried_and_created_once(winery):
    driver = winery["main"]
    await _fault(driver, route="upsert", status=502, count=2)
    before = await driver.provider_stats()
    placed = await _place(driver, web_order())
    shown = await driver.wait_for_status(placed["orderNumber"], SENT, timeout_s=60)
    after = await driver.provider_stats()
    assert after["orders_created"] == before["orders_created"] + 1
    assert after["duplicate_submissions"] == before["duplicate_submissions"]
    assert _kinds(shown.activity).count("retry_wait") == 2


async def test_provider_timeout_on_create_is_read_back_and_never_created_twice(winery):
    # Vinoshipper takes 1.5 s to create; the tenant's client gives up after 1 s, so the answer is lost.
    driver = winery["slow"]
    await _fault(driver, route="upsert", delay_s=1.5, count=1)
    before = await driver.provider_stats()
    placed = await _place(driver, web_order())
    shown = await driver.wait_for_status(placed["orderNumber"], SENT, timeout_s=60)
    after = await driver.provider_stats()
    assert after["orders_created"] == before["orders_created"] + 1
    assert after["duplicate_submissions"] == before["duplicate_submissions"]
    assert "not sent again" in shown.activity[-1].message


# ---- fulfilment back, by webhook, by polling, on demand ---------------------------------------


async def test_a_lost_vinoshipper_webhook_still_delivers_the_status_by_polling(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order())
    number = await _provider_number(driver, placed)
    await driver.provider(number, "ship", trackingNumbers=["1ZLOSTHOOK0000001"], webhook=False)
    journey = await driver.wait_for(placed["id"], lambda j: j.written_back == "shipped", timeout_s=60)
    assert journey.tracking == ("1ZLOSTHOOK0000001",) and journey.customer_notified
    channel = await driver.channel_order(placed["id"])
    assert channel["fulfillments"][0]["shipped"]["trackingNumbers"] == ["1ZLOSTHOOK0000001"]


async def test_check_fulfillment_fetches_the_latest_state_now(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order())
    number = await _provider_number(driver, placed)
    unchanged = await driver.act("CheckFulfillment", placed["orderNumber"], reason="customer asked")
    assert unchanged.changed is False

    await driver.provider(number, "fulfil", webhook=False)
    await driver.provider(number, "ship", trackingNumbers=["1ZCHECKNOW0000001"], webhook=False)
    checked = await driver.act("CheckFulfillment", placed["orderNumber"], reason="customer asked again")
    if checked.changed:  # the poller may have found it first; either way the shipment is there now
        assert list(checked.sync.shipment.tracking_numbers) == ["1ZCHECKNOW0000001"]
    shown = await driver.show(placed["orderNumber"])
    assert list(shown.sync.shipment.tracking_numbers) == ["1ZCHECKNOW0000001"]
    assert "operator_check_fulfillment" in _kinds(shown.activity)
    await driver.wait_for(placed["id"], lambda j: j.written_back == "shipped")


async def test_our_own_fulfilment_update_is_recognised_and_changes_nothing(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order())
    number = await _provider_number(driver, placed)
    await driver.provider(number, "ship", trackingNumbers=["1ZSELFECHO0000001"])
    await driver.wait_for(placed["id"], lambda j: j.written_back == "shipped")
    conn = await driver.stack.connect_service_db()
    try:
        outcomes = await _eventually(
            lambda: conn.fetch(
                "SELECT r.outcome FROM order_intake.webhook_receipts r JOIN order_intake.orders o"
                " ON o.order_id = r.order_id WHERE o.external_id = $1 ORDER BY r.id",
                placed["id"],
            ),
            lambda rows: "unchanged" in [r["outcome"] for r in rows],
        )
        decisions = await conn.fetchval(
            "SELECT count(*) FROM compliance_routing.decisions d JOIN order_intake.orders o"
            " ON o.order_id = d.order_id WHERE o.external_id = $1",
            placed["id"],
        )
    finally:
        await conn.close()
    assert [r["outcome"] for r in outcomes][0] == "accepted"
    assert decisions == 1
    assert len((await driver.channel_order(placed["id"]))["fulfillments"]) == 1


async def _eventually(read, done, timeout_s: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await read()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.3)


# ---- voiding ---------------------------------------------------------------------------------


async def test_void_sync_cancels_at_vinoshipper_and_tells_the_channel(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order())
    number = await _provider_number(driver, placed)
    voided = await driver.act("VoidSync", placed["orderNumber"], reason="refunding: customer cancelled")
    assert voided.sync.status_title == VOIDED and voided.sync.reason_code == "VOIDED_AT_PROVIDER"
    assert (await driver.provider_order(number))["canceledAt"]
    await driver.wait_for(placed["id"], lambda j: j.written_back == "cancelled")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await driver.act("VoidSync", placed["orderNumber"], reason="twice")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already Voided in Vinoshipper" in refused.value.details()


async def test_an_order_cancelled_in_vinoshipper_shows_voided(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order())
    number = await _provider_number(driver, placed)
    await driver.provider(number, "cancel", reason="Duplicate order")
    shown = await driver.wait_for_status(placed["orderNumber"], VOIDED)
    assert "Duplicate order" in shown.sync.reason


async def test_a_delivered_order_cannot_be_voided(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order())
    number = await _provider_number(driver, placed)
    for step in ("fulfil", "ship", "deliver"):
        await driver.provider(number, step)
    await driver.wait_for(placed["id"], lambda j: j.written_back == "delivered")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await driver.act("VoidSync", placed["orderNumber"], reason="customer wants a refund")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already delivered" in refused.value.details()
    assert not (await driver.provider_order(number))["canceledAt"]


async def test_address_change_is_void_refund_and_a_new_order(winery):
    driver = winery["main"]
    original = await _place(driver, web_order(state="CA"))
    first_number = await _provider_number(driver, original)
    await driver.act("VoidSync", original["orderNumber"], reason="address change: moving to Oregon")
    refund = await _place(driver, web_order(state="CA", purchaseType="Refund", refundOrderId=original["id"]))
    replacement = await _place(driver, web_order(state="OR"))

    assert (await driver.wait_for_status(original["orderNumber"], VOIDED)).sync.provider_order_number == first_number
    assert (await driver.wait_for_status(refund["orderNumber"], NOT_REQUIRED)).sync.reason_code == "REFUND_NOT_SENT"
    new_number = await _provider_number(driver, replacement)
    assert new_number != first_number
    assert (await driver.provider_order(new_number))["shipToAddress"]["stateCode"] == "OR"


# ---- the admin API itself ------------------------------------------------------------------


async def test_list_failed_orders_of_the_last_day_for_one_tenant(winery):
    driver, other = winery["main"], winery["precheck"]
    failed = await _place(driver, web_order(sku="SKU-LIST-MISSING"))
    await driver.wait_for_status(failed["orderNumber"], FAILED)
    elsewhere = await _place(other, web_order(sku="SKU-LIST-MISSING"))
    await other.wait_for_status(elsewhere["orderNumber"], FAILED)

    request = admin_pb.ListOrdersRequest(
        tenant_id=driver.tenant_id, statuses=[admin_pb.SYNC_STATUS_FAILED], page_size=500
    )
    request.updated_after.GetCurrentTime()
    request.updated_after.seconds -= 86400
    listed = await driver.admin().ListOrders(request)
    numbers = {o.channel_ref.external_number for o in listed.orders}
    assert str(failed["orderNumber"]) in numbers
    assert all(o.status == admin_pb.SYNC_STATUS_FAILED and o.tenant_id == driver.tenant_id for o in listed.orders)
    assert elsewhere["id"] not in {o.channel_ref.external_id for o in listed.orders}


async def test_another_tenants_order_is_not_found_and_actions_need_a_reason(winery):
    driver, other = winery["main"], winery["precheck"]
    placed = await _place(driver, web_order(sku="SKU-NOT-THERE"))
    await driver.wait_for_status(placed["orderNumber"], FAILED)
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        await other.admin().GetOrder(
            admin_pb.GetOrderRequest(
                order=admin_pb.OrderSelector(
                    tenant_id=other.tenant_id, order_id=(await driver.show(placed["orderNumber"])).sync.order_id
                )
            )
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND and other.tenant_id in hidden.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await driver.act("DontSend", placed["orderNumber"], reason=" ")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "action.reason" in invalid.value.details()
    assert (await driver.show(placed["orderNumber"])).sync.status_title == FAILED


# ---- who may call -----------------------------------------------------------------------------


async def _refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def test_the_admin_api_answers_only_its_tenants_callers_and_actions_only_operators(winery):
    driver, other = winery["main"], winery["precheck"]
    stack = driver.stack
    placed = await _place(driver, web_order(sku="SKU-AUTH-MISSING"))
    await driver.wait_for_status(placed["orderNumber"], FAILED)
    show = admin_pb.GetOrderRequest(order=driver.selector(placed["orderNumber"]))
    dont_send = admin_pb.DontSendRequest(
        order=driver.selector(placed["orderNumber"]), action=admin_pb.OperatorAction(reason="r")
    )
    async with grpc.aio.insecure_channel(stack.grpc_address("fulfillment_dispatch")) as channel:
        unauthenticated = await _refusal(admin_grpc.OrderAdminServiceStub(channel).GetOrder(show, timeout=10))
    foreign = await _refusal(driver.admin(stack.operator(other.tenant_id)).DontSend(dont_send))
    listed_foreign = await _refusal(
        driver.admin(stack.operator(other.tenant_id)).ListOrders(admin_pb.ListOrdersRequest(tenant_id=driver.tenant_id))
    )
    viewer = driver.admin(f"viewer@{driver.tenant_id}")
    read_only = await _refusal(viewer.DontSend(dont_send))

    assert unauthenticated.code() == grpc.StatusCode.UNAUTHENTICATED
    assert foreign.code() == listed_foreign.code() == grpc.StatusCode.PERMISSION_DENIED
    assert foreign.details() == f"caller 'ops@{other.tenant_id}' is not granted tenant '{driver.tenant_id}'"
    assert read_only.code() == grpc.StatusCode.PERMISSION_DENIED
    assert read_only.details() == (
        f"caller 'viewer@{driver.tenant_id}' may read but not act on orders of tenant '{driver.tenant_id}'"
    )
    assert stack.token(stack.operator(other.tenant_id)) not in foreign.details()
    assert (await viewer.GetOrder(show)).sync.status_title == FAILED  # reading needs no operator role
    assert (await driver.show(placed["orderNumber"])).sync.status_title == FAILED  # no refusal changed it


async def test_the_activity_log_names_the_caller_not_the_operator_the_request_claims(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order(state="NY"))
    await driver.wait_for_status(placed["orderNumber"], FAILED)
    request = admin_pb.DontSendRequest(
        order=driver.selector(placed["orderNumber"]),
        action=admin_pb.OperatorAction(operator="someone-else@winery.example", reason="customer will pick up"),
    )

    kept = await driver.admin("sam@winery.example").DontSend(request)

    assert "sam@winery.example" in kept.sync.reason and "someone-else" not in kept.sync.reason
    shown = await driver.show(placed["orderNumber"])
    assert [(e.kind, e.actor) for e in shown.activity if e.kind.startswith("operator_")] == [
        ("operator_dont_send", "sam@winery.example")
    ]


async def test_intakes_read_api_shows_customer_details_only_to_callers_granted_the_tenant(winery):
    driver, other = winery["main"], winery["precheck"]
    stack = driver.stack
    placed = await _place(driver, web_order())
    order_id = (await driver.wait_for(placed["id"], lambda j: bool(j.order_id))).order_id
    request = intake_service_pb2.GetOrderRequest(tenant_id=driver.tenant_id, order_id=order_id)
    async with grpc.aio.insecure_channel(stack.grpc_address("order_intake")) as channel:
        stub = intake_service_pb2_grpc.OrderIntakeServiceStub(channel)
        unauthenticated = await _refusal(stub.GetOrder(request, timeout=10))
        unknown = await _refusal(authorized(stub, "not-a-token").GetOrder(request))
        foreign = await _refusal(authorized(stub, stack.token(f"viewer@{other.tenant_id}")).GetOrder(request))
        listed = await _refusal(
            authorized(stub, stack.token(f"viewer@{other.tenant_id}")).ListOrders(
                intake_service_pb2.ListOrdersRequest(tenant_id=driver.tenant_id)
            )
        )
        shown = await authorized(stub, stack.token(f"viewer@{driver.tenant_id}")).GetOrder(request)

    assert unauthenticated.code() == unknown.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not-a-token" not in unknown.details()
    assert foreign.code() == listed.code() == grpc.StatusCode.PERMISSION_DENIED
    assert foreign.details() == f"caller 'viewer@{other.tenant_id}' is not granted tenant '{driver.tenant_id}'"
    assert shown.record.order.order_id == order_id


async def test_show_gives_every_services_view_and_the_cli_prints_it(winery):
    driver = winery["main"]
    placed = await _place(driver, web_order())
    await driver.wait_for_status(placed["orderNumber"], SENT)
    shown = await driver.show(placed["orderNumber"])
    views = {view.service: view.status for view in shown.services}
    assert views["order-intake"].startswith("accepted") and views["compliance-routing"] == "routed"
    assert _kinds(shown.activity)[:2] == ["queued", "sent"]

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fulfillment_dispatch.cli",
        "--addr",
        driver.stack.grpc_address("fulfillment_dispatch"),
        "--tenant",
        driver.tenant_id,
        "show",
        str(placed["orderNumber"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "ORDERSYNC_ADMIN_TOKEN": driver.stack.token(f"viewer@{driver.tenant_id}")},
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert "status:   Sent to Vinoshipper" in text and "compliance-routing" in text and "queued" in text
    assert f"  next:     {shown.guidance.what_to_do}" in text and "Check Fulfillment" in shown.guidance.what_to_do
