"""How the test stack runs the CommerceInterface simulator: one supplier per Groupon account.

The account's `supplier_id` and `token` are the supplier's. `page_size` (simulator only) makes
that supplier's get_orders pages smaller than 250 line items, so tests can split orders across
pages. CommerceInterface sends no webhooks: intake polls it.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.simulators.common import load_json_file
from tests.simulators.groupon.app import GrouponConfig, create_app
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry


def load_config(path: str | None) -> GrouponConfig:
    """Read the JSON config file, or use the defaults (no suppliers) when none is given."""
    return GrouponConfig.from_dict(load_json_file(path)) if path else GrouponConfig()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """A supplier with a fresh id and token."""
    defaults = {"supplier_id": str(secrets.randbelow(900_000) + 100_000)}
    return AccountSpec(name, "groupon", {**defaults, **options}, {"token": secrets.token_urlsafe(24)})


def supplier(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/suppliers/{supplier_id}` take it."""
    account = simulated.account
    return {
        "supplier_id": str(account["supplier_id"]),
        "token": account["token"],
        "page_size": account.options.get("page_size"),
    }


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"suppliers": [supplier(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    body = supplier(simulated)
    response = await http.put(f"{base_url}/_sim/suppliers/{body['supplier_id']}", json=body)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="groupon",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    base_url=lambda address: f"{address}/api/v4/",
    simulator_only=frozenset({"page_size"}),
)
