"""The rate calculator over real gRPC, with the ShipStation and Cin7 simulators and real Postgres:
quotes with the tenant's markup rounded half up, callers checked per tenant, every refusal and
vendor failure as its own status code, the chosen freight written onto the Cin7 order, and the
CLI printing the quotes.

Expected prices come from the simulator's documented tariff (tests/simulators/shipstation: base
+ per 100 g, UPS fuel 1.25 % as otherCost), worked out by hand for the 2.8 kg order below.
"""

from __future__ import annotations

import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from ordersync.common.v1 import money_pb2
from ordersync.dispatch.v1 import rates_service_pb2 as pb
from ordersync.dispatch.v1 import rates_service_pb2_grpc as pb_grpc

from fulfillment_dispatch.api.rates import rate_quote_binding
from fulfillment_dispatch.storage.dispatches import NewDispatch, activity_of, enqueue
from libs.connectors.base.contract import ClientResources
from libs.connectors.cin7.settings import Cin7Settings
from libs.connectors.registry import default_registry
from libs.connectors.shipstation.connector import ShipStationAccount
from libs.connectors.shipstation.settings import ShipStationSettings
from libs.connectors.shipstation.tests.builders import valid_order
from libs.platform.accounts import AccountClients
from libs.platform.auth import bearer
from libs.platform.grpc_server import GrpcServer, insecure_channel
from libs.platform.tenants import Account, Tenant, TenantDirectory
from libs.platform.testing import ACME_OPERATOR, ACME_READER, ALL_READER, GLOBEX_OPERATOR, access_for_tests
from tests.simulators.cin7 import STATE_KEY as CIN7_STATE
from tests.simulators.cin7 import Cin7Account, Cin7Config
from tests.simulators.cin7 import create_app as cin7_app
from tests.simulators.common import SimulatorServer
from tests.simulators.shipstation import STATE_KEY as SHIPSTATION_STATE
from tests.simulators.shipstation import ShipStationAccount as SimulatedShipStationAccount
from tests.simulators.shipstation import ShipStationConfig
from tests.simulators.shipstation import create_app as shipstation_app

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]
REPO = Path(__file__).resolve().parents[3]
CIN7_USER, CIN7_KEY = "harbour-api", "k3y-value"
ORDER_ID = "ord_rates1"
ORDER = valid_order()
INLINE: dict[str, Any] = {"tenant_id": "acme", "inline_order": ORDER, "carriers": ["ups"]}
# 2 x 1400 g. UPS Ground: 9.85 + 0.51 * 28 = 24.13, fuel 0.301625 -> 24.431625; 12.5 % markup
# 3.053953125; total 27.485578125 -> 27.49. 2nd Day Air: 18.40 + 0.90 * 28 = 43.60, fuel 0.545
# -> 44.145; markup 5.518125; total 49.663125 -> 49.66.
UPS_QUOTES = [
    ("UPS", "ups", "ups_ground", "UPS® Ground", "24.431625", "3.053953125", 2749),
    ("UPS", "ups", "ups_2nd_day_air", "UPS 2nd Day Air®", "44.145", "5.518125", 4966),
]


class World:
    """The simulators, the gRPC stub, and what the tests look at afterwards."""

    def __init__(self, shipstation: SimulatorServer, cin7: SimulatorServer, stub, channel_address: str, pool):
        self.shipstation = shipstation
        self.cin7 = cin7
        self.stub = stub
        self.address = channel_address
        self.pool = pool
        self.cin7_order_id = 0

    def cin7_order(self) -> dict:
        return self.cin7.app[CIN7_STATE].orders_of(CIN7_USER)[self.cin7_order_id]

    async def fault(self, server: SimulatorServer, route: str, status: int) -> None:
        """Fail the route's next four requests: every attempt the client makes."""
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{server.base_url}/_sim/faults", json={"route": route, "status": status, "count": 4}
            )
            answer.raise_for_status()


def shipstation_account(
    base_url: str, *, secret: str = "ss-secret", carriers=("stamps_com", "ups")
) -> ShipStationAccount:
    api = ShipStationSettings("ss-key", secret, base_url=base_url, requests_per_minute=6000)
    return ShipStationAccount(
        api,
        "hook-token",
        rate_carriers=carriers,
        from_postal_code="95476",
        rate_markup_percent=Decimal("12.5"),
    )


def directory(ss_url: str, cin7_url: str) -> TenantDirectory:
    """acme: one ShipStation account (12.5 % markup) and a Cin7 account. globex: two ShipStation
    accounts, one quoting with a carrier ShipStation has not connected, one with a wrong secret."""
    cin7 = Cin7Settings(CIN7_USER, CIN7_KEY, base_url=f"{cin7_url}/api", rate_limit_per_minute=6000)
    acme = {
        "ship": Account("ship", "shipstation", shipstation_account(ss_url)),
        "cin7": Account("cin7", "cin7", cin7),
    }
    globex = {
        "ship-dhl": Account("ship-dhl", "shipstation", shipstation_account(ss_url, carriers=("dhl_express",))),
        "ship-bad": Account("ship-bad", "shipstation", shipstation_account(ss_url, secret="wrong")),
    }
    return TenantDirectory({"acme": Tenant("acme", acme), "globex": Tenant("globex", globex)})


@pytest_asyncio.fixture
async def world(pool):
    ss_config = ShipStationConfig(
        accounts=[SimulatedShipStationAccount("acme.ship", "ss-key", "ss-secret")],
        rate_limit_per_minute=6000,
    )
    shipstation = await SimulatorServer(shipstation_app(ss_config)).start()
    cin7 = await SimulatorServer(
        cin7_app(Cin7Config(accounts=[Cin7Account(CIN7_USER, CIN7_KEY)], rate_limit_per_minute=6000))
    ).start()
    accounts = AccountClients(
        directory(shipstation.base_url, cin7.base_url), default_registry(), ClientResources(max_concurrency=4)
    )
    await accounts.start()
    server = GrpcServer([rate_quote_binding(pool, accounts, access_for_tests())], host="127.0.0.1", port=0)
    await server.start()
    address = f"127.0.0.1:{server.port}"
    try:
        async with insecure_channel(address) as channel:
            built = World(shipstation, cin7, pb_grpc.RateQuoteServiceStub(channel), address, pool)
            built.cin7_order_id = await routed_order(pool, cin7)
            yield built
    finally:
        await server.stop(0)
        await accounts.stop()
        await cin7.stop()
        await shipstation.stop()


async def routed_order(pool, cin7: SimulatorServer, order_id: str = ORDER_ID, channel_account: str = "cin7") -> int:
    """A Cin7 order in the simulator, and dispatch's record of it as routed to acme's 'ship'."""
    seeded = cin7.app[CIN7_STATE].seed(CIN7_USER, {"reference": "SO-1", "stage": "Fully Picked", "currencyCode": "USD"})
    row = NewDispatch(
        order_id=order_id,
        tenant_id="acme",
        provider="shipstation",
        provider_order_number=f"SO-{order_id}",
        order_proto=valid_order("SO-1").SerializeToString(),
        channel="cin7",
        external_id=str(seeded["id"]),
        external_number="SO-1",
        traceparent="",
        provider_account="ship",
        channel_account=channel_account,
    )
    async with pool.acquire() as conn:
        await enqueue(conn, [row])
    return seeded["id"]


def quotes_of(answer: pb.QuoteRatesResponse) -> list[tuple]:
    return [
        (
            q.carrier,
            q.carrier_code,
            q.service_code,
            q.service_name,
            q.base_amount.value,
            q.markup_amount.value,
            q.total.minor_units,
        )
        for q in answer.quotes
    ]


async def refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


def quote(world: World, token: str | None = ACME_READER, **fields):
    return world.stub.QuoteRates(pb.QuoteRatesRequest(**(INLINE | fields)), metadata=bearer(token), timeout=30)


def freight(world: World, token: str | None = ACME_OPERATOR, **fields):
    values: dict[str, Any] = {
        "tenant_id": "acme",
        "order_id": ORDER_ID,
        "total": money_pb2.Money(currency_code="USD", minor_units=2749),
        "service_name": "UPS® Ground",
    }
    return world.stub.WriteFreight(pb.WriteFreightRequest(**(values | fields)), metadata=bearer(token), timeout=30)


# ---- quotes


async def test_quotes_carry_the_exact_price_the_markup_on_it_and_the_total_rounded_half_up(world):
    answer = await quote(world)

    assert answer.provider_account == "ship" and answer.markup_percent == "12.5"
    assert quotes_of(answer) == UPS_QUOTES
    currencies = {
        (q.base_amount.currency_code, q.markup_amount.currency_code, q.total.currency_code) for q in answer.quotes
    }
    assert currencies == {("USD", "USD", "USD")}


async def test_a_half_cent_rounds_up_where_a_float_rounds_down(world):
    # USPS First Class: 3.20 + 0.35 * 28 = 13.00, markup 1.625, total 14.625 exactly -> 14.63.
    # round(13.0 * 1.125, 2) is 14.62 in floats (half to even); the API says 14.63.
    answer = await quote(world, carriers=["stamps_com"])
    first_class = next(q for q in answer.quotes if q.service_code == "usps_first_class_mail")
    assert round(13.0 * 1.125, 2) == 14.62
    assert (Decimal(first_class.base_amount.value), first_class.markup_amount.value) == (Decimal(13), "1.625")
    assert first_class.total.minor_units == 1463


async def test_an_order_dispatch_knows_is_quoted_by_its_id_with_every_carrier_of_the_only_account(world):
    answer = await world.stub.QuoteRates(
        pb.QuoteRatesRequest(tenant_id="acme", order_id=ORDER_ID), metadata=bearer(ACME_READER), timeout=30
    )
    assert answer.provider_account == "ship"
    assert [q.service_code for q in answer.quotes] == [
        "usps_first_class_mail",
        "usps_priority_mail",
        "ups_ground",
        "ups_2nd_day_air",
    ]
    assert quotes_of(answer)[2:] == UPS_QUOTES


# ---- who may call


@pytest.mark.parametrize("rpc", ["QuoteRates", "WriteFreight"])
async def test_a_call_without_a_known_token_is_unauthenticated(world, rpc):
    for token in (None, "guessed-token"):
        call = quote(world, token) if rpc == "QuoteRates" else freight(world, token)
        error = await refusal(call)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "guessed-token" not in error.details()
    assert "freightTotal" not in world.cin7_order()


@pytest.mark.parametrize("rpc", ["QuoteRates", "WriteFreight"])
async def test_another_tenants_caller_is_refused_naming_the_tenant(world, rpc):
    call = quote(world, GLOBEX_OPERATOR) if rpc == "QuoteRates" else freight(world, GLOBEX_OPERATOR)
    error = await refusal(call)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'ops@globex.example' is not granted tenant 'acme'"
    assert world.shipstation.app[SHIPSTATION_STATE].stats.requests["getrates"] == 0


async def test_a_reader_of_the_tenant_may_quote_but_not_write_freight(world):
    assert (await quote(world, ACME_READER)).quotes
    error = await refusal(freight(world, ACME_READER))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.details() == "caller 'acme-viewer' may read but not act on orders of tenant 'acme'"
    assert "freightTotal" not in world.cin7_order()


# ---- refusals of the request


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        (
            {"tenant_id": "acme", "provider_account": "nope", "inline_order": ORDER},
            grpc.StatusCode.NOT_FOUND,
            "tenant 'acme' has no account 'nope'",
        ),
        (
            {"tenant_id": "acme", "order_id": "ord_unknown"},
            grpc.StatusCode.NOT_FOUND,
            "order 'ord_unknown' of tenant 'acme' is not known to dispatch",
        ),
        (
            {"tenant_id": "nobody", "inline_order": ORDER},
            grpc.StatusCode.NOT_FOUND,
            "tenant 'nobody' is not configured",
        ),
        ({"tenant_id": "acme"}, grpc.StatusCode.INVALID_ARGUMENT, "give order_id or inline_order"),
        (
            {"tenant_id": "acme", "inline_order": ORDER, "carriers": ["dhl_express"]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST: shipstation getrates: carrier(s) dhl_express are not among the account's rate_carriers",
        ),
        ({"tenant_id": "acme", "inline_order": ORDER, "carriers": [""]}, grpc.StatusCode.INVALID_ARGUMENT, "carriers"),
        (
            {"tenant_id": "acme", "provider_account": "cin7", "inline_order": ORDER},
            grpc.StatusCode.FAILED_PRECONDITION,
            "account 'cin7' (cin7) cannot quote rates",
        ),
        (
            {"tenant_id": "globex", "inline_order": ORDER},
            grpc.StatusCode.FAILED_PRECONDITION,
            "tenant 'globex' has 2 accounts that can quote rates ('ship-dhl', 'ship-bad'): name one",
        ),
    ],
)
async def test_a_request_that_cannot_be_quoted_is_refused_with_its_own_code(world, fields, code, words):
    request = pb.QuoteRatesRequest(**fields)
    error = await refusal(world.stub.QuoteRates(request, metadata=bearer(ALL_READER), timeout=30))
    assert error.code() == code and words in error.details()
    assert world.shipstation.app[SHIPSTATION_STATE].stats.requests["getrates"] == 0


async def test_an_order_without_weight_is_an_invalid_argument_before_any_request(world):
    order = valid_order()
    for line in order.lines:
        line.weight_grams = 0
    error = await refusal(quote(world, inline_order=order))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "no weight" in error.details()


# ---- the provider's failures


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [
        (429, grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED: "),
        (500, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE: "),
        (503, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE: "),
    ],
)
async def test_a_provider_that_throttles_or_fails_past_every_retry_maps_to_a_retryable_code(world, fault, code, reason):
    await world.fault(world.shipstation, "getrates", fault)
    error = await refusal(quote(world))
    assert error.code() == code and error.details().startswith(reason)
    assert (await quote(world)).quotes  # the next call goes through: retrying helps


async def test_a_carrier_shipstation_has_not_connected_is_the_accounts_state_not_the_argument(world):
    request = {"tenant_id": "globex", "provider_account": "ship-dhl", "carriers": []}
    error = await refusal(quote(world, ALL_READER, **request))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details().startswith(
        "INVALID_REQUEST: shipstation get_rates: HTTP 400: Carrier 'dhl_express' is not connected"
    )


async def test_refused_credentials_are_a_failed_precondition_and_never_shown(world):
    error = await refusal(quote(world, ALL_READER, tenant_id="globex", provider_account="ship-bad", carriers=[]))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and error.details().startswith("UNAUTHORIZED: ")
    assert "wrong" not in error.details()


# ---- freight onto the Cin7 order


async def test_the_chosen_quote_is_written_onto_the_cin7_order_once_and_logged(world):
    chosen = next(q for q in (await quote(world, ACME_OPERATOR)).quotes if q.service_code == "ups_ground")

    first = await freight(world, total=chosen.total, service_name=chosen.service_name)
    again = await freight(world, total=chosen.total, service_name=chosen.service_name)

    assert (first.channel_account, first.channel_order_id, first.written) == ("cin7", str(world.cin7_order_id), True)
    assert again.written is False
    order = world.cin7_order()
    assert (order["freightTotal"], order["freightDescription"]) == (27.49, "UPS® Ground")
    assert world.cin7.app[CIN7_STATE].stats.rows_updated == 1
    logged = [(e["kind"], e["actor"], e["message"]) for e in await activity_of(world.pool, "acme", ORDER_ID)]
    assert ("freight_written", "jane@acme.example", "freight 27.49 USD (UPS® Ground) written to the channel") in logged


async def test_freight_is_written_by_the_channels_own_order_id_too(world):
    done = await freight(world, order_id="", channel_order_id=str(world.cin7_order_id), channel_account="cin7")
    assert done.written and world.cin7_order()["freightTotal"] == 27.49


async def test_a_record_from_before_accounts_had_names_writes_to_the_tenants_only_cin7_account(world):
    cin7_id = await routed_order(world.pool, world.cin7, "ord_rates_legacy", channel_account="")
    done = await freight(world, order_id="ord_rates_legacy")
    assert (done.channel_account, done.channel_order_id, done.written) == ("cin7", str(cin7_id), True)
    assert world.cin7.app[CIN7_STATE].orders_of(CIN7_USER)[cin7_id]["freightTotal"] == 27.49


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        (
            {"order_id": "", "channel_order_id": "999999", "channel_account": "cin7"},
            grpc.StatusCode.NOT_FOUND,
            "NOT_FOUND: cin7 get_sales_order: HTTP 404",
        ),
        ({"order_id": "ord_unknown"}, grpc.StatusCode.NOT_FOUND, "order 'ord_unknown' of tenant 'acme' is not known"),
        (
            {"order_id": "", "channel_order_id": "1", "channel_account": "nope"},
            grpc.StatusCode.NOT_FOUND,
            "tenant 'acme' has no account 'nope'",
        ),
        (
            {"order_id": "", "channel_order_id": "1", "channel_account": "ship"},
            grpc.StatusCode.FAILED_PRECONDITION,
            "account 'ship' (shipstation) cannot take freight",
        ),
        (
            {"total": money_pb2.Money(currency_code="EUR", minor_units=100)},
            grpc.StatusCode.FAILED_PRECONDITION,
            "CONFLICT: cin7 write_freight: order",
        ),
        ({"order_id": "", "channel_order_id": "1"}, grpc.StatusCode.INVALID_ARGUMENT, "channel_account is required"),
        ({"order_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "give exactly one of order_id and channel_order_id"),
        (
            {"channel_account": "other"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "order 'ord_rates1' came from channel account 'cin7', not 'other'",
        ),
        (
            {"total": money_pb2.Money(currency_code="USD", minor_units=-1)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "total.minor_units must not be negative",
        ),
        (
            {"total": money_pb2.Money(minor_units=100)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "total.currency_code is required",
        ),
        ({"service_name": " "}, grpc.StatusCode.INVALID_ARGUMENT, "service_name is required"),
    ],
)
async def test_a_freight_that_cannot_be_written_is_refused_with_its_own_code(world, fields, code, words):
    error = await refusal(freight(world, **fields))
    assert error.code() == code and words in error.details()
    assert "freightTotal" not in world.cin7_order()


async def test_a_freight_without_a_total_is_refused(world):
    request = pb.WriteFreightRequest(tenant_id="acme", order_id=ORDER_ID, service_name="UPS® Ground")
    error = await refusal(world.stub.WriteFreight(request, metadata=bearer(ACME_OPERATOR), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details() == "total is required: a quote's total"


async def test_a_cin7_that_fails_past_every_retry_is_unavailable(world):
    await world.fault(world.cin7, "update", 500)
    error = await refusal(freight(world))
    assert error.code() == grpc.StatusCode.UNAVAILABLE and error.details().startswith("PROVIDER_UNAVAILABLE: ")
    assert (await freight(world)).written  # writing again succeeds


# ---- the CLI


async def test_the_cli_prints_the_quotes_and_writes_the_chosen_one(world):
    out, err, code = await cli(world, ACME_OPERATOR, "quote", ORDER_ID, "--carrier", "ups", "--write", "ups_ground")
    assert code == 0, err
    assert "quotes from ship, markup 12.5%:" in out
    assert "ups_ground" in out and "base 24.431625" in out and "markup 3.053953125" in out and "total 27.49 USD" in out
    assert "total 49.66 USD" in out
    assert f"freight 27.49 USD (UPS® Ground) written to cin7 order {world.cin7_order_id}" in out
    assert world.cin7_order()["freightTotal"] == 27.49


async def test_the_cli_says_why_a_quote_is_refused_and_exits_1(world):
    out, err, code = await cli(world, ACME_READER, "quote", "ord_unknown")
    assert code == 1 and "NOT_FOUND" in err and out == ""


async def cli(world: World, token: str, *args: str) -> tuple[str, str, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fulfillment_dispatch.cli",
        "--addr",
        world.address,
        "--tenant",
        "acme",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "ORDERSYNC_ADMIN_TOKEN": token},
    )
    out, err = await process.communicate()
    return out.decode(), err.decode(), process.returncode or 0


async def test_the_cli_refuses_to_write_a_quote_of_an_order_given_only_as_a_file(world, tmp_path):
    order_file = tmp_path / "order.json"
    order_file.write_text("{}")
    out, err, code = await cli(world, ACME_OPERATOR, "quote", "--order-file", str(order_file), "--write", "ups_ground")
    assert code == 2 and "quote --write needs the order's ordersync id" in err
    assert world.shipstation.app[SHIPSTATION_STATE].stats.requests["getrates"] == 0
