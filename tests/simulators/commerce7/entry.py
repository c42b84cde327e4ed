"""How the test stack runs the Commerce7 simulator: one simulated Commerce7 tenant per store account.

A store account's `tenant_slug` is its Commerce7 tenant in the simulator; the simulator posts the
store's order webhooks, with the account's Basic credentials, to order intake's push URL.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.simulators.commerce7.app import Commerce7Config, create_app
from tests.simulators.common import load_json_file
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry


def load_config(path: str | None) -> Commerce7Config:
    """Read the JSON config file, or use the defaults (no tenants) when none is given."""
    return Commerce7Config.from_dict(load_json_file(path)) if path else Commerce7Config()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """A store whose Commerce7 tenant slug is the tenant's id, with fresh app and webhook credentials."""
    defaults = {"tenant_slug": tenant_id, "app_id": "app-" + secrets.token_hex(4), "webhook_user": "ordersync"}
    fresh = {"app_secret": secrets.token_urlsafe(24), "webhook_password": secrets.token_urlsafe(16)}
    return AccountSpec(name, "commerce7", {**defaults, **options}, fresh)


def simulated_tenant(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/tenants/{id}` take it."""
    account = simulated.account
    return {
        "tenant_id": account["tenant_slug"],
        "app_id": account["app_id"],
        "app_secret": account["app_secret"],
        "webhook_url": simulated.push_url,
        "webhook_user": account["webhook_user"],
        "webhook_password": account["webhook_password"],
    }


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"tenants": [simulated_tenant(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    tenant = simulated_tenant(simulated)
    response = await http.put(f"{base_url}/_sim/tenants/{tenant['tenant_id']}", json=tenant)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="commerce7",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    base_url=lambda address: f"{address}/v1",  # the API root includes its version
)
