"""The rate calculator in the running system: fulfillment dispatch, as a process, quotes through
the ShipStation simulator with the tenant's markup from the tenants file, and writes the chosen
freight onto an order in the Cin7 simulator; the CLI prints the quotes. No route or store
connection is used: the rate calculator stands alone."""

from __future__ import annotations

import asyncio
import os
import sys

import grpc
import pytest
import pytest_asyncio
from google.protobuf.json_format import MessageToJson
from ordersync.dispatch.v1 import rates_service_pb2 as pb
from ordersync.dispatch.v1 import rates_service_pb2_grpc as pb_grpc

from libs.connectors.shipstation.tests.builders import valid_order
from libs.platform.testing import authorized
from tests.system.stack import LABELS, OMNI, READER, REPO, Stack, TenantSpec

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]
TENANT = "rates-cellar"
SHIPSTATION = {"rate_markup_percent": "12.5", "rate_carriers": "ups", "from_postal_code": "95476"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(infra, tmp_path_factory):
    spec = TenantSpec.cin7_shipstation(TENANT, shipstation=SHIPSTATION)
    run_dir = tmp_path_factory.mktemp("stack")
    async with Stack([spec], run_dir=run_dir, pg_dsn=infra.pg_dsn, kafka_bootstrap=infra.kafka_bootstrap) as stack:
        yield stack


def stub(stack: Stack, caller: str):
    channel = grpc.aio.insecure_channel(stack.grpc_address("fulfillment_dispatch"))
    return channel, authorized(pb_grpc.RateQuoteServiceStub(channel), stack.token(caller))


async def test_dispatch_quotes_with_the_tenants_markup_and_writes_the_chosen_freight_to_cin7(stack):
    username = stack.tenants[TENANT].account(OMNI)["username"]
    cin7 = stack.sim_urls["cin7"]
    seeded = await stack.http.post(
        f"{cin7}/_sim/accounts/{username}/orders", json={"orders": [{"reference": "SO-77", "stage": "New"}]}
    )
    seeded.raise_for_status()
    order_id = seeded.json()["orders"][0]["id"]
    channel, rates = stub(stack, stack.operator(TENANT))
    try:
        answer = await rates.QuoteRates(pb.QuoteRatesRequest(tenant_id=TENANT, inline_order=valid_order()))
        ground = next(q for q in answer.quotes if q.service_code == "ups_ground")
        written = await rates.WriteFreight(
            pb.WriteFreightRequest(
                tenant_id=TENANT,
                channel_account=OMNI,
                channel_order_id=str(order_id),
                total=ground.total,
                service_name=ground.service_name,
            )
        )
    finally:
        await channel.close()

    assert answer.provider_account == LABELS and answer.markup_percent == "12.5"
    # 2.8 kg by UPS Ground: 24.13 + fuel 0.301625, plus 12.5 % = 27.485578125 -> 27.49
    assert (ground.base_amount.value, ground.markup_amount.value, ground.total.minor_units) == (
        "24.431625",
        "3.053953125",
        2749,
    )
    assert written.written
    stored = (await stack.http.get(f"{cin7}/_sim/accounts/{username}/orders/{order_id}")).json()
    assert (stored["freightTotal"], stored["freightDescription"]) == (27.49, "UPS® Ground")


async def test_an_unknown_tenant_is_not_found_and_the_cli_prints_the_quotes(stack, tmp_path):
    channel, rates = stub(stack, READER)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rates.QuoteRates(pb.QuoteRatesRequest(tenant_id="nobody", inline_order=valid_order()))
    finally:
        await channel.close()
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND

    order_file = tmp_path / "order.json"
    order_file.write_text(MessageToJson(valid_order()))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fulfillment_dispatch.cli",
        "--addr",
        stack.grpc_address("fulfillment_dispatch"),
        "--tenant",
        TENANT,
        "quote",
        "--order-file",
        str(order_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "ORDERSYNC_ADMIN_TOKEN": stack.token(READER)},
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert f"quotes from {LABELS}, markup 12.5%:" in text
    assert "ups_ground" in text and "total 27.49 USD" in text and "total 49.66 USD" in text
