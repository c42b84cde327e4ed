"""The observability stack's files agree with each other and with the metric catalogue.

Docker is not run here, so this reads the files: every file docker-compose.yml mounts exists,
Prometheus scrapes each service on the metrics port compose gives it, and every metric the
alert rules and the Grafana dashboard query is one the services export. (`make lint-alerts`
checks the rules' syntax and behaviour with promtool.)
"""

from __future__ import annotations

import json
import re

from libs.platform import metrics
from tests.system.stack import REPO

OBSERVABILITY = REPO / "deploy" / "observability"
ALERTS = OBSERVABILITY / "prometheus" / "alerts.yml"
DASHBOARD = OBSERVABILITY / "grafana" / "ordersync.json"

# The metric catalogue: every metric libs/platform/metrics.py defines, as exported.
CATALOGUE = metrics.catalogue()
# Carrier mapping's own traffic counter: on its service's page, not an SLO of the order flow.
NOT_ON_THE_DASHBOARD = frozenset({"ordersync_carrier_translations_total"})
METRICS_PORTS = {
    "order-intake": 9101,
    "compliance-routing": 9102,
    "fulfillment-dispatch": 9103,
    "tracking-writeback": 9104,
    "carrier-mapping": 9105,
    "operator-console": 9106,
}
_METRIC = re.compile(r"\bordersync_[a-z_]+")


def _metrics_in(text: str) -> set[str]:
    # A histogram is queried through its _bucket/_sum/_count series.
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in _METRIC.findall(text)}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_metric_the_alert_rules_query_is_in_the_catalogue():
    used = _metrics_in(ALERTS.read_text())
    assert used, "the rules query no ordersync metric"
    assert used <= CATALOGUE, sorted(used - CATALOGUE)


def test_every_metric_the_dashboard_queries_is_in_the_catalogue_and_every_one_has_a_panel():
    used = _metrics_in("\n".join(_dashboard_exprs()))
    assert used <= CATALOGUE, sorted(used - CATALOGUE)
    missing = CATALOGUE - NOT_ON_THE_DASHBOARD - used
    assert not missing, f"no panel for {sorted(missing)}"


def test_dashboard_queries_the_provisioned_datasource():
    datasource = (OBSERVABILITY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    uid = re.search(r"uid: (\S+)", datasource).group(1)
    dashboard = json.loads(DASHBOARD.read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {uid}


def test_every_alert_has_summary_description_and_a_runbook_entry_in_the_docs():
    rules = ALERTS.read_text()
    alerts = re.findall(r"- alert: (\w+)", rules)
    assert len(alerts) >= 9
    assert rules.count("summary:") == rules.count("description:") == rules.count("runbook_url:") == len(alerts)
    doc = (REPO / "docs" / "tracing.md").read_text().lower()
    for anchor in re.findall(r"runbook_url: docs/tracing\.md#(\S+)", rules):
        assert f"### {anchor}" in doc, anchor


def test_every_file_compose_mounts_exists():
    compose = (REPO / "docker-compose.yml").read_text()
    mounted = re.findall(r"^\s+- \./([^:\s]+):", compose, re.MULTILINE)
    assert "deploy/observability/prometheus/alerts.yml" in mounted
    assert "deploy/observability/grafana/ordersync.json" in mounted
    for path in mounted:
        assert (REPO / path).exists(), path


def test_prometheus_scrapes_each_service_on_the_metrics_port_compose_gives_it():
    compose = (REPO / "docker-compose.yml").read_text()
    scrape = (OBSERVABILITY / "prometheus" / "prometheus.yml").read_text()
    for service, port in METRICS_PORTS.items():
        block = compose.split(f"\n  {service}:\n", 1)[1].split("\n\n", 1)[0]
        assert f'ORDERSYNC_METRICS_PORT: "{port}"' in block, service
        assert f'"{service}:{port}"' in scrape, service
    assert "/etc/prometheus/alerts.yml" in scrape


def test_compose_pins_every_image_version():
    compose = (REPO / "docker-compose.yml").read_text()
    for image in re.findall(r"^\s+image: (\S+)", compose, re.MULTILINE):
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", image
