"""Dispatch's settings: who may call it, and the token it presents to its peers' read APIs."""

import pytest

from fulfillment_dispatch.config import DispatchSettings
from libs.platform.config import ConfigError

BASE = {
    "ORDERSYNC_PG_DSN": "postgresql://unused/db",
    "ORDERSYNC_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    "ORDERSYNC_TENANTS_FILE": "unused.toml",
    "CARRIER_MAPPING_ADDR": "127.0.0.1:50055",
    "CARRIER_MAPPING_TOKEN": "mapping-token",
    "TEST_OPERATOR_TOKEN": "operator-token",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    callers = tmp_path / "callers.toml"
    callers.write_text('[callers.ops]\ntoken = "env:TEST_OPERATOR_TOKEN"\ntenants = ["acme"]\nroles = ["operator"]\n')
    for name in ("ORDER_INTAKE_ADDR", "COMPLIANCE_ROUTING_ADDR", "TRACKING_WRITEBACK_ADDR", "ORDERSYNC_PEERS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**BASE, "ORDERSYNC_GRPC_CALLERS_FILE": str(callers)}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_dispatch_admits_the_callers_of_its_file(env):
    settings = DispatchSettings.from_env()

    assert settings.callers.find("operator-token").name == "ops"


def test_dispatch_does_not_start_without_a_callers_file(env):
    env.delenv("ORDERSYNC_GRPC_CALLERS_FILE")

    with pytest.raises(ConfigError, match="ORDERSYNC_GRPC_CALLERS_FILE is required"):
        DispatchSettings.from_env()


def test_a_peer_address_needs_the_peers_token(env):
    env.setenv("ORDER_INTAKE_ADDR", "127.0.0.1:50051")

    with pytest.raises(ConfigError, match="ORDERSYNC_PEERS_TOKEN is required when a peer address is set"):
        DispatchSettings.from_env()
    env.setenv("ORDERSYNC_PEERS_TOKEN", "peers-token")
    assert DispatchSettings.from_env().peers_token == "peers-token"
