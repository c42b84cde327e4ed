"""How the test stack runs the VinSuite simulator: one winery web-service account per provider account.

An account's `winery_id` names its winery; the partner login (`username`, `password`) is the
account's secrets. The winery's known `products`, `member_types` and `members` are told to the
simulator only. VinSuite sends no webhooks: the simulator needs no URL of ours.
"""

from __future__ import annotations

import secrets
import zlib
from typing import Any

import httpx

from tests.simulators.common import load_json_file
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry
from tests.simulators.vinsuite.app import SERVICE, VinSuiteConfig, create_app

SIMULATOR_ONLY = frozenset({"products", "member_types", "members"})


def load_config(path: str | None) -> VinSuiteConfig:
    """Read the JSON config file, or use the defaults (no wineries) when none is given."""
    return VinSuiteConfig.from_dict(load_json_file(path)) if path else VinSuiteConfig()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """A winery with a fresh partner login, the order prefix "CP-", knowing no member yet."""
    winery = str(1000 + zlib.crc32(f"{tenant_id}.{name}".encode()) % 100_000)
    defaults: dict[str, Any] = {"winery_id": winery, "order_number_prefix": "CP-"}
    fresh = {"username": "cp-" + secrets.token_hex(4), "password": secrets.token_urlsafe(24)}
    return AccountSpec(name, "vinsuite", {**defaults, **options}, fresh)


def winery(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/wineries/{winery_id}` take it."""
    account = simulated.account
    return {
        "winery_id": str(account["winery_id"]),
        "username": account["username"],
        "password": account["password"],
        "products": list(account.options.get("products", [])),
        "member_types": list(account.options.get("member_types", [])),
        "members": list(account.options.get("members", [])),
    }


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"wineries": [winery(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    body = winery(simulated)
    response = await http.put(f"{base_url}/_sim/wineries/{body['winery_id']}", json=body)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="vinsuite",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    # The connector's base_url is the service's version root; it adds EWSWebServices.asmx.
    base_url=lambda address: f"{address.rstrip('/')}{SERVICE.rsplit('/', 1)[0]}/",
    simulator_only=SIMULATOR_ONLY,
)
