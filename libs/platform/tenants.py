"""Tenant configuration: which channels and providers a merchant uses, with secrets resolved at load.

The file (TOML) holds no secrets itself: every credential is a reference, `env:NAME` or
`file:PATH`, resolved when the file is loaded, so the repository and the config map carry none.

Tenant settings (chosen states, the compliance pre-check, credentials) change without a restart:
each service runs a TenantsWatcher that re-reads the file when its content changes. A file that
no longer parses is refused with a logged error and the last good settings stay in force.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from libs.platform.config import ConfigError
from libs.platform.worker import PollingWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Secret:
    """A resolved secret; repr and str never show the value."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True)
class Commerce7Channel:
    """A tenant's Commerce7 store: app credentials for the API and Basic credentials of its webhooks."""

    tenant_slug: str
    app_id: str
    app_secret: Secret
    webhook_user: str
    webhook_password: Secret
    base_url: str = "https://api.commerce7.com/v1"
    rate_limit_per_minute: int = 100


@dataclass(frozen=True)
class VinoshipperProvider:
    """A tenant's Vinoshipper producer account and the secret path token of its webhooks."""

    api_key: str
    api_secret: Secret
    order_number_prefix: str
    webhook_token: Secret
    base_url: str = "https://vinoshipper.com"
    # Ask Vinoshipper's check-compliance endpoint before creating; a problem fails the order
    # with Vinoshipper's reasons and nothing is created there.
    compliance_precheck: bool = False
    timeout_s: float = 10.0  # per request; a create that times out is read back before any repeat


@dataclass(frozen=True)
class Tenant:
    """One merchant: its channel, its provider and its routing choices."""

    tenant_id: str
    commerce7: Commerce7Channel | None
    vinoshipper: VinoshipperProvider | None
    chosen_states: frozenset[str]


class TenantDirectory:
    """Lookup of tenants by id; every service takes only the parts it needs.

    Callers keep the directory, never a Tenant, across requests: `reload` swaps the whole map
    at once, so each lookup sees either the old settings or the new ones, never a mix.
    """

    def __init__(self, tenants: dict[str, Tenant], *, path: str | Path | None = None, digest: str = ""):
        self._tenants = tenants
        self._path = path
        self._digest = digest

    def get(self, tenant_id: str) -> Tenant | None:
        """Return the tenant, or None when it is not configured."""
        return self._tenants.get(tenant_id)

    def __iter__(self):
        return iter(self._tenants.values())

    def __len__(self) -> int:
        return len(self._tenants)

    @classmethod
    def load(cls, path: str | Path) -> TenantDirectory:
        """Parse the tenants file; raise ConfigError naming the tenant and key that is wrong."""
        text = _read(path)
        return cls(_parse_document(text, path), path=path, digest=_digest(text))

    def reload(self) -> bool:
        """Re-read the file if its content changed; return True when new settings took effect.

        Raises ConfigError (keeping the current settings) when the changed file is invalid.
        """
        if self._path is None:
            return False
        text = _read(self._path)
        digest = _digest(text)
        if digest == self._digest:
            return False
        tenants = _parse_document(text, self._path)
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


def _parse_document(text: str, path: str | Path) -> dict[str, Tenant]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read tenants file {path}: {exc}") from None
    tenants = {}
    for tenant_id, section in document.get("tenants", {}).items():
        tenants[tenant_id] = _parse_tenant(tenant_id, section)
    _check_prefixes_unique(tenants.values())
    return tenants


def resolve_secret(reference: str, where: str) -> Secret:
    """Resolve `env:NAME` or `file:PATH` into a Secret; raise ConfigError naming `where`."""
    kind, _, target = reference.partition(":")
    if kind == "env":
        value = os.environ.get(target)
        if not value:
            raise ConfigError(f"{where}: environment variable {target} is not set")
        return Secret(value)
    if kind == "file":
        try:
            return Secret(Path(target).read_text().strip())
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file: {exc.strerror}") from None
    raise ConfigError(f"{where}: secret must be 'env:NAME' or 'file:PATH', not a literal value")


def _require(section: dict, key: str, where: str):
    if key not in section:
        raise ConfigError(f"{where}: missing key {key!r}")
    return section[key]


def _parse_tenant(tenant_id: str, section: dict) -> Tenant:
    where = f"tenant {tenant_id!r}"
    c7 = section.get("commerce7")
    vs = section.get("vinoshipper")
    return Tenant(
        tenant_id=tenant_id,
        commerce7=_parse_commerce7(c7, f"{where} [commerce7]") if c7 else None,
        vinoshipper=_parse_vinoshipper(vs, f"{where} [vinoshipper]") if vs else None,
        chosen_states=frozenset(s.upper() for s in section.get("chosen_states", [])),
    )


def _parse_commerce7(section: dict, where: str) -> Commerce7Channel:
    optional = {k: section[k] for k in ("base_url", "rate_limit_per_minute") if k in section}
    return Commerce7Channel(
        tenant_slug=_require(section, "tenant_slug", where),
        app_id=_require(section, "app_id", where),
        app_secret=resolve_secret(_require(section, "app_secret", where), f"{where} app_secret"),
        webhook_user=_require(section, "webhook_user", where),
        webhook_password=resolve_secret(_require(section, "webhook_password", where), f"{where} webhook_password"),
        **optional,
    )


_PREFIX = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,22}[A-Za-z0-9])?$")


def _check_prefixes_unique(tenants) -> None:
    # Vinoshipper order numbers are global: two tenants with one prefix would collide there.
    seen: dict[str, str] = {}
    for tenant in tenants:
        if tenant.vinoshipper is None:
            continue
        prefix = tenant.vinoshipper.order_number_prefix
        if prefix in seen:
            raise ConfigError(f"tenants {seen[prefix]!r} and {tenant.tenant_id!r} share order_number_prefix {prefix!r}")
        seen[prefix] = tenant.tenant_id


def _parse_vinoshipper(section: dict, where: str) -> VinoshipperProvider:
    prefix = _require(section, "order_number_prefix", where)
    if not _PREFIX.match(prefix):
        raise ConfigError(
            f"{where}: order_number_prefix {prefix!r} must be 1-24 letters, digits, '-' or '_', starting and ending with a letter or digit"
        )
    optional = {k: section[k] for k in ("base_url", "timeout_s") if k in section}
    if "timeout_s" in optional and not (isinstance(optional["timeout_s"], int | float) and optional["timeout_s"] > 0):
        raise ConfigError(f"{where}: timeout_s must be a positive number of seconds")
    precheck = section.get("compliance_precheck", False)
    if not isinstance(precheck, bool):
        raise ConfigError(f"{where}: compliance_precheck must be true or false, not {precheck!r}")
    return VinoshipperProvider(
        api_key=_require(section, "api_key", where),
        api_secret=resolve_secret(_require(section, "api_secret", where), f"{where} api_secret"),
        order_number_prefix=_require(section, "order_number_prefix", where),
        webhook_token=resolve_secret(_require(section, "webhook_token", where), f"{where} webhook_token"),
        compliance_precheck=precheck,
        **optional,
    )
