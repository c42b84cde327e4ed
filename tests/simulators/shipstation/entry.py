"""How the test stack runs the ShipStation simulator: one simulated API key pair per provider account.

Accounts are named `<tenant>.<account>`. Their SHIP_NOTIFY webhooks go to dispatch's notice URL
ending in the account's `webhook_token`. The Custom Store URL the simulator pulls (pull mode) is
the simulator's own option (`store_url`), since the tenants file does not name our endpoint; by
default the stack's, dispatch's `/stores/shipstation/{tenant}/{account}`. `subscribe_webhooks`
False leaves SHIP_NOTIFY unsubscribed.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.simulators.common import load_json_file
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry
from tests.simulators.shipstation.app import ShipStationConfig, create_app


def load_config(path: str | None) -> ShipStationConfig:
    """Read the JSON config file, or use the defaults (no accounts) when none is given."""
    return ShipStationConfig.from_dict(load_json_file(path)) if path else ShipStationConfig()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """An account with a fresh API key pair, webhook token and store credentials."""
    defaults: dict[str, Any] = {"api_key": "ss-" + secrets.token_hex(8), "store_user": "shipstation", "store_url": ""}
    fresh = {
        "api_secret": secrets.token_urlsafe(24),
        "webhook_token": secrets.token_urlsafe(24),
        "store_password": secrets.token_urlsafe(24),
    }
    return AccountSpec(name, "shipstation", {**defaults, **options}, fresh)


def account(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/accounts/{id}` take it."""
    spec = simulated.account
    return {
        "account_id": f"{simulated.tenant_id}.{spec.name}",
        "api_key": spec["api_key"],
        "api_secret": spec["api_secret"],
        # SHIP_NOTIFY is subscribed unless the test says not (a pull-mode store hears by shipnotify).
        "webhook_url": simulated.notice_url if spec.options.get("subscribe_webhooks", True) else None,
        "store_url": spec["store_url"] or simulated.store_url or None,
        "store_user": spec["store_user"],
        "store_password": spec["store_password"],
        # The store's custom status words, as a user maps them when connecting the store.
        "store_statuses": spec.options.get("store_statuses"),
    }


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"accounts": [account(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    body = account(simulated)
    response = await http.put(f"{base_url}/_sim/accounts/{body['account_id']}", json=body)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="shipstation",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    simulator_only=frozenset({"store_url", "subscribe_webhooks", "store_statuses"}),
    notice_token="webhook_token",
)
