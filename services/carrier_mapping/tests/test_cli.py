"""The operator CLI against the real service: import is all or nothing, export round-trips."""

import io

import grpc
import pytest
from ordersync.carriers.v1 import carriers_service_pb2 as pb

from carrier_mapping.cli import run
from carrier_mapping.testing import ACME_WRITER, ADMIN

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

HEADER = "tenant_id,system,code,name,carrier,canonical_carrier,canonical_service,aliases\n"
GOOD = [
    "acme,vinoshipper,G1,Acme Ground,UPS,UPS,UPS_GROUND,\n",
    "acme,mintsoft,RM48,Royal Mail Tracked 48,Royal Mail,ROYAL_MAIL_TRACKED,,rm48|Rm48\n",
]


async def cli(service, monkeypatch, *args, token=ADMIN) -> tuple[int, str, str]:
    monkeypatch.setenv("TEST_MAPPING_TOKEN", token)
    out, err = io.StringIO(), io.StringIO()
    status = await run(["--addr", service.address, "--token-env", "TEST_MAPPING_TOKEN", *args], out, err)
    return status, out.getvalue(), err.getvalue()


async def stored(stubs, tenant_id="acme") -> list[str]:
    response = await stubs.as_(ADMIN).ListMappings(pb.ListMappingsRequest(tenant_id=tenant_id))
    return [m.code for m in response.mappings]


async def test_csv_with_one_bad_row_changes_nothing_and_names_the_row(service, stubs, monkeypatch, tmp_path):
    bad = "acme,vinoshipper,N1,Next Day,UPS,ups,UPS_NEXT_DAY_AIR,\n"
    path = tmp_path / "mappings.csv"
    path.write_text(HEADER + GOOD[0] + bad + GOOD[1])

    status, _, err = await cli(service, monkeypatch, "import", str(path))

    assert status == 1
    assert err == (
        "error: INVALID_ARGUMENT: 1 bad row(s), nothing imported: "
        "line 3: canonical_carrier 'ups' must be upper-case letters, digits and _\n"
    )
    assert await stored(stubs) == []


async def test_csv_with_a_short_row_is_refused_before_calling(service, stubs, monkeypatch, tmp_path):
    path = tmp_path / "mappings.csv"
    path.write_text(HEADER + GOOD[0] + "acme,vinoshipper,N1\n")

    status, _, err = await cli(service, monkeypatch, "import", str(path))

    assert (status, err) == (2, "error: line 3: expected 8 fields\n")
    assert await stored(stubs) == []


async def test_import_then_export_round_trips(service, stubs, monkeypatch, tmp_path):
    path = tmp_path / "mappings.csv"
    path.write_text(HEADER + "".join(GOOD))

    imported = await cli(service, monkeypatch, "import", str(path))
    status, exported, _ = await cli(service, monkeypatch, "export", "acme")

    assert imported[0] == 0 and "2 created, 0 updated" in imported[1]
    assert status == 0
    assert sorted(exported.splitlines()[1:]) == sorted(line.rstrip("\n") for line in GOOD)
    (tmp_path / "again.csv").write_text(exported)
    again = await cli(service, monkeypatch, "import", str(tmp_path / "again.csv"))
    assert "0 created, 2 updated" in again[1]


async def test_add_list_and_remove(service, stubs, monkeypatch):
    added = await cli(service, monkeypatch, "add", "acme", "groupon", "RM", "Royal Mail", "Royal Mail",
                      "ROYAL_MAIL_TRACKED", "--alias", "rm")  # fmt: skip
    listed = await cli(service, monkeypatch, "list", "acme")
    removed = await cli(service, monkeypatch, "remove", "acme", "groupon", "RM")

    assert added[0] == listed[0] == removed[0] == 0
    assert "acme\tgroupon\tRM (also rm)\tRoyal Mail\t-> ROYAL_MAIL_TRACKED/*" in listed[1]
    assert await stored(stubs) == []


async def test_another_tenant_is_refused_by_the_service(service, monkeypatch):
    status, _, err = await cli(service, monkeypatch, "export", "globex", token=ACME_WRITER)

    assert status == 1
    assert (
        err == f"error: {grpc.StatusCode.PERMISSION_DENIED.name}: caller 'acme-admin' is not granted tenant 'globex'\n"
    )
