"""The tenants file and simulator configs the stack writes, read back by the services' own parser.

No service is started: the stack plans its services (ports, environment) and writes its files;
the tenants file is then loaded with the real TenantDirectory and connector registry, the
secrets taken from the environment the services would get.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.connectors.registry import default_registry
from libs.platform.tenants import TenantDirectory
from tests.simulators.common import SimulatorServer
from tests.simulators.registry import AccountSpec, default_simulators
from tests.simulators.vinoshipper import STATE_KEY, VinoshipperConfig, create_app
from tests.system.stack import SHIPPING_ROUTE, STORE, WINE_SHIPPING, RouteSpec, Stack, TenantSpec

SIM_URLS = {"commerce7": "http://127.0.0.1:9001", "vinoshipper": "http://127.0.0.1:9002"}


def usual(tenant_id: str = "acme-cellars", **options) -> TenantSpec:
    return TenantSpec.commerce7_vinoshipper(
        tenant_id, chosen_states=["CA", "OR"], products=["SKU-CAB"], licensed_states=["CA"], **options
    )


def two_providers(tenant_id: str = "coast-to-coast") -> TenantSpec:
    """One store, two Vinoshipper accounts: the west coast's orders to one, New York's to the other."""
    simulators = default_simulators()
    store = simulators.get("commerce7").new_account("store", tenant_id)
    west = simulators.get("vinoshipper").new_account("west", tenant_id, order_number_prefix="WEST", products=["A"])
    east = simulators.get("vinoshipper").new_account("east", tenant_id, order_number_prefix="EAST", products=["B"])
    routes = (
        RouteSpec("west-coast", "store", "west", ship_to_states=("CA", "OR", "WA")),
        RouteSpec("new-york", "store", "east", order_kinds=("shipping", "pickup"), ship_to_states=("NY",)),
    )
    return TenantSpec(tenant_id, (store, west, east), routes)


def written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *tenants: TenantSpec) -> tuple[Stack, TenantDirectory]:
    stack = Stack(list(tenants), run_dir=tmp_path, pg_dsn="postgresql://unused/db", kafka_bootstrap="unused:9092")
    stack.sim_urls.update(SIM_URLS)
    stack._plan_services()  # ports and environment only; nothing starts
    for tenant in tenants:
        stack.update_tenant(tenant)
    for name, value in stack.services["order_intake"].env.items():
        monkeypatch.setenv(name, value)
    return stack, TenantDirectory.load(tmp_path / "tenants.toml", default_registry())


def test_the_usual_tenant_is_a_store_sending_chosen_states_to_its_wine_shipping_account(tmp_path, monkeypatch):
    spec = usual(order_number_prefix="ACME", compliance_precheck=True, provider_timeout_s=1.5)
    _, directory = written(tmp_path, monkeypatch, spec)
    tenant = directory.get("acme-cellars")

    assert {name: a.connector for name, a in tenant.accounts.items()} == {
        STORE: "commerce7",
        WINE_SHIPPING: "vinoshipper",
    }
    store = tenant.account(STORE).settings
    assert store.api.tenant_id == "acme-cellars" and store.api.base_url == "http://127.0.0.1:9001/v1"
    assert store.api.app_secret == spec.account(STORE)["app_secret"]
    assert (store.webhook_user, store.webhook_password) == ("ordersync", spec.account(STORE)["webhook_password"])
    shipping = tenant.account(WINE_SHIPPING).settings
    assert shipping.api.base_url == "http://127.0.0.1:9002"
    assert shipping.api.order_number_prefix == "ACME" and shipping.api.timeout_s == 1.5
    assert shipping.compliance_precheck is True
    assert shipping.webhook_token == spec.account(WINE_SHIPPING)["webhook_token"]
    [route] = tenant.routes
    assert (route.name, route.channel, route.provider) == (SHIPPING_ROUTE, STORE, WINE_SHIPPING)
    assert route.order_kinds == {"shipping"} and route.ship_to_states == {"CA", "OR"}


def test_the_file_holds_secrets_only_as_references(tmp_path, monkeypatch):
    spec = usual()
    written(tmp_path, monkeypatch, spec)
    text = (tmp_path / "tenants.toml").read_text()
    for account in spec.accounts:
        for value in account.secrets.values():
            assert value not in text
    assert 'webhook_token = "env:ORDERSYNC_SECRET_ACME_CELLARS_WINE_SHIPPING_WEBHOOK_TOKEN"' in text


def test_a_two_route_tenant_keeps_its_accounts_and_routes_in_order(tmp_path, monkeypatch):
    _, directory = written(tmp_path, monkeypatch, two_providers(), usual())
    tenant = directory.get("coast-to-coast")

    assert [a.name for a in tenant.accounts_of("vinoshipper")] == ["west", "east"]
    assert tenant.account("east").settings.api.order_number_prefix == "EAST"
    assert [(r.name, r.channel, r.provider) for r in tenant.routes_from("store")] == [
        ("west-coast", "store", "west"),
        ("new-york", "store", "east"),
    ]
    assert tenant.route("new-york").order_kinds == {"shipping", "pickup"}
    assert tenant.route("west-coast").ship_to_states == {"CA", "OR", "WA"}
    assert directory.get("acme-cellars") is not None


def test_changed_route_and_account_reach_the_file(tmp_path, monkeypatch):
    spec = usual()
    stack, _ = written(tmp_path, monkeypatch, spec)
    stack.update_tenant(
        spec.with_route(SHIPPING_ROUTE, ship_to_states=("CA",)).with_account(WINE_SHIPPING, timeout_s=3.0)
    )
    tenant = TenantDirectory.load(tmp_path / "tenants.toml", default_registry()).get("acme-cellars")
    assert tenant.route(SHIPPING_ROUTE).ship_to_states == {"CA"}
    assert tenant.account(WINE_SHIPPING).settings.api.timeout_s == 3.0


def test_each_simulator_is_told_its_accounts_and_our_webhook_urls(tmp_path, monkeypatch):
    spec = two_providers()
    stack, _ = written(tmp_path, monkeypatch, spec)
    intake, dispatch = stack.http_url("order_intake"), stack.http_url("fulfillment_dispatch")
    assert stack.connectors_in_use() == ["commerce7", "vinoshipper"]

    c7 = default_simulators().get("commerce7").build_config(stack.simulated_accounts("commerce7"))
    assert c7["tenants"] == [
        {
            "tenant_id": "coast-to-coast",
            "app_id": spec.account("store")["app_id"],
            "app_secret": spec.account("store")["app_secret"],
            "webhook_url": f"{intake}/webhooks/commerce7/coast-to-coast",
            "webhook_user": "ordersync",
            "webhook_password": spec.account("store")["webhook_password"],
        }
    ]
    vs = default_simulators().get("vinoshipper").build_config(stack.simulated_accounts("vinoshipper"))
    assert [(p["producer_id"], p["products"], p["webhook_url"]) for p in vs["producers"]] == [
        (
            f"coast-to-coast.{name}",
            products,
            f"{dispatch}/webhooks/vinoshipper/coast-to-coast/{spec.account(name)['webhook_token']}",
        )
        for name, products in (("west", ["A"]), ("east", ["B"]))
    ]
    # Simulator-only options never reach the tenants file, where the connector would refuse them.
    assert "products" not in (tmp_path / "tenants.toml").read_text()


def test_a_connector_without_a_simulator_is_named(tmp_path):
    spec = usual()
    odd = TenantSpec("odd", (spec.account(STORE), AccountSpec("x", "nosuchvendor")))
    stack = Stack([odd], run_dir=tmp_path, pg_dsn="postgresql://unused/db", kafka_bootstrap="unused:9092")
    stack.sim_urls.update(SIM_URLS)
    with pytest.raises(LookupError, match="no simulator for connector 'nosuchvendor'"):
        stack.tenants_document()


def test_an_account_is_never_written_without_its_simulators_address(tmp_path):
    stack = Stack([usual()], run_dir=tmp_path, pg_dsn="postgresql://unused/db", kafka_bootstrap="unused:9092")
    stack.sim_urls["commerce7"] = SIM_URLS["commerce7"]
    with pytest.raises(RuntimeError, match="no vinoshipper simulator is running for account 'wine-shipping'"):
        stack.tenants_document()


@pytest.mark.asyncio
async def test_simulators_start_for_the_connectors_in_use_and_hear_of_account_changes(tmp_path):
    """The Commerce7 simulator as a process of its own, Vinoshipper's run outside the stack."""
    spec = usual()
    outside = create_app(VinoshipperConfig())
    async with SimulatorServer(outside) as vinoshipper:
        stack = Stack(
            [spec],
            run_dir=tmp_path,
            pg_dsn="postgresql://unused/db",
            kafka_bootstrap="unused:9092",
            external_simulators={"vinoshipper": vinoshipper.base_url},
        )
        (tmp_path / "logs").mkdir()
        stack._plan_services()
        try:
            await stack.start_simulators()
            assert set(stack.sim_urls) == {"commerce7", "vinoshipper"}
            assert stack.sim_urls["vinoshipper"] == vinoshipper.base_url
            assert (await stack.http.get(f"{stack.sim_urls['commerce7']}/_sim/stats")).status_code == 200
            [producer] = outside[STATE_KEY].producers.values()
            assert producer.products == ["SKU-CAB"]
            assert producer.webhook_url.endswith(
                f"/webhooks/vinoshipper/acme-cellars/{spec.account(WINE_SHIPPING)['webhook_token']}"
            )

            await stack.update_account("acme-cellars", WINE_SHIPPING, products=["SKU-CAB", "SKU-ROSE"])
            assert outside[STATE_KEY].producers[producer.producer_id].products == ["SKU-CAB", "SKU-ROSE"]
            assert stack.tenants["acme-cellars"].account(WINE_SHIPPING)["products"] == ["SKU-CAB", "SKU-ROSE"]
        finally:
            await stack.stop_simulators()
            await stack.http.aclose()
