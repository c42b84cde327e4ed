"""Platform settings: ORDERSYNC_MIGRATE takes on or off and nothing else."""

from __future__ import annotations

import pytest

from libs.platform.config import ConfigError, PlatformSettings

REQUIRED = {
    "ORDERSYNC_PG_DSN": "postgresql://order_intake@db/ordersync",
    "ORDERSYNC_KAFKA_BOOTSTRAP": "kafka:9092",
    "ORDERSYNC_TENANTS_FILE": "tenants.toml",
}


def _settings(monkeypatch, **extra: str) -> PlatformSettings:
    for name, value in {**REQUIRED, **extra}.items():
        monkeypatch.setenv(name, value)
    return PlatformSettings.from_env("order-intake", "order_intake", 50051)


def test_services_migrate_at_start_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("ORDERSYNC_MIGRATE", raising=False)
    assert _settings(monkeypatch).migrate_on_start is True


def test_migrate_off_only_checks_the_schema(monkeypatch):
    assert _settings(monkeypatch, ORDERSYNC_MIGRATE="off").migrate_on_start is False


def test_a_migrate_setting_other_than_on_or_off_is_refused_by_name(monkeypatch):
    with pytest.raises(ConfigError, match="ORDERSYNC_MIGRATE must be on or off"):
        _settings(monkeypatch, ORDERSYNC_MIGRATE="false")
