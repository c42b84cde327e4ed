"""Integration tests: the real service components on a real Postgres, called over real gRPC.

Each test migrates a schema of its own, serves on a port the OS picks, and drops the schema
afterwards, even when the test fails (see carrier_mapping.testing).
"""

import asyncio
import csv
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from ordersync.carriers.v1 import carriers_service_pb2 as pb

from carrier_mapping.testing import ACME_READER, ACME_WRITER, ADMIN, CONSOLE
from libs.platform.auth import on_behalf_of

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

SYSTEMS = "cin7, commerce7, groupon, mintsoft, shipstation, vinoshipper"
# CommerceInterface's approved courier list as the Groupon-to-Mintsoft guide gives it.
GROUPON = list(csv.DictReader((Path(__file__).parent / "data/groupon_approved_couriers.csv").read_text().splitlines()))


def query(from_system="commerce7", code="03", to_system="vinoshipper") -> pb.CodeQuery:
    return pb.CodeQuery(from_system=from_system, code=code, to_system=to_system)


def mapping(**fields) -> pb.Mapping:
    """A valid tenant mapping: Vinoshipper's ground service under the code G1."""
    values = dict(
        system="vinoshipper",
        code="G1",
        name="Acme Ground",
        carrier="UPS",
        canonical_carrier="UPS",
        canonical_service="UPS_GROUND",
    )
    return pb.Mapping(**{**values, **fields})


async def translate(stubs, tenant_id="acme", token=ADMIN, **fields) -> pb.TranslateCodeResponse:
    request = pb.TranslateCodeRequest(tenant_id=tenant_id, query=query(**fields))
    return await stubs.as_(token).TranslateCode(request)


async def rpc_error(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def batch(stubs, queries, tenant_id="acme", token=ADMIN) -> pb.BatchTranslateCodesResponse:
    request = pb.BatchTranslateCodesRequest(tenant_id=tenant_id, queries=queries)
    return await stubs.as_(token).BatchTranslateCodes(request)


# ---- translation ---------------------------------------------------------------------------


async def test_commerce7_ground_translates_to_vinoshipper_ground(stubs):
    response = await translate(stubs, code="03")

    assert response.translation == pb.CodeTranslation(
        code="03",
        name="UPS Ground",
        carrier="UPS",
        canonical_carrier="UPS",
        canonical_service="UPS_GROUND",
        tenant_override=False,
    )


async def test_every_groupon_approved_code_translates_in_both_spellings(stubs):
    queries = [query("groupon", row[spelling], "groupon") for row in GROUPON for spelling in ("code", "alias")]

    response = await batch(stubs, queries)

    answers = [(r.status, r.translation.code, r.translation.name) for r in response.results]
    expected = [(pb.TRANSLATION_STATUS_OK, row["code"], row["name"]) for row in GROUPON for _ in range(2)]
    assert answers == expected
    assert len(GROUPON) == 58


async def test_groupon_couriers_answer_for_any_service_of_their_carrier(stubs):
    response = await translate(stubs, from_system="vinoshipper", code="03", to_system="groupon")

    assert (response.translation.code, response.translation.canonical_service) == ("UPS", "")


async def test_unmapped_code_is_not_found_naming_tenant_system_and_code(stubs):
    error = await rpc_error(translate(stubs, code="99"))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no mapping for commerce7 code '99' to vinoshipper for tenant 'acme'"


async def test_unknown_groupon_courier_is_not_found(stubs):
    error = await rpc_error(translate(stubs, from_system="groupon", code="Ups", to_system="groupon"))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no mapping for groupon code 'Ups' to groupon for tenant 'acme'"


async def test_target_without_the_carrier_is_not_found_with_the_reason(stubs):
    error = await rpc_error(translate(stubs, from_system="groupon", code="ydl", to_system="vinoshipper"))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == (
        "no mapping for groupon code 'ydl' to vinoshipper for tenant 'acme': vinoshipper has no code for carrier YODEL"
    )


async def test_empty_code_is_invalid_argument_naming_the_field(stubs):
    error = await rpc_error(translate(stubs, code=""))

    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "code is required")


async def test_empty_tenant_is_invalid_argument(stubs):
    error = await rpc_error(translate(stubs, tenant_id=""))

    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "tenant_id is required")


async def test_unknown_system_is_invalid_argument_listing_the_known_ones(stubs):
    error = await rpc_error(translate(stubs, to_system="fedex"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"unknown system 'fedex'; known: {SYSTEMS}"


async def test_batch_answers_every_query_in_order_with_status_and_error_per_item(stubs):
    queries = [
        query(code="01"),
        query(code="99"),
        query(to_system="fedex"),
        query(from_system=""),
        query(from_system="vinoshipper", code="12", to_system="commerce7"),
    ]

    response = await batch(stubs, queries)

    assert [r.query for r in response.results] == queries
    assert [r.translation.code for r in response.results] == ["01", "", "", "", "12"]
    assert [r.status for r in response.results] == [
        pb.TRANSLATION_STATUS_OK,
        pb.TRANSLATION_STATUS_NOT_FOUND,
        pb.TRANSLATION_STATUS_INVALID_ARGUMENT,
        pb.TRANSLATION_STATUS_INVALID_ARGUMENT,
        pb.TRANSLATION_STATUS_OK,
    ]
    assert [r.error for r in response.results] == [
        "",
        "no mapping for commerce7 code '99' to vinoshipper for tenant 'acme'",
        f"unknown system 'fedex'; known: {SYSTEMS}",
        "from_system is required",
        "",
    ]


async def test_batch_of_the_maximum_size_is_answered_in_full(stubs):
    response = await batch(stubs, [query(code="02")] * 10_000)

    assert len(response.results) == 10_000
    assert {r.translation.canonical_service for r in response.results} == {"UPS_2ND_DAY_AIR"}


async def test_batch_over_the_maximum_size_is_invalid_argument(stubs):
    error = await rpc_error(batch(stubs, [query()] * 10_001))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "queries holds 10001 items; at most 10000 are allowed"


async def test_expired_deadline_is_refused_without_an_answer(stubs):
    request = pb.BatchTranslateCodesRequest(tenant_id="acme", queries=[query()] * 10_000)

    error = await rpc_error(stubs.as_(ADMIN).BatchTranslateCodes(request, timeout=0.0001))

    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED


# ---- tenant mappings -----------------------------------------------------------------------


async def test_tenant_override_beats_the_default_and_other_tenants_keep_it(stubs):
    created = await stubs.as_(ACME_WRITER).CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping()))
    assert created.version > 0

    acme = await translate(stubs, tenant_id="acme", code="03")
    globex = await translate(stubs, tenant_id="globex", code="03")

    assert (acme.translation.code, acme.translation.name, acme.translation.tenant_override) == (
        "G1",
        "Acme Ground",
        True,
    )
    assert (globex.translation.code, globex.translation.tenant_override) == ("03", False)


async def test_tenant_alias_is_understood_and_the_code_is_answered(stubs):
    request = pb.CreateMappingRequest(
        tenant_id="acme",
        mapping=mapping(system="mintsoft", code="RM48", name="Royal Mail Tracked 48", carrier="Royal Mail",
                        canonical_carrier="ROYAL_MAIL_TRACKED", canonical_service="", aliases=["rm48"]),
    )  # fmt: skip
    await stubs.as_(ADMIN).CreateMapping(request)

    response = await translate(stubs, from_system="mintsoft", code="rm48", to_system="groupon")

    assert response.translation.code == "RYM"


async def test_creating_an_existing_mapping_is_already_exists(stubs):
    request = pb.CreateMappingRequest(tenant_id="acme", mapping=mapping())
    await stubs.as_(ADMIN).CreateMapping(request)

    error = await rpc_error(stubs.as_(ADMIN).CreateMapping(request))

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details() == "tenant 'acme' already maps vinoshipper code 'G1'; update it instead"


async def test_second_code_for_one_canonical_service_is_failed_precondition(stubs):
    await stubs.as_(ADMIN).CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping()))

    clash = pb.CreateMappingRequest(tenant_id="acme", mapping=mapping(code="G2"))
    error = await rpc_error(stubs.as_(ADMIN).CreateMapping(clash))

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "vinoshipper codes 'G1' and 'G2' both map to UPS_GROUND"


async def test_malformed_mapping_is_invalid_argument_naming_the_field(stubs):
    request = pb.CreateMappingRequest(tenant_id="acme", mapping=mapping(canonical_carrier="ups"))

    error = await rpc_error(stubs.as_(ADMIN).CreateMapping(request))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "canonical_carrier 'ups' must be upper-case letters, digits and _"


async def test_update_and_delete_change_what_translation_answers(stubs):
    admin = stubs.as_(ADMIN)
    await admin.CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping()))

    await admin.UpdateMapping(pb.UpdateMappingRequest(tenant_id="acme", mapping=mapping(name="Acme Grnd")))
    assert (await translate(stubs, code="03")).translation.name == "Acme Grnd"

    await admin.DeleteMapping(pb.DeleteMappingRequest(tenant_id="acme", system="vinoshipper", code="G1"))
    assert (await translate(stubs, code="03")).translation.code == "03"


async def test_updating_or_deleting_a_missing_mapping_is_not_found(stubs):
    admin = stubs.as_(ADMIN)
    update = await rpc_error(admin.UpdateMapping(pb.UpdateMappingRequest(tenant_id="acme", mapping=mapping())))
    delete = await rpc_error(
        admin.DeleteMapping(pb.DeleteMappingRequest(tenant_id="acme", system="vinoshipper", code="G1"))
    )

    assert (update.code(), delete.code()) == (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.NOT_FOUND)
    assert delete.details() == "tenant 'acme' has no mapping of vinoshipper code 'G1'"


async def test_list_mappings_pages_through_a_tenants_own_mappings(stubs):
    admin = stubs.as_(ADMIN)
    for n in range(5):
        service = f"UPS_SERVICE_{n}"
        await admin.CreateMapping(
            pb.CreateMappingRequest(tenant_id="acme", mapping=mapping(code=f"X{n}", canonical_service=service))
        )
    await admin.CreateMapping(pb.CreateMappingRequest(tenant_id="globex", mapping=mapping()))

    codes, token = [], ""
    while True:
        page = await admin.ListMappings(pb.ListMappingsRequest(tenant_id="acme", page_size=2, page_token=token))
        codes += [m.code for m in page.mappings]
        token = page.next_page_token
        if not token:
            break

    assert codes == ["X0", "X1", "X2", "X3", "X4"]


async def test_malformed_page_token_is_invalid_argument(stubs):
    request = pb.ListMappingsRequest(tenant_id="acme", page_token="not-a-token")

    error = await rpc_error(stubs.as_(ADMIN).ListMappings(request))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "page_token is malformed; pass next_page_token unchanged"


async def test_list_catalog_pages_through_a_systems_codes(stubs):
    codes, token = [], ""
    while True:
        request = pb.ListCatalogRequest(system="groupon", page_size=25, page_token=token)
        page = await stubs.as_(ACME_READER).ListCatalog(request)
        codes += [(e.code, list(e.aliases)) for e in page.entries]
        token = page.next_page_token
        if not token:
            break

    assert sorted(codes) == sorted((row["code"], [row["alias"]]) for row in GROUPON)


async def test_import_with_one_bad_row_changes_nothing_and_names_every_bad_row(stubs):
    admin = stubs.as_(ADMIN)
    rows = [
        pb.ImportRow(line=2, tenant_id="acme", mapping=mapping()),
        pb.ImportRow(line=3, tenant_id="acme", mapping=mapping(system="fedex", code="F1")),
        pb.ImportRow(line=4, tenant_id="acme", mapping=mapping(code="G9", canonical_service="UPS_NEXT_DAY_AIR")),
        pb.ImportRow(line=5, tenant_id="acme", mapping=mapping(code="G9", canonical_service="UPS_2ND_DAY_AIR")),
    ]

    error = await rpc_error(admin.ImportMappings(pb.ImportMappingsRequest(rows=rows)))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        f"2 bad row(s), nothing imported: line 3: unknown system 'fedex'; known: {SYSTEMS}; "
        "line 5: vinoshipper code 'G9' of tenant 'acme' is also on line 4"
    )
    listed = await admin.ListMappings(pb.ListMappingsRequest(tenant_id="acme"))
    assert list(listed.mappings) == []
    assert (await translate(stubs, code="03")).translation.code == "03"


async def test_import_clashing_with_a_stored_mapping_changes_nothing(stubs):
    admin = stubs.as_(ADMIN)
    await admin.CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping()))
    rows = [
        pb.ImportRow(line=2, tenant_id="acme", mapping=mapping(code="N1", canonical_service="UPS_NEXT_DAY_AIR")),
        pb.ImportRow(line=3, tenant_id="acme", mapping=mapping(code="G2")),
    ]

    error = await rpc_error(admin.ImportMappings(pb.ImportMappingsRequest(rows=rows)))

    assert error.details() == (
        "1 bad row(s), nothing imported: line 3: UPS_GROUND is already mapped by vinoshipper code 'G1' of tenant 'acme'"
    )
    listed = await admin.ListMappings(pb.ListMappingsRequest(tenant_id="acme"))
    assert [m.code for m in listed.mappings] == ["G1"]


async def test_import_creates_and_replaces_in_one_go(stubs):
    admin = stubs.as_(ADMIN)
    await admin.CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping()))
    rows = [
        pb.ImportRow(line=2, tenant_id="acme", mapping=mapping(name="Renamed")),
        pb.ImportRow(line=3, tenant_id="globex", mapping=mapping()),
    ]

    response = await admin.ImportMappings(pb.ImportMappingsRequest(rows=rows))

    assert (response.created, response.updated) == (1, 1)
    assert (await translate(stubs, code="03")).translation.name == "Renamed"


# ---- access control ------------------------------------------------------------------------


async def test_call_without_token_is_unauthenticated(stubs):
    error = await rpc_error(translate(stubs, token=None))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "missing bearer token: send metadata 'authorization: Bearer <token>'"


async def test_unknown_token_is_unauthenticated_without_echoing_it(stubs):
    error = await rpc_error(translate(stubs, token="guessed-secret"))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "guessed-secret" not in error.details()


async def test_translating_for_another_tenant_is_refused(stubs):
    error = await rpc_error(translate(stubs, tenant_id="globex", token=ACME_READER))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'acme-dispatch' is not granted tenant 'globex'"


async def test_reading_another_tenants_mappings_is_refused(stubs):
    calls = [
        stubs.as_(ACME_WRITER).ListMappings(pb.ListMappingsRequest(tenant_id="globex")),
        stubs.as_(ACME_WRITER).ListCatalog(pb.ListCatalogRequest(system="groupon", tenant_id="globex")),
        batch(stubs, [query()], tenant_id="globex", token=ACME_WRITER),
    ]
    for call in calls:
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "'globex'" in error.details()


async def test_changing_another_tenants_mappings_is_refused_and_changes_nothing(stubs):
    writer = stubs.as_(ACME_WRITER)
    create = await rpc_error(writer.CreateMapping(pb.CreateMappingRequest(tenant_id="globex", mapping=mapping())))
    rows = [pb.ImportRow(line=2, tenant_id="acme", mapping=mapping()), pb.ImportRow(line=3, tenant_id="globex")]
    imported = await rpc_error(writer.ImportMappings(pb.ImportMappingsRequest(rows=rows)))

    assert create.code() == imported.code() == grpc.StatusCode.PERMISSION_DENIED
    assert imported.details() == "caller 'acme-admin' may not write tenants 'globex'"
    assert list((await stubs.as_(ADMIN).ListMappings(pb.ListMappingsRequest(tenant_id="acme"))).mappings) == []


async def test_read_only_caller_may_not_write_its_own_tenant(stubs):
    request = pb.CreateMappingRequest(tenant_id="acme", mapping=mapping())

    error = await rpc_error(stubs.as_(ACME_READER).CreateMapping(request))

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'acme-dispatch' may read but not change mappings of tenant 'acme'"


JANE = "jane@acme.example via operator-console"  # acme's staff member, through the console


async def test_staff_acting_through_the_console_translate_for_their_own_tenant_only(stubs):
    jane = stubs.as_(CONSOLE, on_behalf_of("jane@acme.example", "acme"))
    request = pb.TranslateCodeRequest(tenant_id="acme", query=query())

    answer = await jane.TranslateCode(request)
    error = await rpc_error(jane.TranslateCode(pb.TranslateCodeRequest(tenant_id="globex", query=query())))

    assert answer.translation.name == "UPS Ground"
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == f"caller {JANE!r} is not granted tenant 'globex'"


async def test_staff_write_through_the_console_only_with_the_role_and_only_their_tenant(stubs):
    writer = stubs.as_(CONSOLE, on_behalf_of("jane@acme.example", "acme", ["write"]))
    reader = stubs.as_(CONSOLE, on_behalf_of("jane@acme.example", "acme"))
    rows = [pb.ImportRow(line=2, tenant_id="acme", mapping=mapping()), pb.ImportRow(line=3, tenant_id="globex")]

    created = await writer.CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping()))
    refused = await rpc_error(reader.CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping())))
    imported = await rpc_error(writer.ImportMappings(pb.ImportMappingsRequest(rows=rows)))

    assert created.mapping.code == "G1"
    assert refused.code() == imported.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details() == f"caller {JANE!r} may read but not change mappings of tenant 'acme'"
    assert imported.details() == f"caller {JANE!r} may not write tenants 'globex'"


async def test_a_caller_without_the_delegate_role_may_not_act_on_behalf_of_others(stubs):
    posing = stubs.as_(ACME_WRITER, on_behalf_of("jane@acme.example", "acme", ["write"]))
    rows = [pb.ImportRow(line=2, tenant_id="acme", mapping=mapping())]

    translated = await rpc_error(posing.TranslateCode(pb.TranslateCodeRequest(tenant_id="acme", query=query())))
    imported = await rpc_error(posing.ImportMappings(pb.ImportMappingsRequest(rows=rows)))

    assert translated.code() == imported.code() == grpc.StatusCode.PERMISSION_DENIED
    assert translated.details() == imported.details() == "caller 'acme-admin' may not act on behalf of others"


async def test_watching_another_tenant_is_refused(stubs):
    stream = stubs.as_(ACME_READER).WatchChanges(pb.WatchChangesRequest(tenant_ids=["globex"]))

    error = await rpc_error(stream.read())

    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- changes -------------------------------------------------------------------------------


async def test_watchers_hear_of_their_tenants_changes_only(stubs):
    stream = stubs.as_(ACME_READER).WatchChanges(pb.WatchChangesRequest(), timeout=10)
    first = await stream.read()
    assert first.resync

    await stubs.as_(ADMIN).CreateMapping(pb.CreateMappingRequest(tenant_id="globex", mapping=mapping()))
    created = await stubs.as_(ADMIN).CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mapping()))
    change = await asyncio.wait_for(stream.read(), 2)

    assert (change.tenant_id, change.version, change.resync) == ("acme", created.version, False)
    stream.cancel()


async def test_change_written_directly_in_postgres_is_picked_up_by_the_periodic_reload(service, stubs):
    conn = await asyncpg.connect(service.dsn, server_settings={"search_path": service.schema})
    try:
        await conn.execute(
            "INSERT INTO service_codes (system, tenant_id, code, name, carrier, canonical_carrier, canonical_service)"
            " VALUES ('vinoshipper', 'acme', 'G1', 'Acme Ground', 'UPS', 'UPS', 'UPS_GROUND')"
        )
    finally:
        await conn.close()

    await service.app.snapshot.refresh()  # what the periodic reload does

    assert (await translate(stubs, code="03")).translation.code == "G1"


async def test_failed_refresh_keeps_serving_the_last_table(service, stubs):
    conn = await asyncpg.connect(service.dsn, server_settings={"search_path": service.schema})
    try:
        await conn.execute("ALTER TABLE service_codes RENAME TO service_codes_away")
    finally:
        await conn.close()

    with pytest.raises(asyncpg.UndefinedTableError):
        await service.app.snapshot.refresh()

    assert (await translate(stubs, code="12")).translation.name == "UPS 3 Day Select"


async def test_stopping_ends_the_background_tasks_and_is_safe_twice(service):
    await service.app.stop()
    await service.app.stop()

    names = {task.get_name() for task in asyncio.all_tasks()}
    assert not names & {"carrier-mapping-refresh", "carrier-mapping-listen"}


# ---- platform ------------------------------------------------------------------------------


async def test_health_and_reflection_answer_without_a_token(service):
    async with grpc.aio.insecure_channel(service.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "ordersync.carriers.v1.CarrierMappingService"):
            response = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for answer in reflection.ServerReflectionInfo(iter([request]), timeout=5):
            names = {s.name for s in answer.list_services_response.service}
            assert "ordersync.carriers.v1.CarrierMappingService" in names
