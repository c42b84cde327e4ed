"""Who may call: callers found by their bearer token, each granted some tenants, to read or write.

Tokens are kept only as SHA-256 digests. Finding a caller hashes the presented token and looks
the digest up in a dict: one hash and one lookup per call, and the lookup's timing depends on
the digest, which reveals nothing about the stored tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

ALL_TENANTS = "*"


class Unauthenticated(Exception):
    """No token, or a token no caller holds; the message never contains the token."""


class PermissionDenied(Exception):
    """The caller is known but not granted what it asked for; the message names the tenant."""


@dataclass(frozen=True)
class Caller:
    """One client of the service: its name (for logs), its tenants and whether it may write."""

    name: str
    tenants: frozenset[str]  # tenant ids, or {ALL_TENANTS}
    can_write: bool = False

    @property
    def all_tenants(self) -> bool:
        return ALL_TENANTS in self.tenants

    def may_read(self, tenant_id: str) -> bool:
        return tenant_id in self.tenants or ALL_TENANTS in self.tenants

    def require_read(self, tenant_id: str) -> None:
        """Raise PermissionDenied unless the caller is granted `tenant_id`."""
        if not (tenant_id in self.tenants or ALL_TENANTS in self.tenants):
            raise PermissionDenied(f"caller {self.name!r} is not granted tenant {tenant_id!r}")

    def require_write(self, tenant_id: str) -> None:
        """Raise PermissionDenied unless the caller is granted `tenant_id` and may write."""
        self.require_read(tenant_id)
        if not self.can_write:
            raise PermissionDenied(f"caller {self.name!r} may read but not change mappings of tenant {tenant_id!r}")


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
