"""How the test stack runs the Vinoshipper simulator: one simulated producer per provider account.

A producer knows the SKUs (`products`) and states (`licensed_states`) of the account, which only
the simulator holds; its thin webhooks go to dispatch's notice URL ending in the account's
`webhook_token`. Producers are named `<tenant>.<account>`, so two accounts of one tenant are two
producers.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.simulators.common import load_json_file
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry
from tests.simulators.vinoshipper.app import VinoshipperConfig, create_app


def load_config(path: str | None) -> VinoshipperConfig:
    """Read the JSON config file, or use the defaults (no producers) when none is given."""
    return VinoshipperConfig.from_dict(load_json_file(path)) if path else VinoshipperConfig()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """A producer account with fresh API credentials and webhook token, knowing no SKU or state
    until `products` and `licensed_states` are given."""
    defaults: dict[str, Any] = {
        "api_key": "vs-" + secrets.token_hex(4),
        "order_number_prefix": tenant_id.upper(),
        "products": [],
        "licensed_states": [],
    }
    fresh = {"api_secret": secrets.token_urlsafe(24), "webhook_token": secrets.token_urlsafe(24)}
    return AccountSpec(name, "vinoshipper", {**defaults, **options}, fresh)


def producer(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/producers/{id}` take it."""
    account = simulated.account
    return {
        "producer_id": f"{simulated.tenant_id}.{account.name}",
        "api_key": account["api_key"],
        "api_secret": account["api_secret"],
        "webhook_url": simulated.notice_url,
        "products": list(account["products"]),
        "licensed_states": list(account["licensed_states"]),
    }


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"producers": [producer(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    body = producer(simulated)
    response = await http.put(f"{base_url}/_sim/producers/{body['producer_id']}", json=body)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="vinoshipper",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    simulator_only=frozenset({"products", "licensed_states"}),
    notice_token="webhook_token",
)
