"""Fulfillment dispatch's part of an order's journey (OrderHistoryService, libs/platform/order_history.py).

Every line of the order's activity log (dispatch_activity): each send attempt with its outcome
(sending, retry_wait, sent, failed), each shipment change, each operator action (actor other
than ordersync), plus dead letters keyed by the order id. The reason code of the order's current
status (dispatches.reason_code) goes on the latest step of that status; the trace id is the
order's (dispatches.traceparent). Orders are looked up by ordersync's id only.
"""

from __future__ import annotations

import asyncpg

from libs.platform.db import PgConnection
from libs.platform.order_history import MAX_STEPS, History, Step, dead_letter_steps, trace_id_of

SERVICE = "fulfillment-dispatch"
SYSTEM_ACTOR = "ordersync"
_ATTEMPTS = {"queued", "sending", "retry_wait", "sent", "failed", "not_queued", "not_required", "reconcile_resend"}
_FAILED = {"failed", "not_queued", "void_failed", "status_check_missing"}


class DispatchHistory:
    """The HistoryReader of fulfillment dispatch: the order's activity log."""

    service = SERVICE
    resolves = False

    async def read(self, conn: PgConnection, tenant_id: str, order: str) -> History | None:
        row = await conn.fetchrow(
            "SELECT order_id, status, reason_code, reason, provider, provider_account, external_number, external_id,"
            " traceparent FROM dispatches WHERE order_id = $1 AND tenant_id = $2",
            order,
            tenant_id,
        )
        if row is None:
            return None
        activity = await conn.fetch(
            "SELECT at, kind, actor, message FROM dispatch_activity WHERE order_id = $1 AND tenant_id = $2"
            " ORDER BY id DESC LIMIT $3",
            order,
            tenant_id,
            MAX_STEPS,
        )
        trace_id = trace_id_of(row["traceparent"])
        steps, coded = [], False
        for entry in activity:  # newest first: the first of the current status gets its reason code
            reason_code = ""
            if not coded and entry["kind"] == row["status"] and entry["actor"] == SYSTEM_ACTOR:
                reason_code, coded = row["reason_code"], True
            steps.append(_step(tenant_id, row, entry, reason_code, trace_id))
        history = History(order_id=row["order_id"], order_number=row["external_number"] or row["external_id"])
        history.steps = steps[::-1] + await dead_letter_steps(conn, SERVICE, [row["order_id"]])
        return history


def _step(tenant_id: str, order: asyncpg.Record, entry: asyncpg.Record, reason_code: str, trace_id: str) -> Step:
    kind, actor = entry["kind"], entry["actor"]
    failed = kind in _FAILED
    message = entry["message"]
    if actor != SYSTEM_ACTOR:
        step_kind, message = "operator_action", f"{actor}: {message}"
    elif kind.startswith("shipment_"):
        step_kind, kind = "shipment", kind.removeprefix("shipment_")
    elif kind in _ATTEMPTS:
        step_kind = "provider_attempt"
    else:
        step_kind = kind
    return Step(
        time=entry["at"],
        service=SERVICE,
        kind=step_kind,
        status=kind,
        reason_code=reason_code,
        message=message,
        trace_id=trace_id,
        failed=failed,
        action=_action(tenant_id, order, kind, reason_code) if failed else "",
    )


def _action(tenant_id: str, order: asyncpg.Record, kind: str, reason_code: str) -> str:
    """The commands that clear a failed step (the dispatch CLI through `ordersync orders`)."""
    orders = f"ordersync orders --tenant {tenant_id} --token-env ORDERSYNC_TOKEN"
    retry = f'{orders} retry {order["order_id"]} --reason "..."'
    if kind == "void_failed":
        return f'void it again once the provider allows: {orders} void {order["order_id"]} --reason "..."'
    if kind == "status_check_missing":
        return f"check the order at {order['provider']}; read its fulfilment again: {orders} check {order['order_id']}"
    if reason_code == "UNMAPPED_CARRIER":
        return (
            f"map the carrier code (`ordersync mapping catalog {order['provider']}` lists the codes;"
            f" `ordersync mapping add {tenant_id} {order['provider']} CODE ...`), then {retry}"
        )
    if kind == "not_queued":
        return f"configure the provider account {order['provider_account'] or '?'} of tenant {tenant_id}, then {retry}"
    return f"correct what the reason says, then {retry} (or keep it out of sync: {orders} dont-send ...)"
