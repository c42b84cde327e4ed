"""The seeded ShipStation and Cin7 codes, through the real service on a real Postgres over gRPC.

ShipStation labels name a v1 carrierCode and serviceCode; Cin7 Omni is written one free-text
logisticsCarrier holding carrier and service ("UPS Ground"). Expected values are spelled out as
ShipStation's list-services codes and the texts a Cin7 user reads.
"""

import grpc
import pytest
from ordersync.carriers.v1 import carriers_service_pb2 as pb

from carrier_mapping.testing import ACME_WRITER, ADMIN

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]


def query(code: str, from_system: str = "shipstation", to_system: str = "cin7") -> pb.CodeQuery:
    return pb.CodeQuery(from_system=from_system, code=code, to_system=to_system)


async def answers(stubs, *queries: pb.CodeQuery, tenant_id: str = "acme") -> list[tuple[str, str]]:
    request = pb.BatchTranslateCodesRequest(tenant_id=tenant_id, queries=queries)
    response = await stubs.as_(ADMIN).BatchTranslateCodes(request)
    assert all(r.status == pb.TRANSLATION_STATUS_OK for r in response.results), response
    return [(r.translation.code, r.translation.carrier) for r in response.results]


async def test_each_shipstation_service_gives_cin7_its_logistics_carrier_text(stubs):
    codes = ["usps_first_class_mail", "usps_priority_mail", "ups_ground", "ups_2nd_day_air", "fedex_ground"]
    assert await answers(stubs, *(query(c) for c in codes)) == [
        ("USPS First Class Mail", "USPS First Class Mail"),
        ("USPS Priority Mail", "USPS Priority Mail"),
        ("UPS Ground", "UPS Ground"),
        ("UPS 2nd Day Air", "UPS 2nd Day Air"),
        ("FedEx Ground", "FedEx Ground"),
    ]


async def test_a_shipstation_carrier_code_alone_gives_cin7_the_carrier(stubs):
    codes = ["stamps_com", "ups", "fedex", "dhl_express", "USPS"]
    assert await answers(stubs, *(query(c) for c in codes)) == [
        ("USPS", "USPS"),
        ("UPS", "UPS"),
        ("FedEx", "FedEx"),
        ("DHL", "DHL"),
        ("USPS", "USPS"),
    ]


async def test_shipstation_services_meet_the_ups_codes_commerce7_and_vinoshipper_share(stubs):
    assert await answers(stubs, query("ups_ground", to_system="vinoshipper")) == [("03", "UPS")]
    # Into ShipStation: the serviceCode and the carrierCode it is bought with.
    assert await answers(stubs, query("01", from_system="commerce7", to_system="shipstation")) == [
        ("ups_next_day_air", "ups")
    ]


async def test_a_tenants_own_cin7_carrier_text_wins_over_the_seeded_one(stubs):
    mine = pb.Mapping(
        system="cin7",
        code="UPS Ground (account 4411)",
        name="UPS Ground (account 4411)",
        carrier="UPS Ground (account 4411)",
        canonical_carrier="UPS",
        canonical_service="UPS_GROUND",
    )
    await stubs.as_(ACME_WRITER).CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=mine))
    assert await answers(stubs, query("ups_ground")) == [("UPS Ground (account 4411)", "UPS Ground (account 4411)")]
    assert await answers(stubs, query("ups_ground"), tenant_id="globex") == [("UPS Ground", "UPS Ground")]


async def test_a_service_cin7_has_no_text_for_is_not_found(stubs):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stubs.as_(ADMIN).TranslateCode(pb.TranslateCodeRequest(tenant_id="acme", query=query("ontrac_ground")))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
