"""Dispatch's read API and the operators' admin API answer only callers granted the tenant, actions
only operators, and the activity log names the caller who acted: real gRPC, real Postgres."""

import grpc
import pytest
import pytest_asyncio
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as admin_grpc
from ordersync.dispatch.v1 import dispatch_service_pb2 as pb
from ordersync.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.admin import OrderAdminServicer
from fulfillment_dispatch.api.grpc import FulfillmentDispatchServicer
from fulfillment_dispatch.api.peers import PeerViews
from fulfillment_dispatch.operator_actions import OperatorActions
from fulfillment_dispatch.storage.dispatches import AttemptResult, NewDispatch, claim_due, enqueue, record_results
from libs.connectors.registry import load
from libs.platform.auth import bearer, on_behalf_of
from libs.platform.grpc_server import bind
from libs.platform.testing import ACME_OPERATOR, ACME_READER, CONSOLE, GLOBEX_OPERATOR, access_for_tests, serving

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
ORDER = admin_pb.OrderSelector(tenant_id="acme", order_id="ord_1")


@pytest_asyncio.fixture
async def stubs(pool):
    """(read API, admin API) stubs of one server, over a tenant acme with one Failed to Send order."""
    await failed_order(pool, "ord_1")
    access = access_for_tests()
    # Don't Send and reads touch neither the provider nor the peers.
    registry = load()
    actions = OperatorActions(pool, None, None, registry=registry, on_requeued=lambda: None)
    reads = bind(pb, pb_grpc, "FulfillmentDispatchService", FulfillmentDispatchServicer(pool, access))
    servicer = OrderAdminServicer(pool, actions, PeerViews({}), access, registry=registry)
    admin = bind(admin_pb, admin_grpc, "OrderAdminService", servicer)
    async with serving(reads, admin) as channel:
        yield pb_grpc.FulfillmentDispatchServiceStub(channel), admin_grpc.OrderAdminServiceStub(channel)


async def failed_order(pool, order_id: str) -> None:
    await settled_order(pool, order_id, "ACME-1", "failed", "UNKNOWN_SKU", "SKU-X unknown")


async def settled_order(pool, order_id: str, number: str, status: str, reason_code="", reason="") -> None:
    """A Vinoshipper order of tenant acme after one attempt that ended in `status`."""
    async with pool.acquire() as conn:
        dispatch = NewDispatch(order_id, "acme", "vinoshipper", number, b"", "commerce7", f"c-{number}", number, "")
        await enqueue(conn, [dispatch])
    await claim_due(pool, 10, lease_s=30)
    result = AttemptResult(order_id, "acme", status, reason_code, reason, None, status, 1)
    async with pool.acquire() as conn:
        await record_results(conn, [result], first_check_after=None)


def calls(stubs) -> dict:
    reads, admin = stubs
    action = admin_pb.OperatorAction(reason="customer will pick up")
    return {
        "GetDispatch": lambda token: reads.GetDispatch(
            pb.GetDispatchRequest(tenant_id="acme", order_id="ord_1"), metadata=bearer(token), timeout=5
        ),
        "GetOrder": lambda token: admin.GetOrder(
            admin_pb.GetOrderRequest(order=ORDER), metadata=bearer(token), timeout=5
        ),
        "ListOrders": lambda token: admin.ListOrders(
            admin_pb.ListOrdersRequest(tenant_id="acme"), metadata=bearer(token), timeout=5
        ),
        "DontSend": lambda token: admin.DontSend(
            admin_pb.DontSendRequest(order=ORDER, action=action), metadata=bearer(token), timeout=5
        ),
        "RetrySend": lambda token: admin.RetrySend(
            admin_pb.RetrySendRequest(order=ORDER, action=action), metadata=bearer(token), timeout=5
        ),
        "VoidSync": lambda token: admin.VoidSync(
            admin_pb.VoidSyncRequest(order=ORDER, action=action), metadata=bearer(token), timeout=5
        ),
        "CheckFulfillment": lambda token: admin.CheckFulfillment(
            admin_pb.CheckFulfillmentRequest(order=ORDER, action=action), metadata=bearer(token), timeout=5
        ),
    }


ALL = ["GetDispatch", "GetOrder", "ListOrders", "DontSend", "RetrySend", "VoidSync", "CheckFulfillment"]
ACTIONS = ["DontSend", "RetrySend", "VoidSync", "CheckFulfillment"]


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


async def status_of(stubs) -> str:
    return (await calls(stubs)["GetOrder"](ACME_READER)).sync.status_title


@pytest.mark.parametrize("method", ALL)
async def test_a_call_without_a_known_token_is_unauthenticated(stubs, method):
    for token in (None, "guessed-token"):
        error = await refusal(calls(stubs)[method](token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "guessed-token" not in error.details()
    assert await status_of(stubs) == "Failed to Send"


@pytest.mark.parametrize("method", ALL)
async def test_another_tenants_operator_is_refused_naming_the_tenant_not_the_token(stubs, method):
    error = await refusal(calls(stubs)[method](GLOBEX_OPERATOR))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'ops@globex.example' is not granted tenant 'acme'"
    assert await status_of(stubs) == "Failed to Send"


@pytest.mark.parametrize("method", ACTIONS)
async def test_a_reader_may_not_act_on_orders(stubs, method):
    error = await refusal(calls(stubs)[method](ACME_READER))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'acme-viewer' may read but not act on orders of tenant 'acme'"
    assert await status_of(stubs) == "Failed to Send"


async def test_a_reader_of_the_tenant_reads_every_view(stubs):
    dispatch = await calls(stubs)["GetDispatch"](ACME_READER)
    listed = await calls(stubs)["ListOrders"](ACME_READER)

    assert dispatch.record.order_id == "ord_1"
    assert [o.order_id for o in listed.orders] == ["ord_1"]


async def test_the_activity_log_names_the_authenticated_operator_not_the_one_the_request_names(stubs):
    _, admin = stubs
    claimed = admin_pb.OperatorAction(operator="mallory@elsewhere.example", reason="customer will pick up")

    kept = await admin.DontSend(
        admin_pb.DontSendRequest(order=ORDER, action=claimed), metadata=bearer(ACME_OPERATOR), timeout=5
    )

    assert kept.sync.status_title == "Not Required to Send"
    assert kept.sync.reason == "Don't Send by jane@acme.example: customer will pick up"
    shown = await calls(stubs)["GetOrder"](ACME_READER)
    acted = [(e.kind, e.actor, e.message) for e in shown.activity if e.kind.startswith("operator_")]
    assert acted == [("operator_dont_send", "jane@acme.example", "customer will pick up")]


async def test_listing_needs_a_grant_of_the_tenant_listed(stubs, pool):
    listed = await refusal(
        stubs[1].ListOrders(admin_pb.ListOrdersRequest(tenant_id="acme"), metadata=bearer(GLOBEX_OPERATOR), timeout=5)
    )
    own = await stubs[1].ListOrders(
        admin_pb.ListOrdersRequest(tenant_id="globex"), metadata=bearer(GLOBEX_OPERATOR), timeout=5
    )

    assert listed.code() == grpc.StatusCode.PERMISSION_DENIED
    assert list(own.orders) == []  # acme's order is not among globex's


def options(shown: admin_pb.GetOrderResponse) -> list[tuple[str, bool, str]]:
    return [(admin_pb.OrderAction.Name(o.action), o.allowed, o.refusal) for o in shown.actions]


async def test_a_failed_order_is_explained_and_offers_retry_or_dont_send_only(stubs):
    _, admin = stubs
    action = admin_pb.OperatorAction(reason="wrong button")

    shown = await calls(stubs)["GetOrder"](ACME_READER)
    voided = await refusal(
        admin.VoidSync(admin_pb.VoidSyncRequest(order=ORDER, action=action), metadata=bearer(ACME_OPERATOR), timeout=5)
    )

    assert shown.guidance == admin_pb.StatusGuidance(
        meaning="The order was not sent to Vinoshipper: SKU-X unknown.",
        what_to_do="Add the product to Vinoshipper under the channel's SKU, then Retry; or Don't Send to keep the"
        " order in the channel.",
    )
    void_refusal = (
        "only an order Sent to Vinoshipper can be voided; this one is Failed to Send; use Retry or Don't Send"
    )
    assert options(shown) == [
        ("ORDER_ACTION_RETRY_SEND", True, ""),
        ("ORDER_ACTION_DONT_SEND", True, ""),
        ("ORDER_ACTION_VOID_SYNC", False, void_refusal),
        (
            "ORDER_ACTION_CHECK_FULFILLMENT",
            False,
            "the order never reached Vinoshipper (it is Failed to Send); there is nothing to check",
        ),
    ]
    assert (voided.code(), voided.details()) == (grpc.StatusCode.FAILED_PRECONDITION, void_refusal)


async def test_a_sent_order_is_explained_and_refuses_retry_as_retrysend_does(stubs, pool):
    _, admin = stubs
    await settled_order(pool, "ord_2", "ACME-2", "sent")
    order = admin_pb.OrderSelector(tenant_id="acme", order_id="ord_2")
    action = admin_pb.OperatorAction(reason="just in case")

    shown = await admin.GetOrder(admin_pb.GetOrderRequest(order=order), metadata=bearer(ACME_READER), timeout=5)
    retried = await refusal(
        admin.RetrySend(
            admin_pb.RetrySendRequest(order=order, action=action), metadata=bearer(ACME_OPERATOR), timeout=5
        )
    )

    assert shown.guidance.meaning == (
        "Vinoshipper has the order as ACME-2 and fulfils it; tracking reaches the channel once it ships."
    )
    assert shown.guidance.what_to_do.startswith("Wait for it to ship; Check Fulfillment shows Vinoshipper's latest")
    retry_refusal = (
        "only a Failed to Send order can be retried; this one is Sent to Vinoshipper; use Check Fulfillment to"
        " refresh it, or Void Sync to cancel it at Vinoshipper"
    )
    assert [(name, allowed) for name, allowed, _ in options(shown)] == [
        ("ORDER_ACTION_RETRY_SEND", False),
        ("ORDER_ACTION_DONT_SEND", False),
        ("ORDER_ACTION_VOID_SYNC", True),
        ("ORDER_ACTION_CHECK_FULFILLMENT", True),
    ]
    assert options(shown)[0][2] == retry_refusal
    assert (retried.code(), retried.details()) == (grpc.StatusCode.FAILED_PRECONDITION, retry_refusal)


async def test_a_retry_through_the_console_is_logged_as_the_staff_member_via_the_console(stubs):
    _, admin = stubs
    mary = (*bearer(CONSOLE), *on_behalf_of("mary@acme.example", "acme", ["operator"]))
    request = admin_pb.RetrySendRequest(order=ORDER, action=admin_pb.OperatorAction(reason="SKU added"))

    retried = await admin.RetrySend(request, metadata=mary, timeout=5)

    assert retried.sync.status == admin_pb.SYNC_STATUS_SENDING
    shown = await calls(stubs)["GetOrder"](ACME_READER)
    acted = [(e.kind, e.actor, e.message) for e in shown.activity if e.kind.startswith("operator_")]
    assert acted == [("operator_retry", "mary@acme.example via operator-console", "SKU added")]


async def test_console_staff_without_the_operator_role_may_only_read(stubs):
    _, admin = stubs
    viewer = (*bearer(CONSOLE), *on_behalf_of("tom@acme.example", "acme", []))
    request = admin_pb.RetrySendRequest(order=ORDER, action=admin_pb.OperatorAction(reason="try"))

    shown = await admin.GetOrder(admin_pb.GetOrderRequest(order=ORDER), metadata=viewer, timeout=5)
    refused = await refusal(admin.RetrySend(request, metadata=viewer, timeout=5))

    assert shown.sync.order_id == "ord_1"
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (
        refused.details()
        == "caller 'tom@acme.example via operator-console' may read but not act on orders of tenant 'acme'"
    )
    assert await status_of(stubs) == "Failed to Send"
