"""Who may call a gRPC API: callers found by their bearer token, each granted tenants and roles.

Every service's API checks its callers with this module. A callers file (TOML) names each
caller, its token as a secret reference (`env:NAME` or `file:PATH`, never a literal), the
tenants it is granted (or "*"), its roles and, optionally, the services it may call:

    [callers.fulfillment-dispatch]
    token = "env:ORDERSYNC_PEERS_TOKEN"
    tenants = ["*"]                      # or a list of tenant ids
    roles = ["read"]                     # read (always), write, operator, delegate
    services = ["order-intake"]          # optional; every service when absent

Roles: every caller may read its tenants; `write` may change carrier mapping's tenant mappings
(the legacy key `write = true` says the same); `operator` may act on orders through the admin API
(Retry, Don't Send, Void Sync, Check Fulfillment); `delegate` may act on behalf of people it
signed in itself (the operator console), naming one in the call's metadata:

    ordersync-on-behalf-of: jane@winery.example
    ordersync-on-behalf-of-tenant: winery
    ordersync-on-behalf-of-roles: operator,write     # the person's roles; may be empty

The call then runs as caller "jane@winery.example via operator-console": granted that one tenant
(only if the delegate itself is granted it) and read plus those of the declared roles the
delegate holds, never `delegate`. Such metadata from a caller without `delegate`, without a
tenant, or naming the system's actor is refused with PERMISSION_DENIED.

Tokens are kept only as SHA-256 digests. Finding a caller hashes the presented token and looks
the digest up in a dict: one hash and one lookup per call, and the lookup's timing depends on
the digest, which reveals nothing about the stored tokens. The check runs inside the servicers
(`GrpcAccess`), not in an aio interceptor, which would wrap every handler in extra coroutines.
Health checking and reflection are not checked, so probes and tools keep working.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import grpc

from libs.platform.config import ConfigError
from libs.platform.grpc_server import abort
from libs.platform.secrets import resolve_secret

ALL_TENANTS = "*"
READ, WRITE, OPERATOR, DELEGATE = "read", "write", "operator", "delegate"
ROLES = frozenset({READ, WRITE, OPERATOR, DELEGATE})
CALLERS_VARIABLE = "ORDERSYNC_GRPC_CALLERS_FILE"
SERVICES = frozenset(
    {"order-intake", "compliance-routing", "fulfillment-dispatch", "tracking-writeback", "carrier-mapping"}
)
# The actor of the system's own entries in activity logs; an operator may not take this name.
SYSTEM_ACTOR = "ordersync"
# What a caller lacking the role may not do, for the PERMISSION_DENIED message.
_REFUSED = {WRITE: "change mappings of", OPERATOR: "act on orders of"}
_BEARER = "bearer "
# Call metadata of a delegated call (gRPC metadata keys are lower case).
AUTHORIZATION = "authorization"
ON_BEHALF_OF = "ordersync-on-behalf-of"
ON_BEHALF_OF_TENANT = "ordersync-on-behalf-of-tenant"
ON_BEHALF_OF_ROLES = "ordersync-on-behalf-of-roles"


class Unauthenticated(Exception):
    """No token, or a token no caller holds; the message never contains the token."""


class PermissionDenied(Exception):
    """The caller is known but not granted what it asked for; the message names the tenant."""


@dataclass(frozen=True)
class Caller:
    """One client of a service: its name (logs, activity logs), its tenants and its roles."""

    name: str
    tenants: frozenset[str]  # tenant ids, or {ALL_TENANTS}
    roles: frozenset[str] = frozenset({READ})

    @property
    def all_tenants(self) -> bool:
        return ALL_TENANTS in self.tenants

    @property
    def can_write(self) -> bool:
        return WRITE in self.roles

    def may_read(self, tenant_id: str) -> bool:
        return tenant_id in self.tenants or ALL_TENANTS in self.tenants

    def require_read(self, tenant_id: str) -> None:
        """Raise PermissionDenied unless the caller is granted `tenant_id`."""
        if not (tenant_id in self.tenants or ALL_TENANTS in self.tenants):
            raise PermissionDenied(f"caller {self.name!r} is not granted tenant {tenant_id!r}")

    def require(self, tenant_id: str, role: str) -> None:
        """Raise PermissionDenied unless the caller is granted `tenant_id` and holds `role`."""
        self.require_read(tenant_id)
        if role != READ and role not in self.roles:
            raise PermissionDenied(f"caller {self.name!r} may read but not {_REFUSED[role]} tenant {tenant_id!r}")

    def require_write(self, tenant_id: str) -> None:
        """Raise PermissionDenied unless the caller is granted `tenant_id` and may write."""
        self.require(tenant_id, WRITE)


class CallerDirectory:
    """Callers by token digest."""

    def __init__(self, callers: Iterable[tuple[str, Caller]]):
        """`callers` pairs each token with its caller; raise ValueError if two share a token."""
        self._by_digest: dict[bytes, Caller] = {}
        for token, caller in callers:
            digest = _digest(token)
            if digest in self._by_digest:
                raise ValueError(f"callers {self._by_digest[digest].name!r} and {caller.name!r} share a token")
            self._by_digest[digest] = caller

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, token: str | None) -> Caller:
        """Return the caller holding `token`; raise Unauthenticated when there is none."""
        if not token:
            raise Unauthenticated("missing bearer token: send metadata 'authorization: Bearer <token>'")
        caller = self._by_digest.get(_digest(token))
        if caller is None:
            raise Unauthenticated("unknown bearer token")
        return caller


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# ---- the callers file --------------------------------------------------------------------------


def load_callers(path: str | Path, service: str) -> CallerDirectory:
    """Parse the callers file, keeping the callers `service` admits; raise ConfigError naming
    the caller and key that is wrong, or when no caller may call `service`."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read callers file {path}: {exc}") from None
    sections = document.get("callers", {})
    if not sections:
        raise ConfigError(f"callers file {path} defines no [callers.<name>] section")
    entries = [entry for name, section in sections.items() if (entry := _parse_caller(name, section, service))]
    if not entries:
        raise ConfigError(f"callers file {path} admits no caller to {service}: check each caller's 'services'")
    try:
        return CallerDirectory(entries)
    except ValueError as exc:
        raise ConfigError(f"callers file {path}: {exc}") from None


def _parse_caller(name: str, section: dict, service: str) -> tuple[str, Caller] | None:
    where = f"caller {name!r}"
    if "token" not in section:
        raise ConfigError(f"{where}: missing key 'token'")
    tenants = section.get("tenants")
    if not _strings(tenants):
        raise ConfigError(f"{where}: 'tenants' must be a non-empty list of tenant ids, or [\"*\"]")
    roles = section.get("roles", [READ])
    if not _strings(roles) or not ROLES.issuperset(roles):
        raise ConfigError(f"{where}: 'roles' must list some of {', '.join(sorted(ROLES))}")
    write = section.get("write", False)
    if not isinstance(write, bool):
        raise ConfigError(f"{where}: 'write' must be true or false")
    if OPERATOR in roles and name == SYSTEM_ACTOR:
        raise ConfigError(f"{where}: an operator may not be named {SYSTEM_ACTOR!r}, the system's name in activity logs")
    services = section.get("services", sorted(SERVICES))
    if not _strings(services) or not SERVICES.issuperset(services):
        raise ConfigError(f"{where}: 'services' must list some of {', '.join(sorted(SERVICES))}")
    # Only the tokens of callers this service admits are resolved, so a service needs in its
    # environment (or mounted files) the tokens of its own callers only.
    if service not in services:
        return None
    token = resolve_secret(section["token"], where).value
    return token, Caller(name, frozenset(tenants), frozenset([READ, *roles, *([WRITE] if write else [])]))


def _strings(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


# ---- gRPC --------------------------------------------------------------------------------------


def token_of(context) -> str | None:
    """The bearer token in the call's `authorization` metadata, or None."""
    for key, value in context.invocation_metadata():
        if key == AUTHORIZATION:
            return _bearer_token(value)
    return None


def _bearer_token(value: str) -> str | None:
    return value[7:].strip() if value[:7].lower() == _BEARER else None


@dataclass(frozen=True)
class Delegation:
    """Whom a delegated call is made for: the on-behalf-of metadata as sent (None when absent)."""

    name: str | None
    tenant_id: str | None
    roles: str | None


def call_credentials(context) -> tuple[str | None, Delegation | None]:
    """The call's bearer token and its delegation (None when no on-behalf-of key is sent), read
    in one pass over the metadata; the first of repeated keys counts."""
    token = name = tenant_id = roles = None
    seen_token = False
    for key, value in context.invocation_metadata():
        if key == AUTHORIZATION:
            if not seen_token:
                token, seen_token = _bearer_token(value), True
        elif key == ON_BEHALF_OF:
            name = value if name is None else name
        elif key == ON_BEHALF_OF_TENANT:
            tenant_id = value if tenant_id is None else tenant_id
        elif key == ON_BEHALF_OF_ROLES:
            roles = value if roles is None else roles
    if name is None and tenant_id is None and roles is None:
        return token, None
    return token, Delegation(name, tenant_id, roles)


def acting_for(delegate: Caller, delegation: Delegation) -> Caller:
    """The caller a delegated call runs as: "<name> via <delegate>", granted the named tenant
    and read plus the declared roles `delegate` holds (never `delegate` itself).

    Raise PermissionDenied when `delegate` lacks the `delegate` role or the named tenant, or
    when the name or tenant is missing, or the name is the system's actor.
    """
    if DELEGATE not in delegate.roles:
        raise PermissionDenied(f"caller {delegate.name!r} may not act on behalf of others")
    name = (delegation.name or "").strip()
    tenant_id = (delegation.tenant_id or "").strip()
    if not name:
        raise PermissionDenied(f"caller {delegate.name!r} sent on-behalf-of metadata without {ON_BEHALF_OF}")
    if name == SYSTEM_ACTOR:
        raise PermissionDenied(f"caller {delegate.name!r} may not act on behalf of {SYSTEM_ACTOR!r}")
    if not tenant_id:
        raise PermissionDenied(f"caller {delegate.name!r} acts on behalf of {name!r} without {ON_BEHALF_OF_TENANT}")
    delegate.require_read(tenant_id)
    declared = {role.strip() for role in (delegation.roles or "").split(",")}
    roles = frozenset({READ, *(declared & delegate.roles)}) - {DELEGATE}
    return Caller(f"{name} via {delegate.name}", frozenset({tenant_id}), roles)


def on_behalf_of(name: str, tenant_id: str, roles: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    """Call metadata a delegate (the operator console) adds to its `bearer` metadata to act for
    `name` of `tenant_id`, who holds `roles`; the service grants only those the delegate holds."""
    return ((ON_BEHALF_OF, name), (ON_BEHALF_OF_TENANT, tenant_id), (ON_BEHALF_OF_ROLES, ",".join(roles)))


def cli_token(env_name: str, file: str | None, environ) -> str:
    """The token an operator CLI presents: read from `file` when given, else from environment
    variable `env_name` (never from a command-line value, which shells and `ps` would show).
    Raise ConfigError saying where no token was found; the message never holds a token."""
    if file:
        try:
            token = Path(file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read token file {file}: {exc.strerror}") from None
        if not token:
            raise ConfigError(f"token file {file} is empty")
        return token
    token = environ.get(env_name, "").strip()
    if not token:
        raise ConfigError(f"environment variable {env_name} (--token-env) holds no token; or give --token-file")
    return token


def bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata that presents `token` (none when `token` is empty)."""
    return ((AUTHORIZATION, f"Bearer {token}"),) if token else ()


class GrpcAccess:
    """The caller check of a servicer's calls: abort with UNAUTHENTICATED or PERMISSION_DENIED.

    The call's tenant is checked before anything is read, so a refusal reveals nothing of the
    tenant's data; messages name the caller and the tenant, never the token.
    """

    def __init__(self, callers: CallerDirectory):
        self._callers = callers

    def caller(self, context) -> Caller:
        """The caller the call runs as: the token's holder, or whom it acts for on a delegated
        call (see `acting_for`). Raise Unauthenticated or PermissionDenied."""
        token, delegation = call_credentials(context)
        caller = self._callers.find(token)
        return caller if delegation is None else acting_for(caller, delegation)

    def denial(self, context, tenant_id: str, role: str = READ, field: str = "tenant_id") -> tuple | None:
        """None when the call may go on; else the (status, message) to abort with. Synchronous,
        so a hot path awaits nothing when all is well."""
        checked = self._check(context, tenant_id, role, field)
        return checked if isinstance(checked, tuple) else None

    async def require(self, context, tenant_id: str, role: str = READ, *, field: str = "tenant_id") -> Caller:
        """Return the caller when it may use `role` on `tenant_id`; else abort the call.

        An empty tenant aborts with INVALID_ARGUMENT naming `field` (after the token and any
        delegation are checked).
        """
        checked = self._check(context, tenant_id, role, field)
        if isinstance(checked, tuple):
            await abort(context, *checked)
        return checked

    def _check(self, context, tenant_id: str, role: str, field: str) -> Caller | tuple[grpc.StatusCode, str]:
        """The caller when it may use `role` on `tenant_id`, else the (status, message) refusing it."""
        try:
            caller = self.caller(context)
            if not tenant_id:
                return grpc.StatusCode.INVALID_ARGUMENT, f"{field} is required"
            caller.require(tenant_id, role)
        except Unauthenticated as exc:
            return grpc.StatusCode.UNAUTHENTICATED, str(exc)
        except PermissionDenied as exc:
            return grpc.StatusCode.PERMISSION_DENIED, str(exc)
        return caller
