"""Integration tests: the real service components on a real Postgres, called over real gRPC.

Each test migrates a schema of its own (carrier_mapping_test_<random>), serves on a port the OS
picks, and drops the schema afterwards, even when the test fails.
"""

import asyncio
import os
import secrets
from dataclasses import dataclass

import asyncpg
import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb
from ordersync.carriers.v1 import carriers_service_pb2_grpc

from carrier_mapping.app import CarrierMappingApp, build
from carrier_mapping.config import CarrierMappingSettings

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

CALL_TIMEOUT_S = 5
REFRESH_S = 0.2


@dataclass
class Service:
    app: CarrierMappingApp
    stub: carriers_service_pb2_grpc.CarrierMappingServiceStub
    channel: grpc.aio.Channel
    dsn: str
    schema: str


@pytest_asyncio.fixture
async def service(monkeypatch, tmp_path):
    dsn = os.environ.get("ORDERSYNC_PG_DSN")
    if not dsn:
        pytest.fail(
            "ORDERSYNC_PG_DSN is not set: these tests need a real Postgres. "
            "Run `make infra-up`, then `source .run/infra.env`."
        )
    schema = f"carrier_mapping_test_{secrets.token_hex(6)}"
    monkeypatch.setenv("ORDERSYNC_DB_SCHEMA", schema)
    monkeypatch.setenv("ORDERSYNC_GRPC_PORT", "0")
    monkeypatch.setenv("ORDERSYNC_MAPPING_REFRESH_S", str(REFRESH_S))
    # Required by the platform settings, though this service uses neither Kafka nor tenants yet.
    if not os.environ.get("ORDERSYNC_KAFKA_BOOTSTRAP"):
        monkeypatch.setenv("ORDERSYNC_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    if not os.environ.get("ORDERSYNC_TENANTS_FILE"):
        monkeypatch.setenv("ORDERSYNC_TENANTS_FILE", str(tmp_path / "tenants.toml"))
    try:
        app = await build(CarrierMappingSettings.from_env())
        async with app, grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
            stub = carriers_service_pb2_grpc.CarrierMappingServiceStub(channel)
            yield Service(app, stub, channel, dsn, schema)
    finally:
        await _drop_schema(dsn, schema)


async def _drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def execute(service: Service, sql: str) -> None:
    """Run `sql` in the test's schema, as an operator editing the tables would."""
    conn = await asyncpg.connect(service.dsn, server_settings={"search_path": service.schema})
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def query(from_system="commerce7", code="03", to_system="vinoshipper") -> pb.CodeQuery:
    return pb.CodeQuery(from_system=from_system, code=code, to_system=to_system)


async def translate(service: Service, tenant_id="acme", **fields) -> pb.TranslateCodeResponse:
    request = pb.TranslateCodeRequest(tenant_id=tenant_id, query=query(**fields))
    return await service.stub.TranslateCode(request, timeout=CALL_TIMEOUT_S)


async def translate_error(service: Service, tenant_id="acme", **fields) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await translate(service, tenant_id, **fields)
    return raised.value


async def translate_once_refreshed(service: Service, **fields) -> pb.TranslateCodeResponse:
    """Poll until a tenant override answers: the refresh task runs every REFRESH_S seconds."""
    for _ in range(40):
        response = await translate(service, **fields)
        if response.translation.tenant_override:
            return response
        await asyncio.sleep(REFRESH_S / 4)
    pytest.fail(f"no tenant override was served after {40 * REFRESH_S / 4:.0f} s of refreshes")


async def test_commerce7_ground_translates_to_vinoshipper_ground(service):
    response = await translate(service, code="03")

    assert response.translation == pb.CodeTranslation(
        code="03",
        name="UPS Ground",
        carrier="UPS",
        canonical_carrier="UPS",
        canonical_service="UPS_GROUND",
        tenant_override=False,
    )


async def test_unmapped_code_is_not_found_naming_tenant_system_and_code(service):
    error = await translate_error(service, code="99")

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no mapping for commerce7 code '99' to vinoshipper for tenant 'acme'"


async def test_empty_code_is_invalid_argument_naming_the_field(service):
    error = await translate_error(service, code="")

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "code is required"


async def test_empty_tenant_is_invalid_argument(service):
    error = await translate_error(service, tenant_id="")

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "tenant_id is required"


async def test_unknown_system_is_invalid_argument_listing_the_known_ones(service):
    error = await translate_error(service, to_system="fedex")

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "unknown system 'fedex'; known: commerce7, vinoshipper"


async def test_batch_answers_every_query_in_order_with_errors_per_item(service):
    queries = [
        query(code="01"),
        query(code="99"),
        query(to_system="fedex"),
        query(from_system=""),
        query(from_system="vinoshipper", code="12", to_system="commerce7"),
    ]
    request = pb.BatchTranslateCodesRequest(tenant_id="acme", queries=queries)

    response = await service.stub.BatchTranslateCodes(request, timeout=CALL_TIMEOUT_S)

    assert [r.query for r in response.results] == queries
    assert [(r.translation.code, r.translation.name) for r in response.results] == [
        ("01", "UPS Next Day Air"),
        ("", ""),
        ("", ""),
        ("", ""),
        ("12", "UPS 3 Day Select"),
    ]
    found = [r.HasField("translation") for r in response.results]
    assert found == [True, False, False, False, True]
    assert [r.error for r in response.results] == [
        "",
        "no mapping for commerce7 code '99' to vinoshipper for tenant 'acme'",
        "unknown system 'fedex'; known: commerce7, vinoshipper",
        "from_system is required",
        "",
    ]


async def test_batch_of_the_maximum_size_is_answered_in_full(service):
    request = pb.BatchTranslateCodesRequest(tenant_id="acme", queries=[query(code="02")] * 10_000)

    response = await service.stub.BatchTranslateCodes(request, timeout=CALL_TIMEOUT_S)

    assert len(response.results) == 10_000
    assert {r.translation.canonical_service for r in response.results} == {"UPS_2ND_DAY_AIR"}


async def test_batch_over_the_maximum_size_is_invalid_argument(service):
    request = pb.BatchTranslateCodesRequest(tenant_id="acme", queries=[query()] * 10_001)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await service.stub.BatchTranslateCodes(request, timeout=CALL_TIMEOUT_S)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "queries holds 10001 items; at most 10000 are allowed"


async def test_batch_without_tenant_is_invalid_argument(service):
    request = pb.BatchTranslateCodesRequest(queries=[query()])

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await service.stub.BatchTranslateCodes(request, timeout=CALL_TIMEOUT_S)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "tenant_id is required"


async def test_tenant_override_added_in_postgres_is_served_after_the_periodic_refresh(service):
    acme_ground = "('vinoshipper', 'acme', 'G1', 'Acme Ground', 'UPS', 'UPS', 'UPS_GROUND')"
    await execute(service, f"INSERT INTO service_codes VALUES {acme_ground}")

    response = await translate_once_refreshed(service, code="03")

    assert (response.translation.code, response.translation.name) == ("G1", "Acme Ground")
    assert (await translate(service, tenant_id="globex", code="03")).translation.code == "03"


async def test_failed_refresh_keeps_serving_the_last_table(service):
    await execute(service, "ALTER TABLE service_codes RENAME TO service_codes_away")

    with pytest.raises(asyncpg.UndefinedTableError):
        await service.app.snapshot.refresh()
    await asyncio.sleep(3 * REFRESH_S)  # let the refresh task fail a few times too

    assert (await translate(service, code="12")).translation.name == "UPS 3 Day Select"


async def test_stopping_ends_the_refresh_task_and_is_safe_twice(service):
    await service.app.stop()
    await service.app.stop()

    names = {task.get_name() for task in asyncio.all_tasks()}
    assert "carrier-mapping-refresh" not in names


async def test_health_check_answers_serving(service):
    health = health_pb2_grpc.HealthStub(service.channel)
    for name in ("", "ordersync.carriers.v1.CarrierMappingService"):
        request = health_pb2.HealthCheckRequest(service=name)
        response = await health.Check(request, timeout=CALL_TIMEOUT_S)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
