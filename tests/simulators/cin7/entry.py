"""How the test stack runs the Cin7 simulator: one API connection per Cin7 account.

The account's `username` is the connection in the simulator, whose stages include the
account's Fully Picked and Dispatched stages. Cin7 sends no webhooks: intake polls it.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.simulators.cin7.app import DEFAULT_STAGES, Cin7Config, create_app
from tests.simulators.common import load_json_file
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry


def load_config(path: str | None) -> Cin7Config:
    """Read the JSON config file, or use the defaults (no accounts) when none is given."""
    return Cin7Config.from_dict(load_json_file(path)) if path else Cin7Config()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """An API connection with a fresh username and connection key."""
    defaults = {"username": f"{tenant_id}-" + secrets.token_hex(4)}
    return AccountSpec(name, "cin7", {**defaults, **options}, {"api_key": secrets.token_urlsafe(24)})


def connection(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/accounts/{username}` take it."""
    account = simulated.account
    stages = list(DEFAULT_STAGES)
    for key in ("fully_picked_stage", "dispatched_stage", "cancelled_stage"):
        stage = account.options.get(key)
        if stage and stage not in stages:
            stages.append(stage)
    return {"username": account["username"], "api_key": account["api_key"], "stages": stages}


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"accounts": [connection(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    body = connection(simulated)
    response = await http.put(f"{base_url}/_sim/accounts/{body['username']}", json=body)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="cin7",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    base_url=lambda address: f"{address}/api",  # the connector adds the version to each path
)
