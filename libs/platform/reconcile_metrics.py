"""Reconciliation's metrics, on prometheus_client's default registry (served by the service's
/metrics endpoint).

`ordersync_reconcile_findings_total{kind,outcome}`: each finding of a real run (dry runs are not
counted), outcome healed or reported. `ordersync_reconcile_last_run_timestamp_seconds{tenant,account}`:
when the account's last real run finished; tenant and account come from the tenants file, so the
series are bounded by configuration, never by traffic. An alert on its age catches a reconciler
that stopped running.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FINDINGS = Counter(
    "ordersync_reconcile_findings",
    "Reconciliation findings of real runs, by kind and what was done (healed, reported).",
    ["kind", "outcome"],
)
LAST_RUN = Gauge(
    "ordersync_reconcile_last_run_timestamp_seconds",
    "When the account's last real reconciliation run finished (Unix time).",
    ["tenant", "account"],
)


def record_run(tenant_id: str, account: str, finished_at: float, outcomes: list[tuple[str, str]]) -> None:
    """Count a real run's findings, as (kind, outcome) pairs, and stamp the account's last run."""
    for kind, outcome in outcomes:
        FINDINGS.labels(kind=kind, outcome=outcome).inc()
    LAST_RUN.labels(tenant=tenant_id, account=account).set(finished_at)
