"""The simulator registry: for every registered connector, how the test stack runs its vendor's simulator.

Each simulator folder `tests/simulators/<connector id>/` has an `entry.py` exposing `SIMULATOR`, a
SimulatorEntry saying how to run it (its app and config), how to build that config from the
accounts the stack's tenants hold, which account settings running against it implies (its
`base_url`) and how to change an account while it runs. BUILT_IN lists them, as
libs.connectors.registry lists the connectors; the contract test holds the two lists equal.

The stack (tests/system/stack.py) starts one simulator process per connector its tenants use,
found here by the account's connector id; compose and deploy/Dockerfile.simulators run any of them
as `python -m tests.simulators <connector id>`. Simulators for connectors outside this repository
are loaded by module name from ORDERSYNC_SIMULATOR_MODULES (comma-separated), as their connectors
are from ORDERSYNC_CONNECTOR_MODULES.

This module imports nothing from libs/: the simulators' image holds tests/simulators only.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

BUILT_IN = (
    "tests.simulators.commerce7.entry",
    "tests.simulators.vinoshipper.entry",
    "tests.simulators.cin7.entry",
    "tests.simulators.shipstation.entry",
    "tests.simulators.groupon.entry",
    "tests.simulators.mintsoft.entry",
    "tests.simulators.vinsuite.entry",
    "tests.simulators.cellarpass.entry",
)
EXTRA_MODULES_ENV = "ORDERSYNC_SIMULATOR_MODULES"
REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class AccountSpec:
    """One connector account of a test tenant: what the tenants file and the simulator hold of it.

    `options` are the account's plain settings: written to its tenants-file section (e.g.
    `api_key`, `order_number_prefix`) unless the connector's SimulatorEntry lists them as
    `simulator_only` (e.g. the SKUs the vendor knows), which only the simulator is told.
    `secrets` are written as `env:` references, their values handed to the services by
    environment and to the simulator in its config. `spec["key"]` reads either.
    """

    name: str
    connector: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Any:
        if key in self.options:
            return self.options[key]
        return self.secrets[key]

    def with_options(self, **changes: Any) -> AccountSpec:
        """A copy with some options changed (secrets by their key too)."""
        secrets = {k: v for k, v in changes.items() if k in self.secrets}
        options = {k: v for k, v in changes.items() if k not in secrets}
        return dataclasses.replace(self, options={**self.options, **options}, secrets={**self.secrets, **secrets})


@dataclasses.dataclass(frozen=True)
class SimulatedAccount:
    """An account as its simulator must know it: whose it is and where its webhooks go.

    `push_url` is order intake's `/webhooks/{connector}/{tenant}`, where a channel's order
    webhooks go; `notice_url` is dispatch's `/webhooks/{connector}/{tenant}/{token}` (the
    entry's `notice_token` secret as the tail), where a provider's notices go; `store_url` is
    dispatch's `/stores/{connector}/{tenant}/{account}`, which a provider pulling orders calls.
    """

    tenant_id: str
    account: AccountSpec
    push_url: str
    notice_url: str
    store_url: str = ""


ConfigBuilder = Callable[[list[SimulatedAccount]], dict[str, Any]]
AccountPusher = Callable[[httpx.AsyncClient, str, SimulatedAccount], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class SimulatorEntry:
    """How to run and feed one connector's simulator.

    Attributes:
        connector: the connector id it simulates (libs.connectors.registry), e.g. "commerce7".
        create_app: builds the aiohttp app from a config object.
        load_config: reads the JSON config file (or the defaults for None) into that object.
        build_config: the JSON config (as a dict) for the given accounts of every tenant.
        new_account: an account of this connector with fresh credentials and usable defaults,
            `new_account(name, tenant_id, **options)`.
        put_account: adds or replaces one account in a running simulator (its control API);
            used for accounts changed while running and for simulators run outside the stack.
        base_url: the account's `base_url` setting for a simulator serving at the given address.
        simulator_only: account options the simulator holds but the tenants file has no key for.
        notice_token: the secret forming the tail of dispatch's notice URL; None when the
            connector's notices carry no token in their URL.
        callback_base_option: the account key the connector builds its notice URLs from
            (Mintsoft registers a callback URL per order): the stack sets it to dispatch's
            address. None when the vendor is told the URL some other way.
        samples: the connector's vendor/ folder of recorded payloads the simulator follows.
    """

    connector: str
    create_app: Callable[[Any], web.Application]
    load_config: Callable[[str | None], Any]
    build_config: ConfigBuilder
    new_account: Callable[..., AccountSpec]
    put_account: AccountPusher | None = None
    base_url: Callable[[str], str] = lambda address: address
    simulator_only: frozenset[str] = frozenset()
    notice_token: str | None = None
    callback_base_option: str | None = None
    samples: Path | None = None

    @property
    def samples_dir(self) -> Path:
        return self.samples or REPO / "libs" / "connectors" / self.connector / "vendor"

    def file_options(self, account: AccountSpec) -> dict[str, Any]:
        """The account's options that belong in its tenants-file section."""
        return {k: v for k, v in account.options.items() if k not in self.simulator_only}


class UnknownSimulator(LookupError):
    """No simulator is registered for that connector id."""


class SimulatorRegistry:
    """Simulator entries by connector id."""

    def __init__(self, entries: list[SimulatorEntry] | None = None):
        self._entries: dict[str, SimulatorEntry] = {}
        for entry in entries or []:
            if entry.connector in self._entries:
                raise ValueError(f"simulator for {entry.connector!r} is registered twice")
            self._entries[entry.connector] = entry

    def get(self, connector_id: str) -> SimulatorEntry:
        try:
            return self._entries[connector_id]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownSimulator(
                f"no simulator for connector {connector_id!r} (known: {known});"
                " add tests/simulators/<id>/entry.py and list it in tests/simulators/registry.py"
            ) from None

    def __contains__(self, connector_id: object) -> bool:
        return connector_id in self._entries

    def __iter__(self) -> Iterator[SimulatorEntry]:
        return iter(self._entries.values())

    def ids(self) -> list[str]:
        return sorted(self._entries)


def load(modules: tuple[str, ...] | list[str] | None = None) -> SimulatorRegistry:
    """The built-in simulators plus those named in ORDERSYNC_SIMULATOR_MODULES."""
    if modules is None:
        extra = [m.strip() for m in os.environ.get(EXTRA_MODULES_ENV, "").split(",") if m.strip()]
        modules = [*BUILT_IN, *extra]
    return SimulatorRegistry([importlib.import_module(name).SIMULATOR for name in modules])


_default: SimulatorRegistry | None = None


def default_simulators() -> SimulatorRegistry:
    """The process's simulator registry, loaded once."""
    global _default
    if _default is None:
        _default = load()
    return _default
