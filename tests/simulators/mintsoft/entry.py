"""How the test stack runs the Mintsoft simulator: one simulated user (and client) per provider account.

A user's client catalog holds the account's `products` (SKUs), which only the simulator is told.
An account with a `client_id` is a 3PL admin user acting for that client (the connector sends
`ClientId`); one without is a client user whose client id the simulator derives from the
account's name. Callbacks go wherever the connector registers them (its `callback_base_url` and
`callback_token`): the simulator needs no webhook URL of its own; the stack points
`callback_base_url` at dispatch (`callback_base_option`).
"""

from __future__ import annotations

import secrets
import zlib
from typing import Any

import httpx

from tests.simulators.common import load_json_file
from tests.simulators.mintsoft.app import MintsoftConfig, create_app
from tests.simulators.registry import AccountSpec, SimulatedAccount, SimulatorEntry


def load_config(path: str | None) -> MintsoftConfig:
    """Read the JSON config file, or use the defaults (no users) when none is given."""
    return MintsoftConfig.from_dict(load_json_file(path)) if path else MintsoftConfig()


def new_account(name: str, tenant_id: str, **options: Any) -> AccountSpec:
    """A Mintsoft user with a fresh password and callback token, knowing no SKU until
    `products` is given."""
    defaults: dict[str, Any] = {"username": "ms-" + secrets.token_hex(4), "products": []}
    fresh = {"password": secrets.token_urlsafe(24), "callback_token": secrets.token_urlsafe(24)}
    return AccountSpec(name, "mintsoft", {**defaults, **options}, fresh)


def user(simulated: SimulatedAccount) -> dict[str, Any]:
    """The account as the simulator's config and `PUT /_sim/users/{username}` take it."""
    account = simulated.account
    client_id = account.options.get("client_id")
    derived = 100 + zlib.crc32(f"{simulated.tenant_id}.{account.name}".encode()) % 100_000
    return {
        "username": account["username"],
        "password": account["password"],
        "client_id": int(client_id) if client_id is not None else derived,
        "admin": client_id is not None,
        "products": list(account.options.get("products", [])),
    }


def build_config(accounts: list[SimulatedAccount]) -> dict[str, Any]:
    return {"users": [user(a) for a in accounts]}


async def put_account(http: httpx.AsyncClient, base_url: str, simulated: SimulatedAccount) -> None:
    body = user(simulated)
    response = await http.put(f"{base_url}/_sim/users/{body['username']}", json=body)
    response.raise_for_status()


SIMULATOR = SimulatorEntry(
    connector="mintsoft",
    create_app=create_app,
    load_config=load_config,
    build_config=build_config,
    new_account=new_account,
    put_account=put_account,
    base_url=lambda address: f"{address.rstrip('/')}/api/",
    simulator_only=frozenset({"products"}),
    notice_token="callback_token",
    callback_base_option="callback_base_url",
)
