"""OrderAdminService: the operator's view of and hands on each order's sync.

Requests are validated here and answered with status codes a support tool can act on:
UNAUTHENTICATED without a known bearer token, PERMISSION_DENIED (naming the tenant) when the
caller is not granted the tenant or, for an action, lacks the operator role, INVALID_ARGUMENT
names the missing field, NOT_FOUND names the order and tenant, FAILED_PRECONDITION says why an
action does not apply, UNAVAILABLE means try again.

The actor in an order's activity log is the authenticated caller's name; the request's
`action.operator` is ignored (see the proto).
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.admin.v1 import order_admin_service_pb2 as pb
from ordersync.admin.v1 import order_admin_service_pb2_grpc as pb_grpc
from ordersync.common.v1 import order_pb2

from fulfillment_dispatch.api.peers import PeerViews
from fulfillment_dispatch.domain.actions import Action, ActionRefused, OrderState, refusals
from fulfillment_dispatch.domain.dispatch import Status
from fulfillment_dispatch.domain.guidance import guidance
from fulfillment_dispatch.operator_actions import (
    Operator,
    OperatorActions,
    OrderNotFound,
    OrderSelector,
    ProviderRefused,
    ProviderUnavailable,
)
from fulfillment_dispatch.provider_words import order_state, status_title
from fulfillment_dispatch.storage.dispatches import activity_of, list_dispatches
from libs.connectors.registry import Registry
from libs.platform.auth import OPERATOR, GrpcAccess
from libs.platform.grpc_server import abort

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50

_STATUS = {
    Status.SENDING: pb.SYNC_STATUS_SENDING,
    Status.RETRY_WAIT: pb.SYNC_STATUS_RETRY_WAIT,
    Status.SENT: pb.SYNC_STATUS_SENT,
    Status.FAILED: pb.SYNC_STATUS_FAILED,
    Status.NOT_REQUIRED: pb.SYNC_STATUS_NOT_REQUIRED,
    Status.VOIDED: pb.SYNC_STATUS_VOIDED,
    Status.AWAITING_PULL: pb.SYNC_STATUS_AWAITING_PULL,
}
_STATUS_OF_PROTO = {value: key for key, value in _STATUS.items()}
_ACTION = {
    Action.RETRY: pb.ORDER_ACTION_RETRY_SEND,
    Action.DONT_SEND: pb.ORDER_ACTION_DONT_SEND,
    Action.VOID: pb.ORDER_ACTION_VOID_SYNC,
    Action.CHECK_FULFILLMENT: pb.ORDER_ACTION_CHECK_FULFILLMENT,
}


class OrderAdminServicer(pb_grpc.OrderAdminServiceServicer):
    """Thin: turns requests into OperatorActions calls and their outcomes into responses."""

    def __init__(self, pool, actions: OperatorActions, peers: PeerViews, access: GrpcAccess, *, registry: Registry):
        self._pool = pool
        self._registry = registry  # the providers' status words
        self._access = access
        self._actions = actions
        self._peers = peers

    async def GetOrder(self, request, context: grpc.aio.ServicerContext) -> pb.GetOrderResponse:
        await self._access.require(context, request.order.tenant_id, field="order.tenant_id")
        selector = await _selector(request.order, context)
        row = await _answer(context, self._actions.find(selector))
        activity, services = await asyncio.gather(
            activity_of(self._pool, row["tenant_id"], row["order_id"]),
            self._peers.views(row["tenant_id"], row["order_id"], context.time_remaining()),
        )
        state = order_state(self._registry, row)
        return pb.GetOrderResponse(
            sync=order_sync(row, self._registry),
            services=[pb.ServiceView(service=name, status=status, reason=reason) for name, status, reason in services],
            activity=[_activity(entry) for entry in activity],
            guidance=_guidance(state),
            actions=_action_options(state),
        )

    async def ListOrders(self, request, context: grpc.aio.ServicerContext) -> pb.ListOrdersResponse:
        await self._access.require(context, request.tenant_id)
        if not 0 <= request.page_size <= MAX_PAGE_SIZE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"page_size must be 0..{MAX_PAGE_SIZE}")
        unknown = [s for s in request.statuses if s not in _STATUS_OF_PROTO]
        if unknown:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"statuses: unknown value(s) {unknown}")
        before_seq = await _page_position(request.page_token, request.tenant_id, context)
        size = request.page_size or DEFAULT_PAGE_SIZE
        rows = await list_dispatches(
            self._pool,
            request.tenant_id,
            [_STATUS_OF_PROTO[s].value for s in request.statuses],
            request.updated_after.ToDatetime(tzinfo=UTC) if request.HasField("updated_after") else None,
            size + 1,
            before_seq,
        )
        page, more = rows[:size], len(rows) > size
        token = _page_token(request.tenant_id, page[-1]) if more else ""
        return pb.ListOrdersResponse(orders=[order_sync(row, self._registry) for row in page], next_page_token=token)

    async def RetrySend(self, request, context) -> pb.RetrySendResponse:
        selector, operator = await self._action_request(request, context)
        row = await _answer(context, self._actions.retry(selector, operator))
        return pb.RetrySendResponse(sync=order_sync(row, self._registry))

    async def DontSend(self, request, context) -> pb.DontSendResponse:
        selector, operator = await self._action_request(request, context)
        row = await _answer(context, self._actions.dont_send(selector, operator))
        return pb.DontSendResponse(sync=order_sync(row, self._registry))

    async def VoidSync(self, request, context) -> pb.VoidSyncResponse:
        selector, operator = await self._action_request(request, context)
        row = await _answer(context, self._actions.void(selector, operator))
        return pb.VoidSyncResponse(sync=order_sync(row, self._registry))

    async def CheckFulfillment(self, request, context) -> pb.CheckFulfillmentResponse:
        selector, operator = await self._action_request(request, context)
        row, changed = await _answer(context, self._actions.check_fulfillment(selector, operator))
        return pb.CheckFulfillmentResponse(sync=order_sync(row, self._registry), changed=changed)

    async def _action_request(self, request, context) -> tuple[OrderSelector, Operator]:
        """The order and the operator of an action request; abort unless the caller is an operator
        of the order's tenant and the request names the order and a reason."""
        caller = await self._access.require(context, request.order.tenant_id, OPERATOR, field="order.tenant_id")
        selector = await _selector(request.order, context)
        reason = request.action.reason.strip()
        if not reason:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "action.reason is required: why, for the activity log"
            )
        # Who acted is who authenticated: a request cannot write another name into the activity log.
        return selector, Operator(caller.name, reason)


async def _answer(context: grpc.aio.ServicerContext, call):
    """Await an action, turning its refusals into status codes with their messages."""
    try:
        return await call
    except OrderNotFound as exc:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    except (ActionRefused, ProviderRefused) as exc:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except ProviderUnavailable as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    except LookupError as exc:  # the tenant has no provider account configured
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))


async def _selector(message: pb.OrderSelector, context) -> OrderSelector:
    if not message.tenant_id:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "order.tenant_id is required")
    if bool(message.order_id) == bool(message.channel_order_number):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, "give exactly one of order.order_id and order.channel_order_number"
        )
    return OrderSelector(message.tenant_id, message.order_id, message.channel_order_number)


def order_sync(row, registry: Registry) -> pb.OrderSync:
    """The admin API's view of one dispatch row; its status title in its provider's words."""
    status = Status(row["status"])
    sync = pb.OrderSync(
        order_id=row["order_id"],
        tenant_id=row["tenant_id"],
        channel_ref=order_pb2.ChannelOrderRef(
            channel=row["channel"],
            external_id=row["external_id"],
            external_number=row["external_number"],
            account=row["channel_account"],
        ),
        provider=row["provider"],
        status=_STATUS[status],
        status_title=status_title(registry, row),
        reason_code=row["reason_code"],
        reason=row["reason"],
        provider_order_number=row["provider_order_number"],
        provider_reference=row["provider_reference"],
        attempts=row["attempts"],
    )
    sync.updated_time.FromDatetime(row["updated_at"])
    if status is Status.RETRY_WAIT:
        sync.next_attempt_time.FromDatetime(row["next_attempt_at"])
    if row["shipment_proto"]:
        sync.shipment.ParseFromString(row["shipment_proto"])
    return sync


def _guidance(state: OrderState) -> pb.StatusGuidance:
    explained = guidance(state)
    return pb.StatusGuidance(meaning=explained.meaning, what_to_do=explained.what_to_do)


def _action_options(state: OrderState) -> list[pb.ActionOption]:
    """Each action with the refusal its own rules give the order as it stands; an action can
    still be refused later for what only acting finds out (its provider account, the provider)."""
    return [
        pb.ActionOption(action=_ACTION[action], allowed=not refusal, refusal=refusal)
        for action, refusal in refusals(state).items()
    ]


def _activity(entry) -> pb.ActivityEntry:
    time = Timestamp()
    time.FromDatetime(entry["at"])
    return pb.ActivityEntry(time=time, kind=entry["kind"], actor=entry["actor"], message=entry["message"])


def _page_token(tenant_id: str, row) -> str:
    # Opaque to callers; it names the tenant so that it cannot page through another's list.
    position = {"tenant_id": tenant_id, "before_seq": row["list_seq"]}
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


async def _page_position(token: str, tenant_id: str, context) -> int | None:
    """The listing position a page token stands for (None for the first page)."""
    if not token:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))
        before_seq = position["before_seq"]
        if position["tenant_id"] == tenant_id and isinstance(before_seq, int) and not isinstance(before_seq, bool):
            return before_seq
    except (ValueError, KeyError, TypeError):
        pass
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this API returned for this tenant")
