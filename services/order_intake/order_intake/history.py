"""Order intake's part of an order's journey (OrderHistoryService, libs/platform/order_history.py).

Resolves the operator's `order` (ordersync's id, or the channel's order id or number) among the
tenant's orders, then reads intake's own records of it: every receipt (webhook or pulled record)
with its outcome, the import rules a not-imported order fails, the sync result told back to the
channel (handover_acks), and dead letters keyed by the order id.
"""

from __future__ import annotations

import json

import asyncpg

from libs.platform.db import PgConnection
from libs.platform.order_history import History, Step, dead_letter_steps

SERVICE = "order-intake"
# Receipt outcomes that mean the order (or this change of it) did not get in.
_REFUSED = {"invalid", "malformed", "too_large"}
# How a receipt's body came, by its source; pulled and reconciled records read "poll".
_HOW = {"push": "webhook", "resubmit": "resubmitted webhook"}


class IntakeHistory:
    """The HistoryReader of order intake: it resolves the order, NOT_FOUND when unknown."""

    service = SERVICE
    resolves = True

    async def read(self, conn: PgConnection, tenant_id: str, order: str) -> History | None:
        row = await conn.fetchrow(
            "SELECT order_id, channel, external_id, external_number, status, status_reason, rule_failures, updated_at"
            " FROM orders WHERE tenant_id = $1 AND (order_id = $2 OR external_id = $2 OR external_number = $2)"
            " ORDER BY order_id = $2 DESC, external_id = $2 DESC, received_at DESC LIMIT 1",
            tenant_id,
            order,
        )
        if row is None:
            return None
        history = History(order_id=row["order_id"], order_number=row["external_number"] or row["external_id"])
        history.steps += await _receipts(conn, tenant_id, row)
        history.steps += _rule_failures(tenant_id, row)
        history.steps += await _sync_results(conn, tenant_id, row["order_id"])
        history.steps += await dead_letter_steps(conn, SERVICE, [row["order_id"]])
        return history


async def _receipts(conn: PgConnection, tenant_id: str, order: asyncpg.Record) -> list[Step]:
    rows = await conn.fetch(
        "SELECT r.id, r.received_at, r.outcome, r.detail, r.trace_id, r.source, r.account, v.revision"
        " FROM webhook_receipts r LEFT JOIN order_revisions v ON v.receipt_id = r.id"
        " WHERE r.order_id = $1 AND r.tenant_id = $2 ORDER BY r.id",
        order["order_id"],
        tenant_id,
    )
    steps = []
    for index, row in enumerate(rows):
        how = _HOW.get(row["source"], "poll")
        revision = f" revision {row['revision']}" if row["revision"] else ""
        kind = "received" if index == 0 else "revision"
        failed, action = False, ""
        if row["outcome"] == "locked_after_sync":
            kind = "locked_change"
            failed = True
            action = (
                "make the change at the provider by hand (the order was synced already), then see"
                f" `ordersync intake --tenant {tenant_id} --token-env ORDERSYNC_TOKEN locked`"
            )
        elif row["outcome"] in _REFUSED:
            failed = True
            action = f"correct the order in {order['channel']}; its next change is received again"
        message = f"{how}{revision} from {order['channel']}" + (f": {row['detail']}" if row["detail"] else "")
        steps.append(
            Step(
                time=row["received_at"],
                service=SERVICE,
                kind=kind,
                status=row["outcome"],
                message=message,
                trace_id=row["trace_id"],
                failed=failed,
                action=action,
            )
        )
    return steps


def _rule_failures(tenant_id: str, order: asyncpg.Record) -> list[Step]:
    """A not-imported order's failing import rules, one step each (as of its latest revision)."""
    if order["status"] != "not_imported":
        return []
    failures = order["rule_failures"]
    if isinstance(failures, str):
        failures = json.loads(failures)
    return [
        Step(
            time=order["updated_at"],
            service=SERVICE,
            kind="import_rule_failed",
            status="not_imported",
            reason_code=failure.get("code", ""),
            message=failure.get("sentence", "") or order["status_reason"],
            failed=True,
            action=f"correct the order in {order['channel']} ({failure.get('field', '')}); its next change"
            " is imported when it passes the rule",
        )
        for failure in failures
    ]


async def _sync_results(conn: PgConnection, tenant_id: str, order_id: str) -> list[Step]:
    """What intake recorded of the handover and told the channel (handover_acks)."""
    row = await conn.fetchrow(
        "SELECT account, recorded_at, handed_over_at, acknowledged_at, report_results, provider,"
        " provider_reference, result, failure, result_at, reported_at"
        " FROM handover_acks WHERE order_id = $1 AND tenant_id = $2",
        order_id,
        tenant_id,
    )
    if row is None:
        return []
    steps = []

    def step(time, status: str, message: str, reason_code: str = "") -> None:
        steps.append(Step(time, SERVICE, "sync_result", status, reason_code, message))

    if row["handed_over_at"] is not None:
        reference = f" as {row['provider_reference']}" if row["provider_reference"] else ""
        step(row["handed_over_at"], "handed_over", f"the provider {row['provider']} accepted it{reference}")
    if row["result"] == "refused" and row["result_at"] is not None:
        code, _, reason = row["failure"].partition(": ")
        # Dispatch's own step of the refusal carries what to do; this one is its echo here.
        step(row["result_at"], "refused", f"the provider refused it: {reason or code}", code if reason else "")
    if row["reported_at"] is not None:
        step(row["reported_at"], "reported", f"the sync result was told to the channel account {row['account']}")
    if row["acknowledged_at"] is not None:
        step(
            row["acknowledged_at"], "acknowledged", f"the channel account {row['account']} was told it was handed over"
        )
    return steps
