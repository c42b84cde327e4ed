"""The merchants' staff who may sign in: one TOML file, each member bound to one tenant.

    [staff."jane@winery.example"]
    tenant = "harbour-cellars"
    password = "scrypt:16384:8:1:<salt hex>:<hash hex>"   # python -m operator_console hash-password
    roles = ["operator"]                                   # operator: act on orders; write: fix mappings

Every member may view their tenant's orders; `operator` adds the order actions (Retry, Don't
Send, Void Sync, Check Fulfillment) and the failures view's bulk actions, `write` the mapping
fixes. Passwords are kept only as scrypt hashes (hashlib's, memory-hard; no extra dependency).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from libs.platform.auth import SYSTEM_ACTOR
from libs.platform.config import ConfigError

OPERATOR, WRITE = "operator", "write"
STAFF_ROLES = frozenset({OPERATOR, WRITE})
_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1  # about 16 MiB and tens of milliseconds per check


@dataclass(frozen=True)
class StaffMember:
    """A signed-in person: the name the activity logs show, their tenant and their roles."""

    name: str
    tenant_id: str
    roles: frozenset[str] = frozenset()

    @property
    def is_operator(self) -> bool:
        return OPERATOR in self.roles

    @property
    def can_write(self) -> bool:
        return WRITE in self.roles


def hash_password(password: str) -> str:
    """The staff file's `password` value for `password`, with a fresh salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"{_SCHEME}:{_N}:{_R}:{_P}:{salt.hex()}:{digest.hex()}"


def password_matches(stored: str, password: str) -> bool:
    """True when `password` hashes to `stored`; compared in constant time."""
    scheme, n, r, p, salt, digest = stored.split(":")
    if scheme != _SCHEME:
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, bytes.fromhex(digest))


class StaffDirectory:
    """Members by name, with their password hashes; `authenticate` signs one in."""

    def __init__(self, members: dict[str, tuple[StaffMember, str]]):
        self._members = members
        # A sign-in with an unknown name still hashes, so timing does not tell names apart.
        self._decoy = hash_password(secrets.token_urlsafe(16))

    def __len__(self) -> int:
        return len(self._members)

    def authenticate(self, name: str, password: str) -> StaffMember | None:
        """The member when `password` is theirs; None otherwise (the same for an unknown name)."""
        member, stored = self._members.get(name.strip().lower(), (None, self._decoy))
        matches = password_matches(stored, password)
        return member if matches and member is not None else None

    def find(self, name: str) -> StaffMember | None:
        """The member named `name` as the staff file has them now (a session's member is looked
        up again on every request, so removing someone from the file signs them out)."""
        entry = self._members.get(name)
        return entry[0] if entry else None


def load_staff(path: Path) -> StaffDirectory:
    """Parse the staff file; raise ConfigError naming the member and key that is wrong."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read staff file {path}: {exc}") from None
    sections = document.get("staff", {})
    if not sections:
        raise ConfigError(f'staff file {path} defines no [staff."<name>"] section')
    return StaffDirectory({name.lower(): _parse_member(name.lower(), section) for name, section in sections.items()})


def _parse_member(name: str, section: dict) -> tuple[StaffMember, str]:
    where = f"staff member {name!r}"
    if name == SYSTEM_ACTOR:
        raise ConfigError(f"{where}: no one may be named {SYSTEM_ACTOR!r}, the system's name in activity logs")
    tenant = section.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise ConfigError(f"{where}: 'tenant' must be a tenant id")
    password = section.get("password")
    if not isinstance(password, str) or password.count(":") != 5 or not password.startswith(f"{_SCHEME}:"):
        raise ConfigError(f"{where}: 'password' must be a hash made by `python -m operator_console hash-password`")
    roles = section.get("roles", [])
    if not isinstance(roles, list) or not STAFF_ROLES.issuperset(roles):
        raise ConfigError(f"{where}: 'roles' must list some of {', '.join(sorted(STAFF_ROLES))}")
    return StaffMember(name, tenant, frozenset(roles)), password
