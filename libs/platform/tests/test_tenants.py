"""Tenant configuration: accounts parsed by their connectors, ordered routes, secrets by reference
only, errors naming tenant, section and field, and the old format refused or converted."""

import tomllib

import pytest

from libs.connectors.registry import default_registry
from libs.platform.config import ConfigError
from libs.platform.tenants import TenantDirectory, convert_old_document

REGISTRY = default_registry()


def tenants_file(tmp_path, body: str):
    path = tmp_path / "tenants.toml"
    path.write_text(body)
    return path


def load(tmp_path, body: str) -> TenantDirectory:
    return TenantDirectory.load(tenants_file(tmp_path, body), REGISTRY)


def store(tenant: str) -> str:
    return f"""
[tenants."{tenant}".accounts.store]
connector = "commerce7"
tenant_slug = "{tenant}"
app_id = "app"
app_secret = "env:VS_SECRET"
webhook_user = "ordersync"
webhook_password = "env:VS_SECRET"
"""


def shipping(tenant: str, prefix: str, secret: str = "env:VS_SECRET", name: str = "shipping", extra: str = "") -> str:
    return f"""
[tenants."{tenant}".accounts.{name}]
connector = "vinoshipper"
api_key = "key"
api_secret = "{secret}"
order_number_prefix = "{prefix}"
webhook_token = "env:VS_SECRET"
{extra}
"""


def route(tenant: str, name: str, provider: str = "shipping", states: str = '["ca"]', extra: str = "") -> str:
    return f"""
[[tenants."{tenant}".routes]]
name = "{name}"
channel = "store"
provider = "{provider}"
ship_to_states = {states}
{extra}
"""


@pytest.fixture(autouse=True)
def secret(monkeypatch):
    monkeypatch.setenv("VS_SECRET", "s3cret-value")


def test_accounts_are_parsed_by_their_connector_and_secrets_never_show(tmp_path):
    tenant = load(tmp_path, store("acme") + shipping("acme", "ACME") + route("acme", "west"))["acme"]
    account = tenant.accounts["shipping"]
    assert account.connector == "vinoshipper"
    assert account.settings.api.api_secret == "s3cret-value"
    assert account.settings.api.order_number_prefix == "ACME"
    assert "s3cret-value" not in repr(tenant)
    assert [a.name for a in tenant.accounts_of("commerce7")] == ["store"]


def test_routes_keep_their_order_and_rules(tmp_path):
    body = (
        store("acme")
        + shipping("acme", "ACME")
        + shipping("acme", "ACME-E", name="east")
        + route("acme", "west", states='["ca", "or"]')
        + route("acme", "east", provider="east", states='["NY"]', extra='order_kinds = ["shipping", "pickup"]')
    )
    tenant = load(tmp_path, body)["acme"]
    assert [r.name for r in tenant.routes_from("store")] == ["west", "east"]
    west, east = tenant.routes
    assert west.ship_to_states == frozenset({"CA", "OR"})
    assert west.order_kinds == frozenset({"shipping"})
    assert east.provider == "east" and east.order_kinds == frozenset({"shipping", "pickup"})
    assert east.ship_to_countries is None
    assert tenant.route("east") is east


def test_a_literal_secret_in_the_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a literal value"):
        load(tmp_path, shipping("acme", "ACME", secret="plain-text"))


def test_two_tenants_sharing_a_provider_prefix_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="share vinoshipper order_number_prefix 'SAME'"):
        load(tmp_path, shipping("acme", "SAME") + shipping("other", "SAME"))


def test_a_prefix_the_provider_cannot_take_is_refused_naming_tenant_and_section(tmp_path):
    with pytest.raises(ConfigError, match=r"tenant 'acme' \[accounts.shipping\].*order_number_prefix"):
        load(tmp_path, shipping("acme", "has space"))


def test_a_missing_secret_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("VS_SECRET")
    with pytest.raises(ConfigError, match="VS_SECRET is not set"):
        load(tmp_path, shipping("acme", "ACME"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (shipping("acme", "ACME", extra='colour = "red"'), r"\[accounts.shipping\]: unknown key\(s\) 'colour'"),
        (shipping("acme", "ACME", extra="timeout_s = -1"), r"\[accounts.shipping\] timeout_s: must be a positive"),
        (shipping("acme", "ACME", extra='compliance_precheck = "yes"'), "compliance_precheck: must be true or false"),
        ('[tenants.acme.accounts.x]\nconnector = "nope"\n', r"\[accounts.x\] connector: 'nope' is not a registered"),
        (store("acme") + route("acme", "r1"), r"\[\[routes\]\] 'r1' provider: 'shipping' is not one of"),
        (
            store("acme") + shipping("acme", "ACME") + route("acme", "r1", extra='order_kinds = ["boat"]'),
            r"'r1' order_kinds: \['boat'\] unknown",
        ),
        (store("acme") + shipping("acme", "ACME") + route("acme", "r1") + route("acme", "r1"), "two routes are named"),
        (
            store("acme") + "[[tenants.acme.routes]]\nname = 'x'\nchannel = 'store'\nprovider = 'store'\n",
            "account 'store' \\(commerce7\\) is not a provider",
        ),
    ],
)
def test_an_invalid_file_is_refused_naming_tenant_section_and_field(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, body)


OLD = """
[tenants.acme]
chosen_states = ["ca", "OR"]
[tenants.acme.commerce7]
tenant_slug = "acme"
app_id = "app"
app_secret = "env:VS_SECRET"
webhook_user = "ordersync"
webhook_password = "env:VS_SECRET"
[tenants.acme.vinoshipper]
api_key = "key"
api_secret = "env:VS_SECRET"
order_number_prefix = "ACME"
webhook_token = "env:VS_SECRET"
"""


def test_the_old_format_is_refused_with_how_to_convert(tmp_path):
    with pytest.raises(ConfigError, match=r"old format .*python -m libs.platform.tenants convert"):
        load(tmp_path, OLD)


def test_the_old_format_converts_to_accounts_and_one_route(tmp_path):
    import tomli_w

    converted = convert_old_document(tomllib.loads(OLD), REGISTRY)
    tenant = load(tmp_path, tomli_w.dumps(converted))["acme"]
    assert {a.connector for a in tenant.accounts.values()} == {"commerce7", "vinoshipper"}
    (only,) = tenant.routes
    assert (only.channel, only.provider) == ("commerce7", "vinoshipper")
    assert only.ship_to_states == frozenset({"CA", "OR"})


def test_a_changed_invalid_file_keeps_the_last_good_settings(tmp_path):
    path = tenants_file(tmp_path, store("acme") + shipping("acme", "ACME") + route("acme", "west"))
    directory = TenantDirectory.load(path, REGISTRY)
    path.write_text(OLD)
    with pytest.raises(ConfigError):
        directory.reload()
    assert directory["acme"].route("west") is not None


def test_an_account_names_its_failed_import_mail_recipient(tmp_path):
    tenants = load(
        tmp_path,
        store("acme").replace('tenant_slug = "acme"', 'tenant_slug = "acme"\nimport_errors_to = "ops@acme.example"'),
    )
    assert tenants["acme"].accounts["store"].import_errors_to == "ops@acme.example"
    assert load(tmp_path, store("other"))["other"].accounts["store"].import_errors_to == ""


@pytest.mark.parametrize("value", ['"not an address"', '"Ops <ops@acme.example>"', '"ops@localhost"', "3", '""'])
def test_a_failed_import_mail_recipient_that_is_no_address_is_refused(tmp_path, value):
    body = store("acme").replace('tenant_slug = "acme"', f'tenant_slug = "acme"\nimport_errors_to = {value}')
    if value == '""':
        # Empty is the same as unset: no mail.
        assert load(tmp_path, body)["acme"].accounts["store"].import_errors_to == ""
        return
    with pytest.raises(ConfigError, match=r"tenant 'acme' \[accounts.store\] import_errors_to: must be an e-mail"):
        load(tmp_path, body)
