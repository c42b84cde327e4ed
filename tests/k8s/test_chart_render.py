"""What deploy/helm/ordersync renders: every service with its probes, the operator console, the
migrations Job before the services, NetworkPolicies, and the optional objects (KEDA, HPA,
ServiceMonitor, Strimzi topics) exactly when enabled. Rendered by the helm `make k8s-check` builds, so marked k8s_check
and run there (deploy/k8s-check/check.sh validates the same renders against the API server)."""

from __future__ import annotations

import os
import subprocess
import tomllib
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
CONSOLE = "os-ordersync-operator-console"
# The console's addresses of the services: the `ordersync` CLI's variables (libs/cli/connect.py).
CONSOLE_ADDRESSES = {
    "ORDERSYNC_INTAKE_ADDR": "order-intake",
    "ORDERSYNC_ROUTING_ADDR": "compliance-routing",
    "ORDERSYNC_ADMIN_ADDR": "fulfillment-dispatch",
    "ORDERSYNC_WRITEBACK_ADDR": "tracking-writeback",
    "ORDERSYNC_MAPPING_ADDR": "carrier-mapping",
}
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
    assert set(deployments) == {f"os-ordersync-{name}" for name in SERVICES} | {CONSOLE}
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
    assert components <= WEBHOOK_SERVERS | {"operator-console"} and components, components


def test_optional_objects_only_when_enabled():
    plain = Counter(o["kind"] for o in render())
    for kind in ("ScaledObject", "ServiceMonitor", "KafkaTopic"):
        assert plain[kind] == 0, kind
    production = render("-f", str(PRODUCTION))
    kinds = Counter(o["kind"] for o in production)
    assert kinds["ServiceMonitor"] == 1 and kinds["KafkaTopic"] == len(read_topic_file(REPO / "deploy" / "topics.txt"))
    scaled = of_kind(production, "ScaledObject")
    autoscaled = of_kind(production, "HorizontalPodAutoscaler")
    # Each service is scaled one way: KEDA on its consumer lag, or the chart's HPA on CPU; the console by its HPA.
    assert not set(scaled) & set(autoscaled) and len(scaled) + len(autoscaled) == len(SERVICES) + 1
    assert CONSOLE in autoscaled and "replicas" not in of_kind(production, "Deployment")[CONSOLE]["spec"]
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


def test_console_is_a_deployment_with_http_probes_its_env_and_a_service():
    objects = render()
    console = container_of(of_kind(objects, "Deployment")[CONSOLE])
    assert console["command"] == ["python", "-m", "operator_console"]
    ports = {p["name"]: p["containerPort"] for p in console["ports"]}
    assert ports == {"http": 8090, "metrics": 9106}
    assert console["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert console["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert console["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    env = {e["name"]: e for e in console["env"]}
    assert env["ORDERSYNC_HTTP_PORT"]["value"] == "8090" and env["ORDERSYNC_METRICS_PORT"]["value"] == "9106"
    assert env["ORDERSYNC_CONSOLE_COOKIE_SECURE"]["value"] == "true"
    assert env["ORDERSYNC_CONSOLE_FRAME_ANCESTORS"]["value"] == ""
    token = env["ORDERSYNC_CONSOLE_GRPC_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "os-ordersync-credentials", "key": "operator-console-token"}
    # Its files are where its mounts put them, from the staff and secrets Secrets the chart makes.
    [mount] = [m for m in console["volumeMounts"] if m["name"] == "console"]
    for name, key in [
        ("ORDERSYNC_CONSOLE_STAFF_FILE", "staff.toml"),
        ("ORDERSYNC_CONSOLE_SESSION_SECRET", "session-secret"),
        ("ORDERSYNC_CONSOLE_EMBED_SECRET", "embed-secret"),
    ]:
        assert env[name]["value"].removeprefix("file:") == f"{mount['mountPath']}/{key}", name
    secrets = of_kind(objects, "Secret")
    assert "staff.toml" in secrets["os-ordersync-console-staff"]["stringData"]
    assert set(secrets["os-ordersync-console"]["stringData"]) == {"session-secret", "embed-secret"}
    # Each address is a service's Service and its gRPC port.
    services = of_kind(objects, "Service")
    for variable, name in CONSOLE_ADDRESSES.items():
        host, port = env[variable]["value"].split(":")
        assert host == f"os-ordersync-{name}"
        assert {"name": "grpc", "port": int(port)}.items() <= services[host]["spec"]["ports"][0].items(), variable
    security = console["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"] and not security["allowPrivilegeEscalation"]
    service_ports = {p["name"]: p["port"] for p in services[CONSOLE]["spec"]["ports"]}
    assert service_ports == {"http": 8090, "metrics": 9106}
    assert CONSOLE in of_kind(objects, "PodDisruptionBudget")


def test_no_console_objects_when_it_is_disabled():
    for values in ([], ["-f", str(PRODUCTION)]):
        objects = render(*values, "--set", "console.enabled=false")
        console = [
            o
            for o in objects
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "operator-console"
        ]
        assert console == [], [(o["kind"], o["metadata"]["name"]) for o in console]
        assert len(of_kind(objects, "Deployment")) == len(SERVICES)


def test_console_is_open_on_http_and_a_client_of_every_services_grpc():
    for values, open_to in (([], None), (["-f", str(PRODUCTION)], "ingress-nginx")):
        objects = render(*values)
        policies = of_kind(objects, "NetworkPolicy")
        rules = policies[CONSOLE]["spec"]["ingress"]
        [http] = [r for r in rules if r["ports"] == [{"port": "http", "protocol": "TCP"}]]
        if open_to is None:
            assert "from" not in http
        else:
            assert http["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": open_to}}}]
        [metrics] = [r for r in rules if r["ports"] == [{"port": "metrics", "protocol": "TCP"}]]
        assert metrics["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
        assert len(rules) == 2, "nothing else of the console is reachable"
        # Every service's gRPC port admits the release's own pods, the console's among them.
        labels = of_kind(objects, "Deployment")[CONSOLE]["spec"]["template"]["metadata"]["labels"]
        for name in SERVICES:
            [grpc] = [
                r
                for r in policies[f"os-ordersync-{name}"]["spec"]["ingress"]
                if {"port": "grpc", "protocol": "TCP"} in r["ports"]
            ]
            selectors = [peer["podSelector"]["matchLabels"] for peer in grpc["from"] if "podSelector" in peer]
            assert any(selector.items() <= labels.items() for selector in selectors), name


def test_console_caller_delegates_with_the_token_the_console_presents():
    objects = render()
    callers = tomllib.loads(of_kind(objects, "Secret")["os-ordersync-callers"]["stringData"]["grpc-callers.toml"])
    caller = callers["callers"]["operator-console"]
    assert caller["tenants"] == ["*"] and set(caller["roles"]) == {"operator", "write", "delegate"}
    console = container_of(of_kind(objects, "Deployment")[CONSOLE])
    [token] = [e for e in console["env"] if e["name"] == "ORDERSYNC_CONSOLE_GRPC_TOKEN"]
    assert caller["token"] == f"file:/etc/ordersync/secrets/{token['valueFrom']['secretKeyRef']['key']}"


def test_console_ingress_routes_its_host_to_http():
    ingresses = of_kind(render("-f", str(PRODUCTION)), "Ingress")
    [rule] = ingresses[CONSOLE]["spec"]["rules"]
    assert rule["host"] == "console.ordersync.example.com"
    [path] = rule["http"]["paths"]
    assert path["path"] == "/" and path["backend"]["service"] == {"name": CONSOLE, "port": {"name": "http"}}
    assert CONSOLE not in of_kind(render(), "Ingress")
