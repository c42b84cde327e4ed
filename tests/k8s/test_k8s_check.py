"""deploy/k8s-check/check.sh, the chart check of `make k8s-check`, on a fixture chart and on copies
of it broken in one way each.

The fixture chart (tests/k8s/fixtures/chart) renders the kinds the ordersync chart does: a
Deployment, Service, PodDisruptionBudget, NetworkPolicy and a Job, and with the production-like
values a KEDA ScaledObject, a ServiceMonitor and a Strimzi KafkaTopic. It passes every step; each
broken copy must fail at the step that can see its mistake, naming the object and saying what is
wrong. These need the tools `make k8s-check` builds and names in the environment, so they are
marked k8s_check and run there, after the chart check, not in the main pytest run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "deploy" / "k8s-check" / "check.sh"
FIXTURES = Path(__file__).parent / "fixtures"
CHART = FIXTURES / "chart"
PRODUCTION = FIXTURES / "values-production.yaml"
TOOLS = ("HELM", "KUBECONFORM", "KUBE_APISERVER", "ETCD", "K8S_SCHEMAS", "K8S_SCHEMA_VERSION", "K8S_CRDS", "PYTHON")

pytestmark = pytest.mark.k8s_check


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    missing = [name for name in TOOLS if not os.environ.get(name)]
    if missing:
        pytest.fail(f"run these through `make k8s-check`, which builds the tools and sets {', '.join(missing)}")
    return {name: os.environ[name] for name in TOOLS}


def run_check(tools: dict[str, str], tmp_path: Path, chart: Path, *values: Path) -> subprocess.CompletedProcess[str]:
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, **tools, "TMPDIR": str(scratch)}
    result = subprocess.run(
        ["bash", str(CHECK), str(chart), *map(str, values)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Whatever the outcome, the check stopped etcd and kube-apiserver and removed its work dir.
    assert list(scratch.iterdir()) == [], result.stdout + result.stderr
    assert not _processes_under(scratch), result.stdout + result.stderr
    return result


def _processes_under(folder: Path) -> list[str]:
    """Command lines of running processes that name a path in the folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmdline:
            found.append(cmdline)
    return found


def broken_chart(tmp_path: Path, template: str, old: str, new: str) -> Path:
    """A copy of the fixture chart with one change in one template."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    path = chart / "templates" / template
    text = path.read_text()
    assert old in text, f"{template} no longer has {old!r}"
    path.write_text(text.replace(old, new, 1))
    return chart


def test_fixture_chart_passes_every_step(tools, tmp_path):
    result = run_check(tools, tmp_path, CHART, PRODUCTION)
    out = result.stdout

    assert result.returncode == 0, out + result.stderr
    assert "== helm lint" in out
    # kubeconform found a schema for every object of both renderings: none skipped.
    assert "Invalid: 0, Errors: 0, Skipped: 0" in out
    assert "installed CRD scaledobjects.keda.sh" in out
    assert "installed CRD servicemonitors.monitoring.coreos.com" in out
    assert "installed CRD kafkatopics.kafka.strimzi.io" in out
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        assert f"ok      default.yaml: {kind}/ordersync-api" in out
        assert f"ok      values-production.yaml: {kind}/ordersync-api" in out
    assert "ok      default.yaml: Job/ordersync-migrate" in out
    assert "ok      values-production.yaml: ScaledObject/ordersync-api" in out
    assert "ok      values-production.yaml: ServiceMonitor/ordersync-api" in out
    assert "ok      values-production.yaml: KafkaTopic/ordersync.orders" in out
    # The default values leave the custom kinds out; the production-like ones add three.
    assert "default.yaml: ScaledObject" not in out
    assert "dry-run: 13 of 13 objects accepted by the API server, 0 refused" in out
    assert "REFUSED" not in out


def test_pdb_with_min_available_and_max_unavailable_is_refused_by_the_api_server(tools, tmp_path):
    chart = broken_chart(
        tmp_path,
        "pdb.yaml",
        "  minAvailable: {{ .Values.pdb.minAvailable }}\n",
        "  minAvailable: {{ .Values.pdb.minAvailable }}\n  maxUnavailable: 1\n",
    )
    result = run_check(tools, tmp_path, chart, PRODUCTION)
    out = result.stdout

    assert result.returncode != 0
    # The schema allows either field; only the server's validation sees both together.
    assert "Invalid: 0, Errors: 0, Skipped: 0" in out
    assert "REFUSED default.yaml: PodDisruptionBudget/ordersync-api: HTTP 422 Invalid" in out
    assert "minAvailable and maxUnavailable cannot be both set" in out
    assert "ok      default.yaml: Deployment/ordersync-api" in out
    assert "11 of 13 objects accepted by the API server, 2 refused" in out


def test_deployment_whose_selector_does_not_match_its_template_is_refused_by_the_api_server(tools, tmp_path):
    chart = broken_chart(
        tmp_path,
        "deployment.yaml",
        '      labels:\n        {{- include "fixture.labels" . | nindent 8 }}\n',
        "      labels:\n        app.kubernetes.io/name: something-else\n",
    )
    result = run_check(tools, tmp_path, chart)
    out = result.stdout

    assert result.returncode != 0
    assert "REFUSED default.yaml: Deployment/ordersync-api: HTTP 422 Invalid" in out
    assert "`selector` does not match template `labels`" in out
    assert "ok      default.yaml: Service/ordersync-api" in out
    assert "4 of 5 objects accepted by the API server, 1 refused" in out


def test_container_port_out_of_range_is_refused(tools, tmp_path):
    chart = broken_chart(
        tmp_path, "deployment.yaml", "containerPort: {{ .Values.metricsPort }}", "containerPort: 70000"
    )
    result = run_check(tools, tmp_path, chart)
    out = result.stdout

    assert result.returncode != 0
    # Kubernetes' schema gives containerPort no range, so it is the API server that refuses it.
    assert "REFUSED default.yaml: Deployment/ordersync-api: HTTP 422 Invalid" in out
    assert "spec.template.spec.containers[0].ports[1].containerPort: Invalid value: 70000" in out
    assert "must be between 1 and 65535, inclusive" in out


def test_unknown_field_is_refused_by_kubeconform_strict(tools, tmp_path):
    chart = broken_chart(tmp_path, "deployment.yaml", "  replicas: {{ .Values.replicas }}", "  replica: 2")
    result = run_check(tools, tmp_path, chart)
    out = result.stdout

    assert result.returncode != 0
    assert "Deployment ordersync-api is invalid" in out
    assert "additional properties 'replica' not allowed" in out
    assert "Invalid: 1" in out
    # It stops there: no API server was started for a chart kubeconform refused.
    assert "== server-side dry-run" not in out


def test_unknown_field_in_a_custom_kind_is_refused_by_kubeconform_strict(tools, tmp_path):
    chart = broken_chart(tmp_path, "servicemonitor.yaml", "      interval: 30s", "      intervall: 30s")
    result = run_check(tools, tmp_path, chart, PRODUCTION)
    out = result.stdout

    assert result.returncode != 0
    assert "ServiceMonitor ordersync-api is invalid" in out
    assert "additional properties 'intervall' not allowed" in out
    assert "== server-side dry-run" not in out


def test_missing_chart_is_named(tools, tmp_path):
    result = run_check(tools, tmp_path, tmp_path / "no-such-chart")

    assert result.returncode == 1
    assert f"k8s-check: no chart at {tmp_path / 'no-such-chart'} (no Chart.yaml)" in result.stderr


def test_api_server_that_cannot_start_fails_the_check_with_its_log(tools, tmp_path):
    # An etcd that exits at once: the API server never gets ready, and the check says so.
    result = run_check({**tools, "ETCD": "/bin/false"}, tmp_path, CHART)

    assert result.returncode == 1
    assert "dry-run: etcd exited before the API server was ready" in result.stderr
    assert "--- last lines of kube-apiserver.log ---" in result.stderr
    assert "ok      " not in result.stdout
