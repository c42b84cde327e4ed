"""A fake warehouse for the product map's tests: a provider with SKUs of its own
(`maps_products`) and a product catalog, in a test Registry beside a provider that maps nothing.

The warehouse is the external system, so its double stands in for the vendor: it holds a
catalog, takes an order only when every item's SKU is in it (otherwise `UnknownProduct`, as a
warehouse connector raises for a SKU it does not know) and records what it received. Everything
of ordersync's own (Postgres, gRPC) is real in the tests that use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ordersync.common.v1 import order_pb2

from fulfillment_dispatch.storage.dispatches import NewDispatch, enqueue
from libs.connectors.base.contract import (
    Capability,
    CatalogProduct,
    ClientResources,
    ConnectorInfo,
    Limits,
    ProviderConnector,
    Role,
    SecretResolver,
    Submission,
    SubmitResult,
    Submitted,
    provider_titles,
)
from libs.connectors.base.errors import InvalidRequest, Unavailable, UnknownProduct
from libs.connectors.registry import Registry
from libs.platform.accounts import AccountClients
from libs.platform.tenants import Account, Tenant, TenantDirectory

REFUSED_SKU = "BAD SKU"  # a SKU the warehouse's catalog refuses to create
DOWN = "catalog-down"  # an account prefix whose catalog cannot be read


@dataclass(frozen=True)
class WarehouseAccount:
    prefix: str


@dataclass
class Warehouse:
    """The vendor's side: its catalog (SKU -> name), the orders it took, the calls it got."""

    catalog: dict[str, str] = field(default_factory=dict)
    calls: list[list[Submission]] = field(default_factory=list)
    taken: dict[str, Submission] = field(default_factory=dict)
    creates: list[CatalogProduct] = field(default_factory=list)

    def answer(self, item: Submission) -> SubmitResult:
        if item.may_exist and item.order_number in self.taken:
            return Submitted(f"found as {item.order_number}")
        unknown = [i.sku for i in item.items if i.sku not in self.catalog]
        if unknown:
            return UnknownProduct(f"SKU {unknown[0]} is not a product of the warehouse", details=unknown)
        self.taken[item.order_number] = item
        return Submitted(f"taken as {item.order_number}")


class FakeClient:
    def __init__(self, warehouse: Warehouse, prefix: str):
        self.warehouse = warehouse
        self.prefix = prefix

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc) -> None:
        return None


class FakeWarehouse(ProviderConnector):
    """A provider mapping products (or, with `maps_products=False`, one that does not)."""

    def __init__(self, connector_id: str, warehouse: Warehouse, *, maps_products: bool = True):
        capabilities = {Capability.SUBMIT}
        capabilities |= {Capability.PRODUCT_CATALOG} if maps_products else set()
        label = connector_id.capitalize()
        self.info = ConnectorInfo(
            id=connector_id,
            label=label,
            roles=frozenset({Role.PROVIDER}),
            capabilities=frozenset(capabilities),
            limits=Limits(batch_size=10, concurrency=2),
            status_titles=provider_titles(label),
            maps_products=maps_products,
        )
        self.warehouse = warehouse

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> WarehouseAccount:
        return WarehouseAccount(section["prefix"])

    def open_client(self, settings: WarehouseAccount, resources: ClientResources) -> Any:
        return FakeClient(self.warehouse, settings.prefix)

    def order_number(self, settings: WarehouseAccount, order: order_pb2.Order) -> str:
        return f"{settings.prefix}-{order.external_number}"

    async def submit(
        self, client: FakeClient, settings: WarehouseAccount, batch: Sequence[Submission]
    ) -> list[SubmitResult]:
        client.warehouse.calls.append(list(batch))
        return [client.warehouse.answer(item) for item in batch]

    async def list_products(self, client: FakeClient, settings: WarehouseAccount) -> list[CatalogProduct]:
        if client.prefix == DOWN:
            raise Unavailable("the warehouse answered 503")
        return [CatalogProduct(sku, name) for sku, name in client.warehouse.catalog.items()]

    async def create_product(self, client: FakeClient, settings: WarehouseAccount, product: CatalogProduct) -> bool:
        if product.sku == REFUSED_SKU:
            raise InvalidRequest("the warehouse refused the product: SKU may not hold spaces", status_code=400)
        client.warehouse.creates.append(product)
        if product.sku in client.warehouse.catalog:
            return False
        client.warehouse.catalog[product.sku] = product.name
        return True


@dataclass
class World:
    warehouse: Warehouse
    registry: Registry
    accounts: AccountClients
    tenants: TenantDirectory


def world() -> World:
    """Tenants acme and globex, each with a 'warehouse' account (mapping products) and a 'plain'
    account (a provider that maps nothing); acme also has 'down', whose catalog fails."""
    warehouse = Warehouse()
    registry = Registry(
        [FakeWarehouse("warehouse", warehouse), FakeWarehouse("plainship", warehouse, maps_products=False)]
    )

    def accounts(prefix: str) -> dict[str, Account]:
        return {
            "warehouse": Account("warehouse", "warehouse", WarehouseAccount(prefix)),
            "plain": Account("plain", "plainship", WarehouseAccount(f"P{prefix}")),
        }

    acme = accounts("A") | {"down": Account("down", "warehouse", WarehouseAccount(DOWN))}
    directory = TenantDirectory({"acme": Tenant("acme", acme), "globex": Tenant("globex", accounts("G"))})
    accounts_clients = AccountClients(directory, registry, ClientResources(max_concurrency=4))
    return World(warehouse, registry, accounts_clients, directory)


def order(tenant_id: str, number: str, lines: Sequence[tuple[str, str, int]]) -> order_pb2.Order:
    """An order whose lines are (channel line id, SKU, quantity)."""
    result = order_pb2.Order(
        order_id=f"ord-{tenant_id}-{number}",
        tenant_id=tenant_id,
        channel="groupon",
        channel_account="deals",
        external_id=f"g-{number}",
        external_number=number,
    )
    for line_id, sku, quantity in lines:
        result.lines.add(channel_line_id=line_id, sku=sku, quantity=quantity, title=f"deal {sku}")
    return result


async def queue(pool, tenant_id: str, number: str, lines, *, account: str = "warehouse") -> None:
    """Queue an order for the tenant's account, as the decisions consumer does."""
    provider = {"warehouse": "warehouse", "plain": "plainship"}[account]
    prefix = ("P" if account == "plain" else "") + tenant_id[0].upper()
    placed = order(tenant_id, number, lines)
    row = NewDispatch(
        order_id=placed.order_id,
        tenant_id=tenant_id,
        provider=provider,
        provider_order_number=f"{prefix}-{number}",
        order_proto=placed.SerializeToString(),
        channel="groupon",
        external_id=placed.external_id,
        external_number=number,
        traceparent="",
        provider_account=account,
        channel_account="deals",
    )
    async with pool.acquire() as conn:
        await enqueue(conn, [row])
