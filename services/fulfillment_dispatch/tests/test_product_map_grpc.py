"""ProductMapService over real gRPC on real Postgres, with a fake warehouse's catalog: mappings
listed, put, replaced and deleted per tenant, imports all or nothing with every bad row named,
product sync creating only what is missing (and a dry run creating nothing), every answer code
of every RPC, and the CLI's commands, its CSV exported and imported back."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from ordersync.dispatch.v1 import product_map_service_pb2 as pb
from ordersync.dispatch.v1 import product_map_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.product_map import product_map_binding
from libs.platform.auth import bearer
from libs.platform.grpc_server import GrpcServer, insecure_channel
from libs.platform.testing import ACME_OPERATOR, ACME_READER, GLOBEX_OPERATOR, access_for_tests
from services.fulfillment_dispatch.tests.fake_warehouse import REFUSED_SKU, world

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
REPO = Path(__file__).resolve().parents[3]


def component(sku: str, quantity: int = 1, name: str = "") -> pb.ProductComponent:
    return pb.ProductComponent(sku=sku, quantity=quantity, name=name)


GIFT_SET = pb.ProductMapping(
    channel_sku="GRP-GIFT-SET",
    components=[component("MUG-BLUE", 1, "Blue mug"), component("TEA-EARLGREY", 3, "Earl Grey tea")],
)
HOODIE = pb.ProductMapping(channel_sku="GRP-HOODIE-M", components=[component("HD-0042-M", 1, "Hoodie M")])


class Api:
    """The stub, with each caller's token at hand."""

    def __init__(self, stub, address: str, shop, pool):
        self.stub = stub
        self.address = address
        self.shop = shop
        self.pool = pool

    def call(self, rpc: str, request, token: str | None = ACME_OPERATOR):
        return getattr(self.stub, rpc)(request, metadata=bearer(token), timeout=30)

    async def put(self, mapping: pb.ProductMapping, tenant_id: str = "acme", token: str = ACME_OPERATOR):
        return await self.call(
            "PutProductMapping", pb.PutProductMappingRequest(tenant_id=tenant_id, mapping=mapping), token
        )

    async def mappings(self, tenant_id: str = "acme", token: str = ACME_OPERATOR) -> list[pb.ProductMapping]:
        answer = await self.call("ListProductMappings", pb.ListProductMappingsRequest(tenant_id=tenant_id), token)
        return list(answer.mappings)

    async def stored_rows(self) -> int:
        return await self.pool.fetchval("SELECT count(*) FROM product_map_components")


async def serve(pool, shop):
    server = GrpcServer([product_map_binding(pool, shop.accounts, access_for_tests())], host="127.0.0.1", port=0)
    await server.start()
    return server, f"127.0.0.1:{server.port}"


@pytest_asyncio.fixture
async def api(pool):
    shop = world()
    server, address = await serve(pool, shop)
    try:
        async with insecure_channel(address) as channel:
            yield Api(pb_grpc.ProductMapServiceStub(channel), address, shop, pool)
    finally:
        await server.stop(0)
        await shop.accounts.stop()


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


# ---- mappings


async def test_a_mapping_is_put_listed_replaced_and_deleted(api):
    assert (await api.put(GIFT_SET)).created is True
    assert (await api.put(HOODIE)).created is True
    assert await api.mappings() == [GIFT_SET, HOODIE]

    smaller = pb.ProductMapping(channel_sku="GRP-GIFT-SET", components=[component("MUG-BLUE", 2)])
    assert (await api.put(smaller)).created is False
    assert await api.mappings() == [smaller, HOODIE]

    request = pb.DeleteProductMappingRequest(tenant_id="acme", channel_sku="GRP-GIFT-SET")
    await api.call("DeleteProductMapping", request)
    assert await api.mappings() == [HOODIE]


async def test_writers_of_one_new_channel_sku_at_once_all_succeed_and_one_created_it(api):
    versions = [
        pb.ProductMapping(channel_sku="GRP-NEW", components=[component(f"SKU-{n}"), component("MUG-BLUE", n + 1)])
        for n in range(5)
    ]
    answers = await asyncio.gather(*(api.put(m) for m in versions))

    assert sorted(a.created for a in answers) == [False] * 4 + [True]
    [stored] = await api.mappings()
    assert stored in versions  # one writer's mapping whole, never a mix
    assert await api.stored_rows() == 2


async def test_a_tenants_map_is_its_own(api):
    await api.put(GIFT_SET)
    other = pb.ProductMapping(channel_sku="GRP-GIFT-SET", components=[component("GLOBEX-SET")])
    await api.put(other, "globex", GLOBEX_OPERATOR)

    assert await api.mappings("acme") == [GIFT_SET]
    assert await api.mappings("globex", GLOBEX_OPERATOR) == [other]
    request = pb.DeleteProductMappingRequest(tenant_id="globex", channel_sku="GRP-GIFT-SET")
    await api.call("DeleteProductMapping", request, GLOBEX_OPERATOR)
    assert await api.mappings("acme") == [GIFT_SET]


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        (pb.ProductMapping(components=[component("A")]), "mapping: channel_sku is required"),
        (pb.ProductMapping(channel_sku="X"), "mapping: components: at least one is required"),
        (pb.ProductMapping(channel_sku="X", components=[component("")]), "mapping: sku is required"),
        (pb.ProductMapping(channel_sku="X", components=[component("A", 0)]), "quantity must be 1 to 10000, got 0"),
        (pb.ProductMapping(channel_sku=" X", components=[component("A")]), "channel_sku ' X' has spaces around it"),
        (
            pb.ProductMapping(channel_sku="X", components=[component("A"), component("A", 2)]),
            "sku 'A' is named twice",
        ),
    ],
)
async def test_a_bad_mapping_is_an_invalid_argument_naming_the_field(api, mapping, words):
    error = await refusal(api.put(mapping))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and words in error.details()
    assert await api.stored_rows() == 0


async def test_put_without_a_mapping_and_delete_without_a_sku_are_invalid_arguments(api):
    error = await refusal(api.call("PutProductMapping", pb.PutProductMappingRequest(tenant_id="acme")))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "mapping is required")
    error = await refusal(api.call("DeleteProductMapping", pb.DeleteProductMappingRequest(tenant_id="acme")))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "channel_sku is required")


async def test_deleting_a_mapping_the_tenant_does_not_have_is_not_found(api):
    await api.put(GIFT_SET, "globex", GLOBEX_OPERATOR)
    request = pb.DeleteProductMappingRequest(tenant_id="acme", channel_sku="GRP-GIFT-SET")
    error = await refusal(api.call("DeleteProductMapping", request))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "tenant 'acme' has no mapping of channel SKU 'GRP-GIFT-SET'"
    assert await api.mappings("globex", GLOBEX_OPERATOR) == [GIFT_SET]


# ---- import


def row(line: int, channel_sku: str, sku: str, quantity: int = 1, name: str = "", tenant_id: str = "acme"):
    return pb.ProductImportRow(
        line=line, tenant_id=tenant_id, channel_sku=channel_sku, component=component(sku, quantity, name)
    )


async def test_an_import_groups_the_rows_of_a_channel_sku_into_one_bundle_and_replaces_what_it_names(api):
    await api.put(HOODIE)
    rows = [
        row(2, "GRP-GIFT-SET", "MUG-BLUE", 1, "Blue mug"),
        row(3, "GRP-HOODIE-M", "HD-0042-M2"),
        row(4, "GRP-GIFT-SET", "TEA-EARLGREY", 3, "Earl Grey tea"),
    ]
    answer = await api.call("ImportProductMappings", pb.ImportProductMappingsRequest(rows=rows))

    assert (answer.created, answer.replaced) == (1, 1)
    hoodie = pb.ProductMapping(channel_sku="GRP-HOODIE-M", components=[component("HD-0042-M2")])
    assert await api.mappings() == [GIFT_SET, hoodie]


async def test_an_import_with_bad_rows_names_every_one_and_writes_nothing(api):
    await api.put(HOODIE)
    rows = [
        row(2, "GRP-GIFT-SET", "MUG-BLUE"),
        row(3, "GRP-GIFT-SET", "", 1),
        row(4, "GRP-TOWEL", "TOWEL", 0),
        row(5, "GRP-GIFT-SET", "MUG-BLUE", 2),
        row(6, "GRP-HOODIE-M", "HD-0042-M2"),
        row(7, "", "X"),
    ]
    error = await refusal(api.call("ImportProductMappings", pb.ImportProductMappingsRequest(rows=rows)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "4 bad row(s), nothing imported: row 3: sku is required; row 4: quantity must be 1 to 10000, got 0; "
        "row 5: sku 'MUG-BLUE' of 'GRP-GIFT-SET' is also on row 2; row 7: channel_sku is required"
    )
    assert await api.mappings() == [HOODIE]


async def test_an_import_with_nothing_in_it_is_an_invalid_argument(api):
    error = await refusal(api.call("ImportProductMappings", pb.ImportProductMappingsRequest()))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "rows[].tenant_id is required")


async def test_an_import_naming_a_tenant_the_caller_may_not_change_writes_nothing(api):
    rows = [row(2, "GRP-GIFT-SET", "MUG-BLUE"), row(3, "GRP-X", "X", tenant_id="globex")]
    error = await refusal(api.call("ImportProductMappings", pb.ImportProductMappingsRequest(rows=rows)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'jane@acme.example' is not granted tenant 'globex'"
    assert await api.stored_rows() == 0


# ---- who may call


REQUESTS = {
    "ListProductMappings": pb.ListProductMappingsRequest(tenant_id="acme"),
    "PutProductMapping": pb.PutProductMappingRequest(tenant_id="acme", mapping=HOODIE),
    "DeleteProductMapping": pb.DeleteProductMappingRequest(tenant_id="acme", channel_sku="GRP-HOODIE-M"),
    "ImportProductMappings": pb.ImportProductMappingsRequest(rows=[row(2, "GRP-HOODIE-M", "HD-0042-M")]),
    "SyncProducts": pb.SyncProductsRequest(tenant_id="acme", provider_account="warehouse"),
}


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
async def test_a_call_without_a_known_token_is_unauthenticated(api, rpc):
    for token in (None, "guessed-token"):
        error = await refusal(api.call(rpc, REQUESTS[rpc], token))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "guessed-token" not in error.details()


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
async def test_another_tenants_caller_is_refused_naming_the_tenant(api, rpc):
    error = await refusal(api.call(rpc, REQUESTS[rpc], GLOBEX_OPERATOR))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'ops@globex.example' is not granted tenant 'acme'"


@pytest.mark.parametrize("rpc", ["PutProductMapping", "DeleteProductMapping", "ImportProductMappings", "SyncProducts"])
async def test_a_reader_may_not_change_the_map_or_the_catalog(api, rpc):
    error = await refusal(api.call(rpc, REQUESTS[rpc], ACME_READER))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'acme-viewer' may read but not act on orders of tenant 'acme'"
    assert api.shop.warehouse.creates == []


@pytest.mark.parametrize("rpc", ["ListProductMappings", "PutProductMapping", "DeleteProductMapping", "SyncProducts"])
async def test_a_request_without_a_tenant_is_an_invalid_argument(api, rpc):
    request: Any = type(REQUESTS[rpc])()
    request.CopyFrom(REQUESTS[rpc])
    request.tenant_id = ""
    error = await refusal(api.call(rpc, request))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "tenant_id is required")


@pytest.mark.parametrize("rpc", sorted(REQUESTS))
async def test_an_unreachable_database_is_unavailable(api, rpc, unused_tcp_port):
    # A pool on a port where no PostgreSQL listens: the database cannot be reached at all.
    down = await asyncpg.create_pool(f"postgresql://nobody@127.0.0.1:{unused_tcp_port}/none", min_size=0)
    server, address = await serve(down, api.shop)
    try:
        async with insecure_channel(address) as channel:
            stub = pb_grpc.ProductMapServiceStub(channel)
            error = await refusal(getattr(stub, rpc)(REQUESTS[rpc], metadata=bearer(ACME_OPERATOR), timeout=30))
    finally:
        await server.stop(0)
        await down.close()
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == "the product map's database could not be reached; try again"


# ---- product sync


async def test_sync_creates_only_the_missing_products_with_the_maps_names(api):
    api.shop.warehouse.catalog.update({"MUG-BLUE": "Blue mug (warehouse)"})
    await api.put(GIFT_SET)
    await api.put(HOODIE)
    await api.put(pb.ProductMapping(channel_sku="GRP-MUG-2", components=[component("MUG-BLUE", 2)]))
    await api.put(pb.ProductMapping(channel_sku="GRP-PLAIN", components=[component("PLAIN-1")]))

    answer = await api.call("SyncProducts", pb.SyncProductsRequest(tenant_id="acme", provider_account="warehouse"))

    assert answer.dry_run is False
    assert [(p.sku, p.name) for p in answer.created] == [
        ("HD-0042-M", "Hoodie M"),
        ("PLAIN-1", "PLAIN-1"),
        ("TEA-EARLGREY", "Earl Grey tea"),
    ]
    assert list(answer.present) == ["MUG-BLUE"] and list(answer.failed) == []
    assert api.shop.warehouse.catalog == {
        "MUG-BLUE": "Blue mug (warehouse)",
        "HD-0042-M": "Hoodie M",
        "PLAIN-1": "PLAIN-1",
        "TEA-EARLGREY": "Earl Grey tea",
    }
    again = await api.call("SyncProducts", pb.SyncProductsRequest(tenant_id="acme", provider_account="warehouse"))
    assert list(again.created) == [] and len(again.present) == 4
    assert len(api.shop.warehouse.creates) == 3


async def test_a_dry_run_lists_what_would_be_created_and_creates_nothing_even_for_a_reader(api):
    await api.put(GIFT_SET)
    request = pb.SyncProductsRequest(tenant_id="acme", provider_account="warehouse", dry_run=True)

    answer = await api.call("SyncProducts", request, ACME_READER)

    assert answer.dry_run is True
    assert [(p.sku, p.name) for p in answer.created] == [("MUG-BLUE", "Blue mug"), ("TEA-EARLGREY", "Earl Grey tea")]
    assert api.shop.warehouse.creates == [] and api.shop.warehouse.catalog == {}


async def test_a_product_the_provider_refuses_is_listed_with_why_and_the_others_are_created(api):
    await api.put(pb.ProductMapping(channel_sku="GRP-ODD", components=[component(REFUSED_SKU), component("MUG-BLUE")]))

    answer = await api.call("SyncProducts", pb.SyncProductsRequest(tenant_id="acme", provider_account="warehouse"))

    assert [p.sku for p in answer.created] == ["MUG-BLUE"]
    assert [(f.sku, f.reason) for f in answer.failed] == [
        (REFUSED_SKU, "INVALID_REQUEST: the warehouse refused the product: SKU may not hold spaces")
    ]


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"provider_account": ""}, grpc.StatusCode.INVALID_ARGUMENT, "provider_account is required"),
        ({"provider_account": "nope"}, grpc.StatusCode.NOT_FOUND, "tenant 'acme' has no account 'nope'"),
        ({"tenant_id": "nobody"}, grpc.StatusCode.NOT_FOUND, "tenant 'nobody' is not configured"),
        (
            {"provider_account": "plain"},
            grpc.StatusCode.FAILED_PRECONDITION,
            "account 'plain' (plainship) has no product catalog to sync",
        ),
        ({"provider_account": "down"}, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE: the warehouse answered 503"),
    ],
)
async def test_a_sync_that_cannot_run_is_refused_with_its_own_code(api, fields, code, words):
    await api.put(GIFT_SET)
    request = pb.SyncProductsRequest(**({"tenant_id": "acme", "provider_account": "warehouse"} | fields))
    token = "all-tenants-reader-token" if fields.get("tenant_id") == "nobody" else ACME_OPERATOR
    if token != ACME_OPERATOR:
        request.dry_run = True
    error = await refusal(api.call("SyncProducts", request, token))
    assert error.code() == code and words in error.details()
    assert api.shop.warehouse.creates == []


# ---- the CLI


async def cli(api: Api, *args: str, token: str = ACME_OPERATOR) -> tuple[str, str, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fulfillment_dispatch.cli",
        "--addr",
        api.address,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "ORDERSYNC_ADMIN_TOKEN": token},
    )
    out, err = await process.communicate()
    return out.decode(), err.decode(), process.returncode or 0


async def test_the_cli_adds_lists_exports_imports_back_and_removes(api, tmp_path):
    out, err, code = await cli(
        api, "product-map", "add", "acme", "GRP-GIFT-SET", "MUG-BLUE", "TEA-EARLGREY*3", "--name", "Blue mug",
        "--name", "Earl Grey tea",
    )  # fmt: skip
    assert code == 0, err
    assert "added the mapping of 'GRP-GIFT-SET' for tenant 'acme'" in out
    assert (await cli(api, "product-map", "add", "acme", "GRP-HOODIE-M", "HD-0042-M", "--name", "Hoodie M"))[2] == 0

    out, _, code = await cli(api, "product-map", "list", "acme")
    assert code == 0
    assert "GRP-GIFT-SET             bundle      -> MUG-BLUE x1 (Blue mug), TEA-EARLGREY x3 (Earl Grey tea)" in out
    assert "GRP-HOODIE-M             alternative -> HD-0042-M x1 (Hoodie M)" in out

    exported, _, code = await cli(api, "product-map", "export", "acme")
    assert code == 0
    assert exported == (
        "tenant,channel_sku,sku,quantity,name\n"
        "acme,GRP-GIFT-SET,MUG-BLUE,1,Blue mug\n"
        "acme,GRP-GIFT-SET,TEA-EARLGREY,3,Earl Grey tea\n"
        "acme,GRP-HOODIE-M,HD-0042-M,1,Hoodie M\n"
    )
    before = await api.mappings()
    await api.pool.execute("DELETE FROM product_map_components")
    csv_file = tmp_path / "map.csv"
    csv_file.write_text(exported)
    out, err, code = await cli(api, "product-map", "import", str(csv_file))
    assert code == 0, err
    assert "imported 3 row(s): 2 mapping(s) created, 0 replaced" in out
    assert await api.mappings() == before

    out, _, code = await cli(api, "product-map", "remove", "acme", "GRP-HOODIE-M")
    assert code == 0 and [m.channel_sku for m in await api.mappings()] == ["GRP-GIFT-SET"]


async def test_the_cli_import_names_every_bad_row_and_writes_nothing(api, tmp_path):
    csv_file = tmp_path / "map.csv"
    csv_file.write_text(
        "tenant,channel_sku,sku,quantity,name\n"
        "acme,GRP-GIFT-SET,MUG-BLUE,1,Blue mug\n"
        "acme,GRP-GIFT-SET,,1,\n"
        "acme,GRP-TOWEL,TOWEL,two,Towel\n"
        "acme,GRP-TOWEL,TOWEL\n"
    )
    out, err, code = await cli(api, "product-map", "import", str(csv_file))
    assert code == 2 and out == ""
    assert "row 4: quantity 'two' is not a whole number; row 5: expected 5 fields; nothing imported" in err

    csv_file.write_text(
        "tenant,channel_sku,sku,quantity,name\nacme,GRP-GIFT-SET,MUG-BLUE,1,Blue mug\nacme,GRP-GIFT-SET,,1,\n"
    )
    out, err, code = await cli(api, "product-map", "import", str(csv_file))
    assert code == 1 and "INVALID_ARGUMENT: 1 bad row(s), nothing imported: row 3: sku is required" in err
    assert await api.stored_rows() == 0


async def test_the_cli_syncs_products_with_a_dry_run_first(api):
    await api.put(GIFT_SET)
    api.shop.warehouse.catalog["MUG-BLUE"] = "Blue mug"

    out, err, code = await cli(api, "sync-products", "acme", "warehouse", "--dry-run", token=ACME_READER)
    assert code == 0, err
    assert "would create  TEA-EARLGREY             Earl Grey tea" in out and "present       MUG-BLUE" in out
    assert "TEA-EARLGREY" not in api.shop.warehouse.catalog

    out, err, code = await cli(api, "sync-products", "acme", "warehouse")
    assert code == 0, err
    assert "created       TEA-EARLGREY" in out and "(1 created, 1 present, 0 failed)" in out
    assert api.shop.warehouse.catalog["TEA-EARLGREY"] == "Earl Grey tea"
