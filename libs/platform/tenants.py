"""Tenant configuration: a merchant's connector accounts and its routes, secrets resolved at load.

A tenant names its accounts (`[tenants.acme.accounts.store]`, with `connector = "..."` and the
connector's own settings, parsed and validated by that connector) and lists its routes in the
order they are tried (`[[tenants.acme.routes]]`: channel account -> provider account, with
rules). The format is described in docs/tenants.md.

The file (TOML) holds no secrets itself: every credential is a reference, `env:NAME` or
`file:PATH`, resolved when the file is loaded, so the repository and the config map carry none.

Tenant settings (chosen states, the compliance pre-check, credentials) change without a restart:
each service runs a TenantsWatcher that re-reads the file when its content changes. A file that
no longer parses is refused with a logged error and the last good settings stay in force.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from libs.platform.config import ConfigError
from libs.platform.discounts import DiscountRule, parse_discount_rules
from libs.platform.mail import check_address
from libs.platform.secrets import resolve_secret_value
from libs.platform.worker import PollingWorker

log = logging.getLogger(__name__)


ORDER_KINDS = frozenset({"shipping", "pickup", "carry_out", "refund", "exchange", "reservation"})


class ConnectorCatalog(Protocol):
    """What the tenants file needs of the connector registry (libs.connectors.registry.Registry):
    the connector of an account, to parse its section. Passed in, so the platform layer names
    no vendor."""

    def get(self, connector_id: str) -> Any: ...

    def __contains__(self, connector_id: object) -> bool: ...


@dataclass(frozen=True)
class Account:
    """One connector account of a tenant, e.g. its Commerce7 store, named by the tenant.

    `settings` is the connector's own parsed settings type; `poll_interval_s` and
    `import_delay_s` apply to pulled channels only (how often to poll; how old an order must
    be before it is imported, for channels whose orders may still change just after placing).
    `import_errors_to` is where intake mails an order the channel's import rules keep out
    ("" for no mail).
    """

    name: str
    connector: str
    settings: Any
    poll_interval_s: float = 60.0
    import_delay_s: float = 0.0
    import_errors_to: str = ""


@dataclass(frozen=True)
class Route:
    """Where a tenant's orders from one channel account go, when its rules match.

    Rules, all of which must hold: the order's kind is in `order_kinds`; its ship-to state is in
    `ship_to_states` and its country in `ship_to_countries` (either unset: any). `options` are
    handed to the provider connector with each order of this route.
    """

    name: str
    channel: str
    provider: str
    order_kinds: frozenset[str] = frozenset({"shipping"})
    ship_to_states: frozenset[str] | None = None
    ship_to_countries: frozenset[str] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tenant:
    """One merchant: its named connector accounts, its ordered routes and its automated
    discount rules (libs.platform.discounts, in file order)."""

    tenant_id: str
    accounts: Mapping[str, Account]
    routes: tuple[Route, ...] = ()
    discount_rules: tuple[DiscountRule, ...] = ()

    def account(self, name: str) -> Account | None:
        return self.accounts.get(name)

    def accounts_of(self, connector: str) -> list[Account]:
        """The tenant's accounts of one connector, in file order."""
        return [a for a in self.accounts.values() if a.connector == connector]

    def routes_from(self, channel_account: str) -> list[Route]:
        """The routes for orders of one channel account, in evaluation order."""
        return [r for r in self.routes if r.channel == channel_account]

    def route(self, name: str) -> Route | None:
        return next((r for r in self.routes if r.name == name), None)


class TenantDirectory:
    """Lookup of tenants by id; every service takes only the parts it needs.

    Callers keep the directory, never a Tenant, across requests: `reload` swaps the whole map
    at once, so each lookup sees either the old settings or the new ones, never a mix.
    """

    def __init__(
        self,
        tenants: dict[str, Tenant],
        *,
        path: str | Path | None = None,
        digest: str = "",
        connectors: ConnectorCatalog | None = None,
    ):
        self._tenants = tenants
        self._path = path
        self._digest = digest
        self._connectors = connectors

    def get(self, tenant_id: str) -> Tenant | None:
        """Return the tenant, or None when it is not configured."""
        return self._tenants.get(tenant_id)

    def __getitem__(self, tenant_id: str) -> Tenant:
        """Return the tenant; raise KeyError when it is not configured."""
        return self._tenants[tenant_id]

    def __iter__(self):
        return iter(self._tenants.values())

    def __len__(self) -> int:
        return len(self._tenants)

    @classmethod
    def load(cls, path: str | Path, connectors: ConnectorCatalog) -> TenantDirectory:
        """Parse the tenants file; raise ConfigError naming the tenant, section and key that is wrong."""
        text = _read(path)
        return cls(_parse_document(text, path, connectors), path=path, digest=_digest(text), connectors=connectors)

    def reload(self) -> bool:
        """Re-read the file if its content changed; return True when new settings took effect.

        Raises ConfigError (keeping the current settings) when the changed file is invalid.
        """
        if self._path is None or self._connectors is None:
            return False
        text = _read(self._path)
        digest = _digest(text)
        if digest == self._digest:
            return False
        tenants = _parse_document(text, self._path, self._connectors)
        self._tenants, self._digest = tenants, digest
        return True


class TenantsWatcher:
    """Reloads a TenantDirectory when its file changed; run it with `as_worker`."""

    def __init__(self, tenants: TenantDirectory):
        self._tenants = tenants
        self._last_error = ""

    def as_worker(self, interval_s: float) -> PollingWorker:
        """A component checking the file every `interval_s` seconds."""
        return PollingWorker("tenants-watcher", self.check, idle_s=interval_s)

    async def check(self) -> int:
        """One reload attempt; an invalid file is logged once per distinct error and not applied."""
        try:
            if self._tenants.reload():
                log.info("tenant settings reloaded", extra={"fields": {"tenants": len(self._tenants)}})
            self._last_error = ""
        except ConfigError as exc:
            if str(exc) != self._last_error:
                log.error("tenant settings not reloaded; keeping the last good ones: %s", exc)
            self._last_error = str(exc)
        return 0


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read tenants file {path}: {exc.strerror}") from None


def _digest(text: str) -> str:
    # Secrets resolved from env: or file: references are part of the settings too, but only the
    # file's own text is watched; rotating a referenced secret file takes a touch of the tenants file.
    return hashlib.sha256(text.encode()).hexdigest()


def _parse_document(text: str, path: str | Path, connectors: ConnectorCatalog) -> dict[str, Tenant]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read tenants file {path}: {exc}") from None
    tenants = {}
    for tenant_id, section in document.get("tenants", {}).items():
        tenants[tenant_id] = _parse_tenant(tenant_id, section, connectors)
    _check_unique_keys(tenants.values(), connectors)
    return tenants


_ROUTE_KEYS = {"name", "channel", "provider", "order_kinds", "ship_to_states", "ship_to_countries", "options"}
_TENANT_KEYS = {"accounts", "routes", "discount_rules"}


def _parse_tenant(tenant_id: str, section: dict, connectors: ConnectorCatalog) -> Tenant:
    where = f"tenant {tenant_id!r}"
    _refuse_old_format(tenant_id, section, connectors)
    unknown = sorted(set(section) - _TENANT_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))};"
            " expected [accounts.*], [[routes]] and [[discount_rules]]"
        )
    accounts = {
        name: _parse_account(name, body, f"{where} [accounts.{name}]", connectors)
        for name, body in _table(section, "accounts", where).items()
    }
    routes = tuple(
        _parse_route(index, body, f"{where} [[routes]] #{index + 1}", accounts, connectors)
        for index, body in enumerate(section.get("routes", []))
    )
    names = [route.name for route in routes]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ConfigError(f"{where}: two routes are named {duplicate!r}")
    rules = parse_discount_rules(tenant_id, section.get("discount_rules", []))
    return Tenant(tenant_id, accounts, routes, rules)


def _table(section: dict, key: str, where: str) -> dict:
    value = section.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ConfigError(f"{where}: [{key}] must be tables, one per name")
    return value


def _parse_account(name: str, section: dict, where: str, connectors: ConnectorCatalog) -> Account:
    connector_id = section.get("connector")
    if not isinstance(connector_id, str) or connector_id not in connectors:
        raise ConfigError(f"{where} connector: {connector_id!r} is not a registered connector")
    try:
        settings = connectors.get(connector_id).parse_settings(section, resolve_secret_value, where)
    except ValueError as exc:  # the connector's SettingsError, naming where and the field
        raise ConfigError(str(exc)) from None
    return Account(
        name,
        connector_id,
        settings,
        poll_interval_s=_positive(section, "poll_interval_s", 60.0, where),
        import_delay_s=_positive(section, "import_delay_s", 0.0, where, allow_zero=True),
        import_errors_to=_address(section, "import_errors_to", where),
    )


def _address(section: dict, key: str, where: str) -> str:
    value = section.get(key, "")
    problem = check_address(value) if value != "" else None
    if problem is not None:
        raise ConfigError(f"{where} {key}: {problem}")
    return value


def _positive(section: dict, key: str, default: float, where: str, *, allow_zero: bool = False) -> float:
    value = section.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and (value > 0 or (allow_zero and value == 0))
    if not ok:
        raise ConfigError(f"{where} {key}: must be a positive number of seconds, not {value!r}")
    return float(value)


def _parse_route(
    index: int, section: dict, where: str, accounts: Mapping[str, Account], connectors: ConnectorCatalog
) -> Route:
    unknown = sorted(set(section) - _ROUTE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    name = section.get("name", f"route-{index + 1}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where} name: must be a non-empty string")
    where = f"{where.rsplit(' #', 1)[0]} {name!r}"
    channel = _account_ref(section, "channel", where, accounts, connectors, "channel")
    provider = _account_ref(section, "provider", where, accounts, connectors, "provider")
    kinds = _names(section, "order_kinds", where, upper=False) or frozenset({"shipping"})
    if not kinds <= ORDER_KINDS:
        raise ConfigError(f"{where} order_kinds: {sorted(kinds - ORDER_KINDS)} unknown; use {sorted(ORDER_KINDS)}")
    options = section.get("options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where} options: must be a table")
    return Route(
        name=name,
        channel=channel,
        provider=provider,
        order_kinds=kinds,
        ship_to_states=_names(section, "ship_to_states", where, upper=True),
        ship_to_countries=_names(section, "ship_to_countries", where, upper=True),
        options=options,
    )


def _account_ref(
    section: dict, key: str, where: str, accounts: Mapping[str, Account], connectors: ConnectorCatalog, role: str
) -> str:
    name = section.get(key)
    if not isinstance(name, str) or name not in accounts:
        known = ", ".join(sorted(accounts)) or "none"
        raise ConfigError(f"{where} {key}: {name!r} is not one of the tenant's accounts ({known})")
    roles = {r.value for r in connectors.get(accounts[name].connector).info.roles}
    if role not in roles:
        raise ConfigError(f"{where} {key}: account {name!r} ({accounts[name].connector}) is not a {role}")
    return name


def _names(section: dict, key: str, where: str, *, upper: bool) -> frozenset[str] | None:
    if key not in section:
        return None
    value = section[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} {key}: must be a list of names")
    return frozenset(v.upper() if upper else v for v in value)


def _check_unique_keys(tenants: Iterable[Tenant], connectors: ConnectorCatalog) -> None:
    # Some vendors hold one namespace for all their customers (e.g. global order numbers):
    # their connector names the values that must then differ between tenants.
    seen: dict[tuple[str, str], str] = {}
    for tenant in tenants:
        for account in tenant.accounts.values():
            for key in connectors.get(account.connector).unique_keys(account.settings):
                owner = seen.setdefault((account.connector, key), tenant.tenant_id)
                if owner != tenant.tenant_id:
                    raise ConfigError(f"tenants {owner!r} and {tenant.tenant_id!r} share {account.connector} {key}")


def _refuse_old_format(tenant_id: str, section: dict, connectors: ConnectorCatalog) -> None:
    old = sorted(k for k in section if k in connectors or k == "chosen_states")
    if old:
        raise ConfigError(
            f"tenant {tenant_id!r}: {', '.join(old)} belong to the old format without accounts and routes;"
            " convert the file with `python -m libs.platform.tenants convert OLD.toml > NEW.toml`"
            " (see docs/tenants.md)"
        )


def convert_old_document(document: dict, connectors: ConnectorCatalog) -> dict:
    """The old format (one [tenants.X.<connector>] table per vendor, `chosen_states`) in the new one.

    Each vendor table becomes an account named after its connector; one route takes the
    channel's shipping orders to the provider for the chosen states, as before.
    """
    converted: dict = {"tenants": {}}
    for tenant_id, section in document.get("tenants", {}).items():
        accounts: dict[str, dict] = {}
        channels: list[str] = []
        providers: list[str] = []
        for key, body in section.items():
            if key in connectors and isinstance(body, dict):
                accounts[key] = {"connector": key, **body}
                roles = {r.value for r in connectors.get(key).info.roles}
                (channels if "channel" in roles else providers).append(key)
        tenant: dict = {"accounts": accounts}
        if channels and providers:
            tenant["routes"] = [
                {
                    "name": f"{channels[0]}-to-{providers[0]}",
                    "channel": channels[0],
                    "provider": providers[0],
                    "order_kinds": ["shipping"],
                    "ship_to_states": [s.upper() for s in section.get("chosen_states", [])],
                }
            ]
        converted["tenants"][tenant_id] = tenant
    return converted


def main(argv: list[str] | None = None) -> int:
    """`python -m libs.platform.tenants convert OLD.toml` prints the file in today's format;
    `check FILE` parses it as the services would (secrets resolved) and says what is wrong."""
    import argparse
    import sys

    import tomli_w

    from libs.connectors.registry import default_registry

    parser = argparse.ArgumentParser(prog="python -m libs.platform.tenants")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("convert", help="print an old-format tenants file in today's format").add_argument("path")
    commands.add_parser("check", help="parse a tenants file as the services do").add_argument("path")
    args = parser.parse_args(argv)
    registry = default_registry()
    if args.command == "convert":
        document = tomllib.loads(_read(args.path))
        sys.stdout.write(tomli_w.dumps(convert_old_document(document, registry)))
        return 0
    try:
        directory = TenantDirectory.load(args.path, registry)
    except ConfigError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {len(directory)} tenant(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
