"""Tracking writeback's part of an order's journey (OrderHistoryService, libs/platform/order_history.py).

Every line of the order's writeback log (writeback_activity: wanted, then each attempt's outcome
written, retry_wait, failed, blocked), plus dead letters keyed by the order id. The journey is
complete when the order was delivered and that was written back (writebacks.written_status
delivered, status written). Orders are looked up by ordersync's id only.
"""

from __future__ import annotations

import asyncpg

from libs.platform.db import PgConnection
from libs.platform.order_history import MAX_STEPS, History, Step, dead_letter_steps, trace_id_of

SERVICE = "tracking-writeback"
_FAILED = {"failed", "blocked"}


class WritebackHistory:
    """The HistoryReader of tracking writeback: the order's writeback log."""

    service = SERVICE
    resolves = False

    async def read(self, conn: PgConnection, tenant_id: str, order: str) -> History | None:
        row = await conn.fetchrow(
            "SELECT order_id, channel, channel_account, external_number, external_id, status, written_status,"
            " reason, traceparent FROM writebacks WHERE order_id = $1 AND tenant_id = $2",
            order,
            tenant_id,
        )
        if row is None:
            return None
        activity = await conn.fetch(
            "SELECT at, kind, message FROM (SELECT id, at, kind, message FROM writeback_activity"
            " WHERE order_id = $1 AND tenant_id = $2 ORDER BY id DESC LIMIT $3) AS latest ORDER BY id",
            order,
            tenant_id,
            MAX_STEPS,
        )
        trace_id = trace_id_of(row["traceparent"])
        history = History(
            order_id=row["order_id"],
            order_number=row["external_number"] or row["external_id"],
            complete=row["status"] == "written" and row["written_status"] == "delivered",
        )
        history.steps = [_step(tenant_id, row, entry, trace_id) for entry in activity]
        history.steps += await dead_letter_steps(conn, SERVICE, [row["order_id"]])
        return history


def _step(tenant_id: str, order: asyncpg.Record, entry: asyncpg.Record, trace_id: str) -> Step:
    kind = entry["kind"]
    failed = kind in _FAILED
    return Step(
        time=entry["at"],
        service=SERVICE,
        kind="writeback",
        status=kind,
        message=entry["message"],
        trace_id=trace_id,
        failed=failed,
        action=_action(tenant_id, order, kind) if failed else "",
    )


def _action(tenant_id: str, order: asyncpg.Record, kind: str) -> str:
    if kind == "blocked":
        # The channel takes only its own carrier codes and the courier maps to none of them.
        return (
            f"map the courier to one of {order['channel']}'s carrier codes"
            f" (`ordersync mapping catalog {order['channel']}`; `ordersync mapping add {tenant_id}"
            f" {order['channel']} CODE ...`): the writeback is tried again when the mappings change"
        )
    return (
        f"correct what the message says at {order['channel']} account {order['channel_account'] or '?'}, then"
        f" re-drive shipments never written back: ordersync reconcile {tenant_id}"
    )
