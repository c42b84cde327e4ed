"""Unit tests of the pure translation domain: canonical hub, override precedence, error messages."""

import pytest

from carrier_mapping.domain.translate import (
    GLOBAL_TENANT,
    CodeTable,
    InvalidQuery,
    NoMapping,
    ServiceCode,
)

pytestmark = pytest.mark.asyncio

# Vinoshipper's UPS shipper codes as its documentation lists them (title, carrier, code).
VINOSHIPPER_UPS = [
    ("01", "UPS Next Day Air", "UPS_NEXT_DAY_AIR"),
    ("02", "UPS 2nd Day Air", "UPS_2ND_DAY_AIR"),
    ("03", "UPS Ground", "UPS_GROUND"),
    ("12", "UPS 3 Day Select", "UPS_3_DAY_SELECT"),
]


def code(system, code, service, *, tenant=GLOBAL_TENANT, name="", carrier="UPS"):
    return ServiceCode(system, tenant, code, name or code, carrier, "UPS", service)


def table(*extra: ServiceCode, systems=("commerce7", "vinoshipper", "shipstation")) -> CodeTable:
    """The valid table every test starts from: both seeded systems with the documented codes,
    plus a ShipStation with a differently spelt ground code and nothing else."""
    seeded = ("commerce7", "vinoshipper")
    rows = [code(s, c, svc, name=n) for s in seeded for c, n, svc in VINOSHIPPER_UPS]
    rows.append(code("shipstation", "ups_ground", "UPS_GROUND", name="UPS® Ground"))
    return CodeTable(systems, [*rows, *extra])


async def test_commerce7_ground_translates_to_vinoshipper_ground():
    found = table().translate("acme", "commerce7", "03", "vinoshipper")

    assert (found.code.system, found.code.code) == ("vinoshipper", "03")
    assert found.code.name == "UPS Ground"
    assert (found.code.canonical_carrier, found.code.canonical_service) == ("UPS", "UPS_GROUND")
    assert found.tenant_override is False


async def test_translation_goes_through_the_canonical_service_not_the_code_text():
    found = table().translate("acme", "shipstation", "ups_ground", "vinoshipper")

    assert found.code.code == "03"


async def test_each_documented_code_round_trips_between_the_seeded_systems():
    codes = table()
    for vinoshipper_code, _, _ in VINOSHIPPER_UPS:
        there = codes.translate("acme", "commerce7", vinoshipper_code, "vinoshipper").code.code
        back = codes.translate("acme", "vinoshipper", there, "commerce7").code.code
        assert there == back == vinoshipper_code


async def test_tenant_override_of_the_source_code_wins_over_the_default():
    override = code("commerce7", "03", "UPS_2ND_DAY_AIR", tenant="acme")

    found = table(override).translate("acme", "commerce7", "03", "vinoshipper")

    assert found.code.code == "02"
    assert found.tenant_override is True


async def test_tenant_override_of_the_target_code_wins_over_the_default():
    override = code("vinoshipper", "G1", "UPS_GROUND", tenant="acme")

    found = table(override).translate("acme", "commerce7", "03", "vinoshipper")

    assert (found.code.code, found.code.tenant_id, found.tenant_override) == ("G1", "acme", True)


async def test_other_tenants_keep_the_default():
    override = code("vinoshipper", "G1", "UPS_GROUND", tenant="acme")

    found = table(override).translate("globex", "commerce7", "03", "vinoshipper")

    assert (found.code.code, found.tenant_override) == ("03", False)


async def test_unmapped_code_names_tenant_systems_and_code():
    with pytest.raises(NoMapping) as raised:
        table().translate("acme", "commerce7", "99", "vinoshipper")

    expected = "no mapping for commerce7 code '99' to vinoshipper for tenant 'acme'"
    assert str(raised.value) == expected


async def test_codes_are_exact_and_case_sensitive():
    with pytest.raises(NoMapping):
        table().translate("acme", "shipstation", "UPS_GROUND", "vinoshipper")


async def test_target_without_the_canonical_service_is_no_mapping_naming_it():
    with pytest.raises(NoMapping) as raised:
        table().translate("acme", "commerce7", "01", "shipstation")

    assert str(raised.value) == (
        "no mapping for commerce7 code '01' to shipstation for tenant 'acme': "
        "shipstation has no code for UPS_NEXT_DAY_AIR"
    )


async def test_unknown_system_is_invalid_and_lists_the_known_ones():
    with pytest.raises(InvalidQuery) as raised:
        table().translate("acme", "commerce7", "03", "fedexx")

    expected = "unknown system 'fedexx'; known: commerce7, shipstation, vinoshipper"
    assert str(raised.value) == expected


@pytest.mark.parametrize("field", ["tenant_id", "from_system", "code", "to_system"])
async def test_empty_field_is_invalid_and_named(field):
    query = dict(tenant_id="acme", from_system="commerce7", code="03", to_system="vinoshipper")
    query[field] = ""

    with pytest.raises(InvalidQuery) as raised:
        table().translate(**query)

    assert str(raised.value) == f"{field} is required"


async def test_table_rejects_a_code_of_an_unknown_system():
    with pytest.raises(ValueError, match="unknown system 'groupon'"):
        table(code("groupon", "UPS", "UPS_GROUND"))


async def test_table_rejects_two_codes_for_one_canonical_service():
    with pytest.raises(ValueError, match="both map to UPS_GROUND"):
        table(code("vinoshipper", "03b", "UPS_GROUND"))
