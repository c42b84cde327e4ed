"""How the test stack runs the CellarPass simulator: one simulated account per CellarPass account.

The account's `api_key` is its Bearer key. `account_id` (simulator only) names it in the control
API (`POST /_sim/reservations {account_id, ...}`); `integration_enabled` (simulator only, default
true) false makes every call answer 403, as an account without the VinSuite integration. Intake
polls the simulator: it sends no webhooks.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.simulators.cellarpass.app import CellarPassConfig, create_app
from tests.simulators.common import load_json_file
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry


def load_config(path: str | None) -> CellarPassConfig:
    """Read the JSON config file, or use the defaults (no accounts) when none is given."""
    return CellarPassConfig.from_dict(load_json_file(path)) if path else CellarPassConfig()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """An account with a fresh API key, named `<tenant>.<name>` in the control API."""
    defaults = {"account_id": f"{tenant_id}.{name}"}
    return AccountSpec(name, "cellarpass", {**defaults, **options}, {"api_key": "cp-" + secrets.token_urlsafe(24)})


def account(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/accounts/{account_id}` take it."""
    spec = simulated.account
    return {
        "account_id": str(spec["account_id"]),
        "api_key": spec["api_key"],
        "integration_enabled": bool(spec.options.get("integration_enabled", True)),
    }


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"accounts": [account(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    body = account(simulated)
    response = await http.put(f"{base_url}/_sim/accounts/{body['account_id']}", json=body)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="cellarpass",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    base_url=lambda address: address.rstrip("/"),
    simulator_only=frozenset({"account_id", "integration_enabled"}),
)
