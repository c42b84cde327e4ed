"""Carrier mapping's callers file: its own variable first, else the one every service reads."""

import pytest

from carrier_mapping.config import CarrierMappingSettings
from libs.platform.config import ConfigError


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name, value in {
        "ORDERSYNC_PG_DSN": "postgresql://unused/db",
        "ORDERSYNC_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "ORDERSYNC_TENANTS_FILE": "unused.toml",
        "TEST_OWN_TOKEN": "own-token",
        "TEST_SHARED_TOKEN": "shared-token",
    }.items():
        monkeypatch.setenv(name, value)
    for name, caller in (("own", "own-caller"), ("shared", "shared-caller")):
        path = tmp_path / f"{name}.toml"
        path.write_text(f'[callers.{caller}]\ntoken = "env:TEST_{name.upper()}_TOKEN"\ntenants = ["*"]\n')
    monkeypatch.delenv("CARRIER_MAPPING_CALLERS_FILE", raising=False)
    monkeypatch.delenv("ORDERSYNC_GRPC_CALLERS_FILE", raising=False)
    return monkeypatch, tmp_path


def test_carrier_mappings_own_callers_file_comes_first(env):
    monkeypatch, tmp_path = env
    monkeypatch.setenv("CARRIER_MAPPING_CALLERS_FILE", str(tmp_path / "own.toml"))
    monkeypatch.setenv("ORDERSYNC_GRPC_CALLERS_FILE", str(tmp_path / "shared.toml"))

    assert CarrierMappingSettings.from_env().callers.find("own-token").name == "own-caller"


def test_without_its_own_the_shared_callers_file_serves(env):
    monkeypatch, tmp_path = env
    monkeypatch.setenv("ORDERSYNC_GRPC_CALLERS_FILE", str(tmp_path / "shared.toml"))

    assert CarrierMappingSettings.from_env().callers.find("shared-token").name == "shared-caller"


def test_without_either_the_service_does_not_start(env):
    with pytest.raises(ConfigError, match="ORDERSYNC_GRPC_CALLERS_FILE \\(or CARRIER_MAPPING_CALLERS_FILE\\)"):
        CarrierMappingSettings.from_env()
