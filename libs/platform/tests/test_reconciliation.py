"""Reconciliation's shared pieces without a database: settings from the environment, a run as the
API returns it, and the metrics a real run moves."""

from __future__ import annotations

from datetime import UTC, datetime

from ordersync.ops.v1 import reconciliation_pb2 as pb
from prometheus_client import REGISTRY

from libs.platform import metrics
from libs.platform.reconciliation import HEALED, REPORTED, Finding, ReconcileSettings, RunReport, Window, run_to_proto


def test_settings_read_the_service_interval_and_the_shared_window(monkeypatch):
    monkeypatch.setenv("ORDERSYNC_INTAKE_RECONCILE_S", "600")
    monkeypatch.setenv("ORDERSYNC_RECONCILE_WINDOW_H", "6")
    settings = ReconcileSettings.from_env("ORDERSYNC_INTAKE")
    assert (settings.interval_s, settings.window_s) == (600.0, 6 * 3600.0)
    monkeypatch.delenv("ORDERSYNC_INTAKE_RECONCILE_S")
    monkeypatch.delenv("ORDERSYNC_RECONCILE_WINDOW_H")
    assert ReconcileSettings.from_env("ORDERSYNC_INTAKE") == ReconcileSettings()  # hourly, 48 hours


def test_a_run_is_returned_with_each_finding_and_its_outcome():
    window = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
    report = RunReport("acme", "store", "order-intake", "scheduled", False, window, compared=4)
    report.add(Finding("lost_order", HEALED, "recorded as accepted", "ord-1", "c7-1", "1001"))
    report.add(Finding("unreachable", REPORTED, "Commerce7 could not be listed"))
    run = run_to_proto(report)
    assert (run.account, run.compared, run.window_end.ToDatetime(UTC)) == ("store", 4, window.until)
    assert [(f.kind, f.outcome, f.order_number, f.account) for f in run.findings] == [
        ("lost_order", pb.FINDING_OUTCOME_HEALED, "1001", "store"),
        ("unreachable", pb.FINDING_OUTCOME_REPORTED, "", "store"),
    ]
    assert report.unhealed == 1


def test_a_run_counts_its_findings_and_stamps_the_account():
    def findings(outcome: str) -> float:
        value = REGISTRY.get_sample_value(
            "ordersync_reconcile_findings_total", {"kind": "lost_order", "outcome": outcome}
        )
        return value or 0.0

    before = findings("healed")
    metrics.record_reconcile_run("acme", "store", 1_700_000_000.0, [("lost_order", "healed")] * 2)
    assert findings("healed") == before + 2
    stamp = {"tenant": "acme", "account": "store"}
    assert REGISTRY.get_sample_value("ordersync_reconcile_last_run_timestamp_seconds", stamp) == 1_700_000_000.0
