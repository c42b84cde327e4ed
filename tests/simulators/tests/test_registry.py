"""The simulator registry against the connector registry: one simulator per connector, no stray ones."""

from __future__ import annotations

import json

import pytest

from libs.connectors.registry import default_registry
from tests.simulators.registry import SimulatedAccount, default_simulators

SIMULATORS = default_simulators()


def test_every_registered_connector_has_a_simulator_and_every_simulator_a_connector():
    connectors = default_registry().ids()
    assert not set(connectors) - set(SIMULATORS.ids()), "add tests/simulators/<id>/entry.py to the registry"
    assert not set(SIMULATORS.ids()) - set(connectors), "a simulator names no registered connector"


@pytest.mark.parametrize("connector", SIMULATORS.ids())
def test_entry_serves_its_connectors_samples_and_builds_a_config_its_app_takes(connector, tmp_path):
    entry = SIMULATORS.get(connector)
    assert entry.samples_dir.is_dir() and any(entry.samples_dir.glob("*.json"))
    account = entry.new_account("main", "acme")
    assert account.connector == connector
    simulated = SimulatedAccount("acme", account, "http://intake/webhooks", "http://dispatch/webhooks/x")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(entry.build_config([simulated])))
    entry.create_app(entry.load_config(str(config_file)))  # the app takes the config built for it
    if entry.notice_token is not None:
        assert entry.notice_token in account.secrets


@pytest.mark.parametrize("connector", SIMULATORS.ids())
def test_fresh_accounts_get_fresh_secrets(connector):
    entry = SIMULATORS.get(connector)
    first, second = entry.new_account("a", "acme"), entry.new_account("a", "acme")
    assert first.secrets and all(first.secrets[k] != second.secrets[k] for k in first.secrets)
