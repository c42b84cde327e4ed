"""The compose demo's simulators agree with its tenants file: what they post and accept matches.

Compose cannot run here, so this reads its files: every connector deploy/demo/tenants.toml uses
has a `<id>-sim` service running that simulator with deploy/demo/<id>.json, every account points
its base_url at it, and each config is the one the simulator registry builds for the file's
accounts (credentials from deploy/demo/secrets.env, webhook URLs at the compose services).
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml

from libs.cli.connect import ADDRESSES
from libs.connectors.registry import default_registry
from libs.platform.tenants import TenantDirectory
from operator_console.staff import load_staff
from tests.simulators.registry import AccountSpec, SimulatedAccount, default_simulators
from tests.system import demo_cellarpass, demo_groupon, demo_harbour
from tests.system.demo import TENANT
from tests.system.stack import REPO

DEMO = REPO / "deploy" / "demo"
INTAKE, DISPATCH = "http://order-intake:8080", "http://fulfillment-dispatch:8081"  # docker-compose.yml
# As `make demo` runs them.
DEMO_TENANTS = {
    spec.tenant_id: spec for spec in (TENANT, demo_harbour.TENANT, *demo_groupon.TENANTS, *demo_cellarpass.TENANTS)
}


def secrets_env() -> dict[str, str]:
    lines = (DEMO / "secrets.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def demo_accounts() -> dict[str, list[SimulatedAccount]]:
    """The tenants file's accounts by connector, as the simulators must know them."""
    secrets, simulators = secrets_env(), default_simulators()
    document = tomllib.loads((DEMO / "tenants.toml").read_text())
    by_connector: dict[str, list[SimulatedAccount]] = {}
    for tenant_id, tenant in document["tenants"].items():
        for name, section in tenant["accounts"].items():
            connector = section["connector"]
            entry = simulators.get(connector)
            refs = {k: v for k, v in section.items() if isinstance(v, str) and v.startswith("env:")}
            options = {k: v for k, v in section.items() if k not in refs and k not in ("connector", "base_url")}
            # What only the simulator holds (SKUs, licensed states) is the demo's, as make demo runs it.
            if tenant_id in DEMO_TENANTS:
                demo_account = DEMO_TENANTS[tenant_id].account(name)
                options |= {k: v for k, v in demo_account.options.items() if k in entry.simulator_only}
            account = AccountSpec(name, connector, options, {k: secrets[v[4:]] for k, v in refs.items()})
            path = f"/webhooks/{connector}/{tenant_id}"
            notice = f"{DISPATCH}{path}/{account[entry.notice_token]}" if entry.notice_token else f"{DISPATCH}{path}"
            store = f"{DISPATCH}/stores/{connector}/{tenant_id}/{name}"
            by_connector.setdefault(connector, []).append(
                SimulatedAccount(tenant_id, account, f"{INTAKE}{path}", notice, store)
            )
    return by_connector


def test_the_demo_tenants_file_parses_with_its_secrets(monkeypatch):
    for name, value in secrets_env().items():
        monkeypatch.setenv(name, value)
    assert len(TenantDirectory.load(DEMO / "tenants.toml", default_registry())) == len(DEMO_TENANTS)


@pytest.mark.parametrize("connector", sorted(demo_accounts()))
def test_compose_runs_the_simulator_the_accounts_point_at(connector):
    compose = (REPO / "docker-compose.yml").read_text()
    assert f"\n  {connector}-sim:\n" in compose
    command = re.search(rf'command: \["{connector}", [^\]]*"--port", "(\d+)"', compose)
    assert command, f"no {connector}-sim command with a port"
    assert f"./deploy/demo/{connector}.json:/etc/sim/{connector}.json:ro" in compose
    entry = default_simulators().get(connector)
    document = tomllib.loads((DEMO / "tenants.toml").read_text())
    for tenant in document["tenants"].values():
        for section in tenant["accounts"].values():
            if section["connector"] == connector:
                assert section["base_url"] == entry.base_url(f"http://{connector}-sim:{command.group(1)}")


@pytest.mark.parametrize("connector", sorted(demo_accounts()))
def test_simulator_config_is_what_the_registry_builds_for_the_tenants_file(connector):
    entry = default_simulators().get(connector)
    config_file = DEMO / f"{connector}.json"
    entry.load_config(str(config_file))  # the simulator takes it
    written = json.loads(config_file.read_text())
    expected = entry.build_config(demo_accounts()[connector])
    assert {key: written[key] for key in expected} == expected


def test_provider_callbacks_go_to_fulfillment_dispatch():
    # A provider posting notices to URLs the connector registers (Mintsoft) has no webhook URL in
    # its simulator's config: the account's callback base is all that points it at dispatch.
    document = tomllib.loads((DEMO / "tenants.toml").read_text())
    simulators = default_simulators()
    checked = 0
    for tenant in document["tenants"].values():
        for section in tenant["accounts"].values():
            option = simulators.get(section["connector"]).callback_base_option
            if option:
                assert section.get(option) == DISPATCH
                checked += 1
    assert checked


def test_every_demo_operator_is_a_caller_of_its_tenant_with_a_token():
    callers = tomllib.loads((DEMO / "grpc-callers.toml").read_text())["callers"]
    secrets = secrets_env()
    for caller in callers.values():
        assert caller["token"].startswith("env:") and caller["token"][4:] in secrets
    for spec in DEMO_TENANTS.values():
        for name in spec.operators:
            assert spec.tenant_id in callers[name]["tenants"] and "operator" in callers[name]["roles"]


def test_each_simulator_listens_on_a_port_of_its_own():
    ports = re.findall(r'"--(?:http-)?port", "(\d+)"', (REPO / "docker-compose.yml").read_text())
    assert len(ports) == len(set(ports))


def test_the_console_reaches_every_service_and_calls_as_a_delegating_caller():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    console = compose["operator-console"]
    env = console["environment"]
    assert console["command"] == ["python", "-m", "operator_console"]
    for service, (variable, _) in ADDRESSES.items():
        assert env[variable] == f"{service}:{compose[service]['environment']['ORDERSYNC_GRPC_PORT']}", variable
    assert set(ADDRESSES) <= set(console["depends_on"])
    assert console["ports"] == [f"{env['ORDERSYNC_HTTP_PORT']}:{env['ORDERSYNC_HTTP_PORT']}"]
    secrets = secrets_env()
    for name in ("ORDERSYNC_CONSOLE_SESSION_SECRET", "ORDERSYNC_CONSOLE_EMBED_SECRET"):
        assert env[name].startswith("env:") and env[name][4:] in secrets, name
    # The token the console presents is the operator-console caller's, which may delegate anywhere.
    callers = tomllib.loads((DEMO / "grpc-callers.toml").read_text())["callers"]
    [caller] = [c for c in callers.values() if c["token"] == "env:ORDERSYNC_CONSOLE_GRPC_TOKEN"]
    assert caller is callers["operator-console"] and "ORDERSYNC_CONSOLE_GRPC_TOKEN" in secrets
    assert caller["tenants"] == ["*"] and {"operator", "write", "delegate"} <= set(caller["roles"])


def test_the_console_staff_file_is_mounted_and_names_demo_tenants():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["operator-console"]
    staff_file = compose["environment"]["ORDERSYNC_CONSOLE_STAFF_FILE"]
    assert f"./deploy/demo/console-staff.toml:{staff_file}:ro" in compose["volumes"]
    staff = tomllib.loads((DEMO / "console-staff.toml").read_text())["staff"]
    tenants = tomllib.loads((DEMO / "tenants.toml").read_text())["tenants"]
    assert staff
    for member in staff.values():
        assert member["tenant"] in tenants
    # Each member signs in with the password its comment gives (the file loads as the console loads it).
    directory = load_staff(DEMO / "console-staff.toml")
    text = (DEMO / "console-staff.toml").read_text()
    passwords = dict(re.findall(r'# Password: (\S+)\n\[staff\."([^"]+)"\]', text))
    assert sorted(passwords.values()) == sorted(staff)
    for password, name in passwords.items():
        assert directory.authenticate(name, password) is not None
