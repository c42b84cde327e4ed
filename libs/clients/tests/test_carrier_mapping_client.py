"""The carrier-mapping client against the real service on a real Postgres: cache, invalidation,
retries and errors."""

import asyncio
import socket
import time

import grpc
import pytest
import pytest_asyncio
from ordersync.carriers.v1 import carriers_service_pb2 as pb

from carrier_mapping.testing import ACME_READER, ADMIN, CALLERS, Stubs, running_service
from libs.clients.carrier_mapping import CarrierMappingClient, CarrierMappingUnavailable, CodeQuery

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

GROUND = CodeQuery("commerce7", "03", "vinoshipper")
# Long on purpose: an update must reach the cache through the change stream, not a reload.
REFRESH_S = 30.0


@pytest_asyncio.fixture
async def service(infra):
    async with running_service(infra.pg_dsn, CALLERS, refresh_s=REFRESH_S) as running:
        yield running


@pytest_asyncio.fixture
async def admin(service):
    async with grpc.aio.insecure_channel(service.address) as channel:
        yield Stubs(channel).as_(ADMIN)


@pytest_asyncio.fixture
async def client(service):
    async with CarrierMappingClient(service.address, token=ACME_READER) as client:
        await asyncio.wait_for(client.synced.wait(), 5)
        yield client


def acme_ground(name: str) -> pb.Mapping:
    return pb.Mapping(system="vinoshipper", code="G1", name=name, carrier="UPS",
                      canonical_carrier="UPS", canonical_service="UPS_GROUND")  # fmt: skip


async def test_translate_many_answers_each_query_with_its_translation_or_error(client):
    missing = CodeQuery("commerce7", "99", "vinoshipper")

    answers = await client.translate_many("acme", {GROUND, missing})

    assert (answers[GROUND].found, answers[GROUND].code, answers[GROUND].name) == (True, "03", "UPS Ground")
    assert answers[missing].found is False
    assert answers[missing].status == "NOT_FOUND"
    assert answers[missing].error == "no mapping for commerce7 code '99' to vinoshipper for tenant 'acme'"


async def test_translate_one_writes_back_a_vinoshipper_service_to_commerce7(client):
    answer = await client.translate_one("acme", "vinoshipper", "12", "commerce7")

    assert (answer.code, answer.name, answer.canonical_service) == ("12", "UPS 3 Day Select", "UPS_3_DAY_SELECT")


async def test_an_update_reaches_the_clients_cache_within_one_second(client, admin):
    assert (await client.translate_one("acme", *_fields(GROUND))).code == "03"  # now cached
    await admin.CreateMapping(pb.CreateMappingRequest(tenant_id="acme", mapping=acme_ground("Acme Ground")))
    changed_at = time.monotonic()

    seen = await _poll_until(client, lambda answer: answer.code == "G1", within_s=1.0)
    assert seen, "the client still answered the old code one second after the change"

    await admin.UpdateMapping(pb.UpdateMappingRequest(tenant_id="acme", mapping=acme_ground("Renamed")))
    assert await _poll_until(client, lambda answer: answer.name == "Renamed", within_s=1.0)
    assert time.monotonic() - changed_at < 3


async def test_repeated_questions_are_answered_from_the_cache(client, monkeypatch):
    await client.translate_one("acme", *_fields(GROUND))

    async def no_calls(*args):
        raise AssertionError("the client called the service for a cached answer")

    monkeypatch.setattr(client, "_fetch", no_calls)

    assert (await client.translate_one("acme", *_fields(GROUND))).code == "03"


async def test_another_tenant_is_refused(client):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.translate_one("globex", *_fields(GROUND))

    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == "caller 'acme-dispatch' is not granted tenant 'globex'"


async def test_bad_token_is_unauthenticated(service):
    async with CarrierMappingClient(service.address, token="wrong", watch=False) as client:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.translate_one("acme", *_fields(GROUND))

    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_unreachable_service_is_retried_then_unavailable():
    address = f"127.0.0.1:{free_port()}"
    async with CarrierMappingClient(address, token=ACME_READER, timeout_s=0.5, attempts=3) as client:
        started = time.monotonic()
        with pytest.raises(CarrierMappingUnavailable, match="unavailable after 3 attempts"):
            await client.translate_many("acme", {GROUND})

    assert time.monotonic() - started >= 0.3  # two backoffs: 0.1 s + 0.2 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fields(query: CodeQuery) -> tuple[str, str, str]:
    return query.from_system, query.code, query.to_system


async def _poll_until(client: CarrierMappingClient, accept, *, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if accept(await client.translate_one("acme", *_fields(GROUND))):
            return True
        await asyncio.sleep(0.02)
    return False
