"""What deploy/helm/ordersync renders: every service with its probes, the migrations Job before
the services, NetworkPolicies, and the optional objects (KEDA, HPA, ServiceMonitor, Strimzi
topics) exactly when enabled. Rendered by the helm `make k8s-check` builds, so marked k8s_check
and run there (deploy/k8s-check/check.sh validates the same renders against the API server)."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml

from deploy.local.create_topics import read_topic_file

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "ordersync"
PRODUCTION = REPO / "deploy" / "helm" / "values-production.yaml"
SERVICES = {
    "order-intake": ("order_intake", 50051),
    "compliance-routing": ("compliance_routing", 50052),
    "fulfillment-dispatch": ("fulfillment_dispatch", 50053),
    "tracking-writeback": ("tracking_writeback", 50054),
    "carrier-mapping": ("carrier_mapping", 50055),
}
WEBHOOK_SERVERS = {"order-intake", "fulfillment-dispatch"}
CONSUMERS = {"order-intake", "compliance-routing", "fulfillment-dispatch", "tracking-writeback"}

pytestmark = pytest.mark.k8s_check


def render(*args: str) -> list[dict]:
    helm = os.environ.get("HELM")
    if not helm:
        pytest.fail("run this through `make k8s-check`, which builds helm and sets HELM")
    out = subprocess.run(
        [helm, "template", "os", str(CHART), "--namespace", "ordersync", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container_of(deployment: dict) -> dict:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_every_service_is_a_deployment_with_its_command_probes_and_migrations_off():
    deployments = of_kind(render(), "Deployment")
    assert set(deployments) == {f"os-ordersync-{name}" for name in SERVICES}
    for name, (module, grpc_port) in SERVICES.items():
        container = container_of(deployments[f"os-ordersync-{name}"])
        assert container["command"] == ["python", "-m", module]
        assert container["livenessProbe"]["grpc"] == {"port": grpc_port, "service": "liveness"}
        readiness = container["readinessProbe"]
        if name in WEBHOOK_SERVERS:
            assert readiness["httpGet"]["path"] == "/readyz"
        else:
            assert readiness["grpc"] == {"port": grpc_port}
        assert "startupProbe" in container
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["ORDERSYNC_MIGRATE"] == "off"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
        assert not security["allowPrivilegeEscalation"] and security["capabilities"]["drop"] == ["ALL"]


def test_migrations_run_as_a_hook_job_before_install_and_upgrade():
    jobs = of_kind(render(), "Job")
    [job] = [j for j in jobs.values() if "migrat" in j["metadata"]["name"]]
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert set(hooks) == {"pre-install", "pre-upgrade"}
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "libs.platform.migrate", "up"]
    assert "ORDERSYNC_PG_MIGRATION_DSN" in {e["name"] for e in container["env"]}


def test_network_policies_deny_by_default_and_open_only_the_webhook_ports_to_everyone():
    policies = of_kind(render(), "NetworkPolicy")
    deny = [
        p for p in policies.values() if p["spec"].get("ingress", []) == [] and "Ingress" in p["spec"]["policyTypes"]
    ]
    assert deny, "a default-deny policy for the chart's pods"
    open_to_all = [
        p
        for p in policies.values()
        for rule in p["spec"].get("ingress", [])
        if "from" not in rule or rule["from"] == []
    ]
    components = {p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component") for p in open_to_all}
    assert components <= WEBHOOK_SERVERS and components, components


def test_optional_objects_only_when_enabled():
    plain = Counter(o["kind"] for o in render())
    for kind in ("ScaledObject", "ServiceMonitor", "KafkaTopic"):
        assert plain[kind] == 0, kind
    production = render("-f", str(PRODUCTION))
    kinds = Counter(o["kind"] for o in production)
    assert kinds["ServiceMonitor"] == 1 and kinds["KafkaTopic"] == len(read_topic_file(REPO / "deploy" / "topics.txt"))
    scaled = of_kind(production, "ScaledObject")
    autoscaled = of_kind(production, "HorizontalPodAutoscaler")
    # Each service is scaled one way: KEDA on its consumer lag, or the chart's HPA on CPU.
    assert not set(scaled) & set(autoscaled) and len(scaled) + len(autoscaled) == len(SERVICES)
    for obj in scaled.values():
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        assert component in CONSUMERS
        kafka = [t for t in obj["spec"]["triggers"] if t["type"] == "kafka"]
        assert kafka and kafka[0]["metadata"]["consumerGroup"] and kafka[0]["metadata"]["topic"]
    every_consumer = [arg for key in _VALUE_KEYS.values() for arg in ("--set", f"services.{key}.keda.enabled=true")]
    keda_for_all = of_kind(render("-f", str(PRODUCTION), *every_consumer), "ScaledObject")
    assert {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in keda_for_all.values()} == CONSUMERS


_VALUE_KEYS = {  # the consumer services' keys under `services` in values.yaml
    "order-intake": "orderIntake",
    "compliance-routing": "complianceRouting",
    "fulfillment-dispatch": "fulfillmentDispatch",
    "tracking-writeback": "trackingWriteback",
}
