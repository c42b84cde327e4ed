"""The Helm chart's files agree with the code they configure (make k8s-check renders and validates it).

Read without Helm: the chart's topic list is deploy/topics.txt's; the files the chart's defaults
and values-production.yaml hand the services (tenants, gRPC callers) load with the services' own
parsers, every service admitting a caller; every `file:` secret they name lives in the folder the
chart mounts; and the ports are the services' defaults.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy.local.create_topics import read_topic_file
from libs.connectors.registry import default_registry
from libs.platform.auth import load_callers
from libs.platform.config import DEFAULT_METRICS_PORTS
from libs.platform.tenants import TenantDirectory
from tests.system.stack import REPO

CHART = REPO / "deploy" / "helm" / "ordersync"
VALUES = CHART / "values.yaml"
PRODUCTION = REPO / "deploy" / "helm" / "values-production.yaml"
SECRETS_DIR = "/etc/ordersync/secrets/"
SERVICES = ["order-intake", "compliance-routing", "fulfillment-dispatch", "tracking-writeback", "carrier-mapping"]
VALUES_KEYS = {
    "order-intake": "orderIntake",
    "compliance-routing": "complianceRouting",
    "fulfillment-dispatch": "fulfillmentDispatch",
    "tracking-writeback": "trackingWriteback",
    "carrier-mapping": "carrierMapping",
}
GRPC_PORTS = dict(zip(SERVICES, [50051, 50052, 50053, 50054, 50055], strict=True))


def block(text: str, parent: str, key: str) -> str:
    """The literal block scalar `key: |` under the top-level section `parent`, unindented."""
    section = re.search(rf"^{parent}:\n((?:[ #].*\n|\n)*)", text, re.MULTILINE)
    assert section, parent
    found = re.search(rf"^  {key}: \|\n((?:    .*\n|\n)*)", section.group(1), re.MULTILINE)
    assert found, f"{parent}.{key}"
    return "".join(line[4:] + "\n" for line in found.group(1).splitlines())


def with_secret_files(text: str, folder: Path) -> str:
    """`text` with its file: references moved into `folder`, each file holding a distinct value."""
    for name in set(re.findall(rf"file:{SECRETS_DIR}([-._a-zA-Z0-9]+)", text)):
        (folder / name).write_text(f"value-of-{name}\n")
    return text.replace(f"file:{SECRETS_DIR}", f"file:{folder}/")


def test_topic_list_is_deploy_topics_txt() -> None:
    listed = re.findall(
        r'- name: (\S+)\n\s+partitions: (\d+)\n\s+config: \{retention\.ms: "(\d+)"\}', VALUES.read_text()
    )
    expected = [(t.name, str(t.partitions), t.configs["retention.ms"]) for t in read_topic_file()]
    assert listed == expected
    assert all(set(t.configs) == {"retention.ms"} for t in read_topic_file())


@pytest.mark.parametrize("values", [VALUES, PRODUCTION], ids=["defaults", "production"])
def test_callers_file_admits_a_caller_at_every_service(values: Path, tmp_path: Path) -> None:
    if values == PRODUCTION:  # an existing Secret there: check the defaults' file with its keys instead
        assert "existingSecret: ordersync-grpc-callers" in values.read_text()
        values = VALUES
    path = tmp_path / "grpc-callers.toml"
    path.write_text(with_secret_files(block(values.read_text(), "callers", "file"), tmp_path))
    for service in SERVICES:
        assert len(load_callers(path, service)) >= 1, service
    # The tokens the services present as clients are callers of the servers they call.
    mapping = load_callers(path, "carrier-mapping")
    assert mapping.find("value-of-carrier-mapping-token").all_tenants
    for peer in ("order-intake", "compliance-routing", "tracking-writeback"):
        assert load_callers(path, peer).find("value-of-peers-token").all_tenants


def test_production_tenants_file_loads_with_every_secret_a_mounted_file(tmp_path: Path) -> None:
    text = block(PRODUCTION.read_text(), "tenants", "file")
    assert "env:" not in text, "the chart hands secrets over as files"
    path = tmp_path / "tenants.toml"
    path.write_text(with_secret_files(text, tmp_path))
    directory = TenantDirectory.load(path, default_registry())
    assert len(directory) == 3


def test_ports_are_the_services_defaults() -> None:
    text = VALUES.read_text()
    for service, key in VALUES_KEYS.items():
        section = re.search(rf"^  {key}:\n((?:    .*\n)*)", text, re.MULTILINE)
        assert section, key
        assert f"grpcPort: {GRPC_PORTS[service]}\n" in section.group(1)
        assert f"metricsPort: {DEFAULT_METRICS_PORTS[service]}\n" in section.group(1)


def test_chart_table_names_each_service_module_and_role() -> None:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    for service, key in VALUES_KEYS.items():
        module = service.replace("-", "_")
        assert (REPO / "services" / module / module / "__main__.py").is_file()
        assert re.search(rf"^{key}: \{{name: {service}, module: {module}, role: {module},", helpers, re.MULTILINE)
