"""OrderIntakeService: proto <-> storage rows, callers checked; errors as gRPC status codes.

SyncNow acts (an operator of the tenant brings a pulled account's poll forward) or, as a dry run,
only reads (a reader of the tenant sees what a poll would do; pulling/dry_run.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import NoReturn

import grpc
from google.protobuf import timestamp_pb2
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.connectors.base.contract import Capability
from libs.connectors.base.errors import ConnectorError
from libs.platform.accounts import AccountClients, OpenAccount
from libs.platform.auth import OPERATOR, READ, GrpcAccess
from order_intake.pulling.dry_run import MAX_PAGES, DryRunReport, dry_run
from order_intake.revisions import RevisionBuilder
from order_intake.storage import orders as storage
from order_intake.storage import pulls
from order_intake.storage.orders import RevisionWriter

_STATUS = {
    "accepted": pb.INTAKE_STATUS_ACCEPTED,
    "invalid": pb.INTAKE_STATUS_INVALID,
    "not_imported": pb.INTAKE_STATUS_NOT_IMPORTED,
}
_STATUS_NAMES = {value: name for name, value in _STATUS.items()}


class OrderIntakeServicer(pb_grpc.OrderIntakeServiceServicer):
    """Read API over intake's records (customer details included); every call is scoped by
    tenant_id, which the caller must be granted."""

    def __init__(
        self,
        pool,
        access: GrpcAccess,
        *,
        accounts: AccountClients | None = None,
        builder: RevisionBuilder | None = None,
        max_dry_run_pages: int = MAX_PAGES,
    ):
        self._pool = pool
        self._access = access
        # SyncNow needs the tenants' accounts (and, for a dry run, how revisions are built).
        self._accounts = accounts
        self._builder = builder
        self._max_dry_run_pages = max_dry_run_pages

    async def GetOrder(self, request: pb.GetOrderRequest, context: grpc.aio.ServicerContext) -> pb.GetOrderResponse:
        await self._access.require(context, request.tenant_id)
        if request.order_id:
            row = await storage.get_order(self._pool, request.tenant_id, request.order_id)
        elif request.channel_ref.channel and request.channel_ref.external_id:
            ref = request.channel_ref
            row = await storage.get_order_by_channel_ref(self._pool, request.tenant_id, ref.channel, ref.external_id)
        else:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "give order_id, or channel_ref with channel and external_id"
            )
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"tenant {request.tenant_id!r} has no such order")
        record = _record(row)
        locked = await storage.locked_changes_of_order(self._pool, request.tenant_id, record.order.order_id)
        record.locked_changes.extend(_locked(r) for r in locked)
        return pb.GetOrderResponse(record=record)

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOrdersResponse:
        await self._access.require(context, request.tenant_id)
        if not 0 <= request.page_size <= 500:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be between 0 and 500")
        limit = request.page_size or 100
        try:
            after = _decode_token(request.page_token) if request.page_token else None
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this API issued")
        if request.status and request.status not in _STATUS_NAMES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "status is not one intake stores")
        rows = await storage.list_orders(
            self._pool,
            request.tenant_id,
            limit,
            after,
            status=_STATUS_NAMES.get(request.status, ""),
            rule_code=request.rule_code,
        )
        token = _encode_token(rows[-1]) if len(rows) == limit else ""
        return pb.ListOrdersResponse(records=[_record(r) for r in rows], next_page_token=token)

    async def ListPullCursors(
        self, request: pb.ListPullCursorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPullCursorsResponse:
        await self._access.require(context, request.tenant_id)
        rows = await pulls.list_cursors(self._pool, request.tenant_id)
        return pb.ListPullCursorsResponse(cursors=[_cursor(r) for r in rows])

    async def ListLockedChanges(
        self, request: pb.ListLockedChangesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListLockedChangesResponse:
        await self._access.require(context, request.tenant_id)
        if not 0 <= request.page_size <= 500:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be between 0 and 500")
        limit = request.page_size or 100
        try:
            after = _decode_locked_token(request.page_token) if request.page_token else None
        except ValueError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this API issued")
        rows = await storage.list_locked_changes(self._pool, request.tenant_id, request.account, limit, after)
        token = _encode_locked_token(rows[-1]) if len(rows) == limit else ""
        return pb.ListLockedChangesResponse(changes=[_locked(r) for r in rows], next_page_token=token)

    async def SyncNow(self, request: pb.SyncNowRequest, context: grpc.aio.ServicerContext) -> pb.SyncNowResponse:
        await self._access.require(context, request.tenant_id, READ if request.dry_run else OPERATOR)
        if not request.account:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "account is required")
        accounts, builder = self._accounts, self._builder
        if accounts is None or builder is None:
            await _abort(context, grpc.StatusCode.UNIMPLEMENTED, "this intake serves no pulled accounts")
        try:
            opened: OpenAccount | None = await accounts.channel(request.tenant_id, request.account)
        except LookupError:  # no such tenant or account, or an account that is not a channel
            opened = None
        if opened is None or not opened.connector.info.can(Capability.PULL_ORDERS):
            await _abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"tenant {request.tenant_id!r} has no pulled channel account {request.account!r}",
            )
        if request.dry_run:
            try:
                report = await dry_run(
                    self._pool,
                    opened,
                    accounts.registry,
                    builder,
                    RevisionWriter(self._pool),
                    max_pages=self._max_dry_run_pages,
                )
            except ConnectorError as exc:
                # Only a retryable error is UNAVAILABLE; bad credentials, say, will not pass by retrying.
                code = grpc.StatusCode.UNAVAILABLE if exc.retryable else grpc.StatusCode.FAILED_PRECONDITION
                await context.abort(code, f"the channel refused the dry run: {exc}")
            return _dry_run_answer(report)
        key = pulls.AccountKey(request.tenant_id, request.account)
        await pulls.ensure_rows(self._pool, [(key.tenant_id, key.account, opened.connector.info.id)])
        was = await pulls.sync_now(self._pool, key)
        if was is None:  # the row was made just above; only a concurrent delete gets here
            await _abort(context, grpc.StatusCode.NOT_FOUND, f"{request.account!r} has no pull cursor")
        answer = pb.SyncNowResponse(polling_now=bool(was["lease_owner"]))
        answer.previous_next_poll_time.FromDatetime(was["next_poll_at"])
        due = was["next_poll_at"].isoformat(timespec="seconds")
        answer.message = (
            f"{request.account} is being polled now: that poll takes what the channel has (it was due {due})"
            if answer.polling_now
            else f"{request.account} will be polled within seconds (it was due {due})"
        )
        return answer


async def _abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("context.abort returned")  # it raises; this tells type checkers so


def _dry_run_answer(report: DryRunReport) -> pb.SyncNowResponse:
    answer = pb.SyncNowResponse(pages=report.pages, stopped_early=report.stopped_early)
    for record in report.records:
        answer.records.add(
            external_id=record.external_id,
            external_number=record.external_number,
            action=pb.DryRunAction.Value("DRY_RUN_ACTION_" + record.action.upper()),
            detail=record.detail,
            rule_failures=[
                pb.RuleFailure(code=f.code, field=f.field, sentence=f.sentence) for f in record.rule_failures
            ],
        )
    counts: dict[str, int] = {}
    for record in report.records:
        counts[record.action] = counts.get(record.action, 0) + 1
    summary = ", ".join(f"{n} {action.replace('_', ' ')}" for action, n in sorted(counts.items())) or "nothing to sync"
    answer.message = f"dry run of {report.pages} page(s): {summary}; nothing was committed or sent"
    if report.stopped_early:
        answer.message += f"; stopped after {report.pages} pages with more to fetch"
    if report.held:
        answer.message += "; a poll would stop at the last page, which holds orders for the import delay"
    return answer


def _locked(row) -> pb.LockedChange:
    change = pb.LockedChange(
        order_id=row["order_id"],
        channel=row["channel"],
        account=row["account"],
        external_id=row["external_id"],
        external_number=row["external_number"],
        revision=row["revision"] or "",
        message=row["detail"],
    )
    change.received_time.FromDatetime(row["received_at"])
    return change


def _encode_locked_token(row) -> str:
    raw = json.dumps([row["received_at"].isoformat(), row["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_locked_token(token: str) -> tuple:
    try:
        received_at, receipt_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(received_at), int(receipt_id)
    except Exception as exc:
        raise ValueError("bad page token") from exc


def _cursor(row) -> pb.PullCursor:
    cursor = pb.PullCursor(
        account=row["account"],
        connector=row["connector"],
        cursor=row["cursor"],
        lease_owner=row["lease_owner"] or "",
        failures=row["failures"],
        last_error=row["last_error"],
        orders_pulled=row["orders_pulled"],
        unacknowledged_count=row["unacknowledged_count"],
        awaiting_handover_count=row["awaiting_handover_count"],
        handed_over_unacknowledged_count=row["handed_over_unacknowledged_count"],
        unreported_sync_results_count=row["unreported_results_count"],
    )
    for field, column in (
        ("lease_expire_time", "lease_until"),
        ("next_poll_time", "next_poll_at"),
        ("last_poll_time", "last_polled_at"),
    ):
        if row[column] is not None:
            getattr(cursor, field).FromDatetime(row[column])
    return cursor


def _record(row) -> pb.IntakeRecord:
    order = order_pb2.Order()
    order.ParseFromString(row["order_proto"])
    received = timestamp_pb2.Timestamp()
    received.FromDatetime(row["received_at"])
    return pb.IntakeRecord(
        order=order,
        status=_STATUS.get(row["status"], pb.INTAKE_STATUS_UNSPECIFIED),
        status_reason=row["status_reason"],
        revision_count=row["revision_count"],
        received_time=received,
        trace_id=row["trace_id"],
        rule_failures=[
            pb.RuleFailure(code=f["code"], field=f["field"], sentence=f["sentence"])
            for f in json.loads(row["rule_failures"])
        ],
    )


def _encode_token(row) -> str:
    raw = json.dumps([row["received_at"].isoformat(), row["order_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple:
    try:
        received_at, order_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(received_at), order_id
    except Exception as exc:
        raise ValueError("bad page token") from exc
