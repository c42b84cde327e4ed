"""Compliance routing's part of an order's journey (OrderHistoryService, libs/platform/order_history.py).

One step: the routing decision kept for the order (outcome, route and rule, provider account,
reason), plus dead letters keyed by the order id. Orders are looked up by ordersync's id only.
"""

from __future__ import annotations

import asyncpg

from libs.platform.db import PgConnection
from libs.platform.order_history import History, Step, dead_letter_steps

SERVICE = "compliance-routing"


class RoutingHistory:
    """The HistoryReader of compliance routing: the decision, when the order reached it."""

    service = SERVICE
    resolves = False

    async def read(self, conn: PgConnection, tenant_id: str, order: str) -> History | None:
        row = await conn.fetchrow(
            "SELECT order_id, outcome, provider, reason_code, reason, revision, route, rule, provider_account,"
            " decided_at FROM decisions WHERE order_id = $1 AND tenant_id = $2",
            order,
            tenant_id,
        )
        if row is None:
            return None
        history = History(order_id=row["order_id"], steps=[_decision_step(tenant_id, row)])
        history.steps += await dead_letter_steps(conn, SERVICE, [row["order_id"]])
        return history


def _decision_step(tenant_id: str, row: asyncpg.Record) -> Step:
    if row["outcome"] == "route":
        where = f"to {row['provider']}" + (f" account {row['provider_account']}" if row["provider_account"] else "")
        message = f"routed {where} by route {row['route'] or '?'} (rule {row['rule'] or '?'}): {row['reason']}"
    else:
        message = f"{row['outcome'].replace('_', ' ')} (rule {row['rule'] or '?'}): {row['reason']}"
    # No route matched an order the tenant may want sent: the tenant's routes decide that.
    no_route = row["reason_code"] == "NO_PROVIDER"
    return Step(
        time=row["decided_at"],
        service=SERVICE,
        kind="routing_decision",
        status=row["outcome"],
        reason_code=row["reason_code"],
        message=message,
        failed=no_route,
        action=f"give tenant {tenant_id} a route for orders like it (routes in the tenants file);"
        " its next revision is routed again"
        if no_route
        else "",
    )
