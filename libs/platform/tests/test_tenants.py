"""Tenant configuration: secrets by reference only, and provider prefixes that cannot collide."""

import pytest

from libs.platform.config import ConfigError
from libs.platform.tenants import TenantDirectory


def tenants_file(tmp_path, body: str):
    path = tmp_path / "tenants.toml"
    path.write_text(body)
    return path


def vinoshipper(tenant: str, prefix: str, secret: str = "env:VS_SECRET") -> str:
    return f"""
[tenants."{tenant}"]
chosen_states = ["ca"]
[tenants."{tenant}".vinoshipper]
api_key = "key"
api_secret = "{secret}"
order_number_prefix = "{prefix}"
webhook_token = "env:VS_SECRET"
"""


def test_secrets_resolve_from_the_environment_and_never_show(tmp_path, monkeypatch):
    monkeypatch.setenv("VS_SECRET", "s3cret-value")
    tenant = TenantDirectory.load(tenants_file(tmp_path, vinoshipper("acme", "ACME"))).get("acme")
    assert tenant.vinoshipper.api_secret.value == "s3cret-value"
    assert "s3cret-value" not in repr(tenant)
    assert tenant.chosen_states == frozenset({"CA"})


def test_a_literal_secret_in_the_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a literal value"):
        TenantDirectory.load(tenants_file(tmp_path, vinoshipper("acme", "ACME", secret="plain-text")))


def test_two_tenants_sharing_a_vinoshipper_prefix_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VS_SECRET", "x")
    body = vinoshipper("acme", "SAME") + vinoshipper("other", "SAME")
    with pytest.raises(ConfigError, match="share order_number_prefix 'SAME'"):
        TenantDirectory.load(tenants_file(tmp_path, body))


def test_a_prefix_vinoshipper_cannot_take_is_refused_at_load(tmp_path, monkeypatch):
    monkeypatch.setenv("VS_SECRET", "x")
    with pytest.raises(ConfigError, match="order_number_prefix 'has space'"):
        TenantDirectory.load(tenants_file(tmp_path, vinoshipper("acme", "has space")))


def test_a_missing_secret_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("VS_SECRET", raising=False)
    with pytest.raises(ConfigError, match="VS_SECRET is not set"):
        TenantDirectory.load(tenants_file(tmp_path, vinoshipper("acme", "ACME")))
