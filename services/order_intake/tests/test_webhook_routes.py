"""The one webhook route shape, for connectors found through the registry, over real HTTP on Postgres.

A second pushing channel (`tokenpush`, a test connector whose webhooks carry a per-account token,
in a header or after the account in the path) shows that nothing in intake is particular to one
vendor: every answer a channel can get, accounts chosen by credentials or by name, and the same
401 for what does not exist.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import (
    Capability,
    ChannelConnector,
    ClientResources,
    ConnectorInfo,
    Ignored,
    ParsedOrder,
    PushRequest,
    Role,
    SecretResolver,
)
from libs.connectors.base.errors import InvalidWebhook
from libs.connectors.base.issues import Issue
from libs.connectors.base.settings import SectionReader
from libs.connectors.commerce7.connector import CONNECTOR as COMMERCE7
from libs.connectors.registry import Registry
from libs.connectors.vinoshipper.connector import CONNECTOR as VINOSHIPPER
from order_intake.domain.intake import InputLimits, order_id_for
from services.order_intake.tests.endpoint import PASSWORD, TENANT, USER, Endpoint, encode, serve, webhook
from services.order_intake.tests.pull_channel import PullConnector
from tests.databases import fresh_database

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.integration,
    pytest.mark.timeout(60),
]

LIMIT = 16 * 1024
UNAUTHORIZED = {"error": "UNAUTHORIZED", "message": "missing or wrong webhook credentials for this tenant"}


@dataclass(frozen=True)
class TokenAccount:
    token: str


class TokenPushConnector(ChannelConnector):
    info = ConnectorInfo(
        id="tokenpush",
        label="Token Push",
        roles=frozenset({Role.CHANNEL}),
        capabilities=frozenset({Capability.PUSH_ORDERS}),
    )

    def parse_settings(self, section: Mapping[str, Any], resolve: SecretResolver, where: str) -> TokenAccount:
        read = SectionReader(section, resolve, where)
        account = TokenAccount(read.text("token"))
        read.finish()
        return account

    def open_client(self, settings: TokenAccount, resources: ClientResources):
        raise AssertionError("intake opens no client for a pushing channel")

    def authenticate_push(self, settings: TokenAccount, request: PushRequest) -> bool:
        given = request.headers.get("X-Hook-Token") or request.path_tail
        return hmac.compare_digest(given.encode(), settings.token.encode())

    def parse_push(self, settings: TokenAccount, body: bytes, tenant_id: str) -> ParsedOrder | Ignored:
        record = json.loads(body)
        if record.get("kind") == "ping":
            return Ignored("a ping, not an order")
        if "id" not in record:
            raise InvalidWebhook("tokenpush webhook: 'id' is missing")
        order = order_pb2.Order(
            tenant_id=tenant_id,
            external_id=record["id"],
            external_number=record["id"],
            revision=record["updated"],
            gift_message=record.get("gift", ""),
        )
        issues = [] if record.get("lines", 1) else [Issue("lines", "an order needs a line")]
        return ParsedOrder(order, issues)


# The Commerce7 store of endpoint.TENANTS_TOML, plus two accounts of the token channel and a pulled one.
EXTRA_ACCOUNTS = """
[tenants.acme.accounts.east]
connector = "tokenpush"
token = "east-token"

[tenants.acme.accounts.west]
connector = "tokenpush"
token = "west-token"

[tenants.acme.accounts.pulled]
connector = "pullfake"
base_url = "http://127.0.0.1:9"
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_endpoint(infra) -> AsyncIterator[Endpoint]:
    registry = Registry([COMMERCE7, VINOSHIPPER, TokenPushConnector(), PullConnector("unused")])
    async with (
        fresh_database(infra.pg_dsn) as dsn,
        serve(dsn, InputLimits(max_body_bytes=LIMIT), registry=registry, extra_toml=EXTRA_ACCOUNTS) as served,
    ):
        yield served


@pytest_asyncio.fixture(loop_scope="module")
async def endpoint(shared_endpoint) -> Endpoint:
    await shared_endpoint.pool.execute("TRUNCATE webhook_receipts, order_revisions, orders, outbox CASCADE")
    return shared_endpoint


def url(endpoint: Endpoint, path: str) -> str:
    return endpoint.url.split("/webhooks/")[0] + path


async def post(endpoint: Endpoint, path: str, body: Any, *, token: str | None = None, **kw):
    headers = {"Content-Type": "application/json"} | ({"X-Hook-Token": token} if token else {})
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await endpoint.http.post(url(endpoint, path), content=content, headers=headers | kw.pop("headers", {}), **kw)


def order(external_id: str = "t-1", updated: str = "2026-11-30T10:00:00Z", **fields: Any) -> dict:
    return {"id": external_id, "updated": updated, **fields}


async def stored_account(endpoint: Endpoint, order_id: str) -> str:
    proto = await endpoint.pool.fetchval("SELECT order_proto FROM orders WHERE order_id = $1", order_id)
    return order_pb2.Order.FromString(proto).channel_account


# ---- who may post --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/nosuchvendor/acme",  # no such connector
        "/webhooks/tokenpush/nobody",  # no such tenant
        "/webhooks/tokenpush/acme/north",  # no such account
        "/webhooks/tokenpush/acme/store",  # an account of another connector
        "/webhooks/pullfake/acme",  # a channel that is pulled, not pushing
        "/webhooks/pullfake/acme/pulled",
        "/webhooks/vinoshipper/acme",  # a provider
    ],
)
async def test_what_does_not_exist_or_does_not_push_gets_the_same_401_and_nothing_is_kept(endpoint, path):
    response = await post(endpoint, path, order(), token="east-token")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert await endpoint.count("webhook_receipts") == 0


async def test_the_account_is_the_one_whose_credentials_the_webhook_carries(endpoint):
    response = await post(endpoint, "/webhooks/tokenpush/acme", order(), token="west-token")
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    order_id = response.json()["order_id"]
    assert order_id == order_id_for(TENANT, "tokenpush", "t-1")
    assert await stored_account(endpoint, order_id) == "west"
    receipt = await endpoint.pool.fetchrow("SELECT channel, account, source FROM webhook_receipts")
    assert tuple(receipt) == ("tokenpush", "west", "push")


async def test_a_named_account_authenticates_with_what_follows_it_in_the_path(endpoint):
    accepted = await post(endpoint, "/webhooks/tokenpush/acme/east/east-token", order())
    assert accepted.status_code == 202
    assert await stored_account(endpoint, accepted.json()["order_id"]) == "east"
    wrong = await post(endpoint, "/webhooks/tokenpush/acme/east/west-token", order("t-2"))
    assert wrong.status_code == 401 and wrong.json() == UNAUTHORIZED


async def test_a_commerce7_store_can_be_named_in_the_path_too(endpoint):
    response = await endpoint.http.post(
        url(endpoint, "/webhooks/commerce7/acme/store"),
        content=encode(webhook()),
        headers={"Content-Type": "application/json"},
        auth=(USER, PASSWORD),
    )
    assert response.status_code == 202
    assert await stored_account(endpoint, response.json()["order_id"]) == "store"


# ---- every answer ---------------------------------------------------------------------------------


async def test_every_answer_of_the_route_for_another_channel(endpoint):
    path, token = "/webhooks/tokenpush/acme", "east-token"

    async def answer(body: Any, **kw) -> tuple[int, str]:
        response = await post(endpoint, path, body, token=token, **kw)
        payload = response.json()
        return response.status_code, payload.get("status") or payload["error"]

    assert await answer(order()) == (202, "accepted")
    assert await answer(order()) == (200, "duplicate")
    assert await answer(order(updated="2026-11-30T11:00:00Z")) == (200, "unchanged")
    assert await answer(order(updated="2026-11-30T09:00:00Z")) == (200, "stale")
    assert await answer(order("t-2", lines=0)) == (202, "invalid")
    assert await answer({"kind": "ping"}) == (202, "ignored")
    assert await answer({"updated": "x"}) == (400, "MALFORMED_WEBHOOK")
    assert await answer(order(), headers={"Content-Type": "text/plain"}) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert await answer(order(gift="x" * LIMIT)) == (413, "PAYLOAD_TOO_LARGE")
    outcomes = [r["outcome"] for r in await endpoint.pool.fetch("SELECT outcome FROM webhook_receipts ORDER BY id")]
    assert outcomes == [
        "accepted",
        "duplicate",
        "unchanged",
        "stale",
        "invalid",
        "ignored",
        "malformed",
        "malformed",
        "too_large",
    ]
    assert await endpoint.count("outbox") == 1
