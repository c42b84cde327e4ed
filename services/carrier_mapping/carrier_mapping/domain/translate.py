"""Pure code translation through ordersync's canonical carrier services, tenant overrides first.

Every system's codes map to a canonical service (UPS_GROUND), so translating a Commerce7 code
into Vinoshipper's is two lookups: commerce7 code -> canonical service -> vinoshipper code.
N systems need N code tables, not N² pairwise ones. On each leg a tenant's own row wins over
the global default, whose tenant_id is GLOBAL_TENANT ('').
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GLOBAL_TENANT = ""


@dataclass(frozen=True, slots=True)
class ServiceCode:
    """One system's code for a canonical carrier service, global or one tenant's override."""

    system: str  # 'vinoshipper'
    tenant_id: str  # GLOBAL_TENANT for the default, else the tenant whose override this is
    code: str  # exact and case-sensitive: '03'
    name: str  # the system's title: 'UPS Ground'
    carrier: str  # the carrier in the system's spelling: 'UPS'
    canonical_carrier: str  # ordersync's carrier id: 'UPS'
    canonical_service: str  # ordersync's service id: 'UPS_GROUND'


# eq=False: a CodeTable builds each answer once and hands out the same object every time, so
# callers may cache work per answer by identity (the gRPC layer caches its message).
@dataclass(frozen=True, slots=True, eq=False)
class Translation:
    """An answer: to_system's code, and whether a tenant's own row decided either leg."""

    code: ServiceCode
    tenant_override: bool


class TranslationError(Exception):
    """A query has no answer; the message is meant for the caller."""


class InvalidQuery(TranslationError):
    """A query field is empty or names a system this service does not know."""


class NoMapping(TranslationError):
    """Both systems are known, but the code does not lead to a code of the wanted system."""


class CodeTable:
    """An immutable snapshot of every system's codes, indexed for dict lookups.

    translate() only reads, so one table answers concurrent calls while its successor is built.
    """

    def __init__(self, systems: Iterable[str], codes: Iterable[ServiceCode]):
        """Index `codes`; raise ValueError if one names a system not in `systems`, or if two
        rows of one system and tenant share a code or a canonical service (either direction
        would then have two answers)."""
        self.systems = frozenset(systems)
        self._known = ", ".join(sorted(self.systems))
        # (tenant_id, system, code) -> ServiceCode: the leg into the canonical service.
        self._by_code: dict[tuple[str, str, str], ServiceCode] = {}
        # (tenant_id, system, canonical_service) -> the two possible answers, indexed by
        # tenant_override, built here so translate() allocates nothing.
        self._by_service: dict[tuple[str, str, str], tuple[Translation, Translation]] = {}
        for row in codes:
            self._add(row)

    def _add(self, row: ServiceCode) -> None:
        if row.system not in self.systems:
            raise ValueError(f"code {row.code!r} names unknown system {row.system!r}")
        code_key = (row.tenant_id, row.system, row.code)
        service_key = (row.tenant_id, row.system, row.canonical_service)
        if code_key in self._by_code:
            raise ValueError(f"duplicate code {code_key}")
        if service_key in self._by_service:
            raise ValueError(f"two codes for canonical service {service_key}")
        self._by_code[code_key] = row
        self._by_service[service_key] = (Translation(row, False), Translation(row, True))

    @property
    def row_count(self) -> int:
        """How many codes, global and overrides, the table holds (for logs)."""
        return len(self._by_code)

    def translate(self, tenant_id: str, from_system: str, code: str, to_system: str) -> Translation:
        """Return to_system's code for from_system's `code`, as tenant `tenant_id` sees it.

        Looks up from_system's code, then to_system's code for the same canonical service;
        on each leg tenant `tenant_id`'s row wins over the global one. The result's
        tenant_override is true when a tenant row decided either leg.
        Raises InvalidQuery when an argument is empty or a system is unknown, and NoMapping when
        from_system has no such code or to_system has no code for its canonical service.
        """
        if not (tenant_id and from_system and code and to_system):
            _raise_missing(tenant_id, from_system, code, to_system)
        self._require_known(from_system)
        self._require_known(to_system)
        source, source_override = _lookup(self._by_code, tenant_id, from_system, code)
        if source is None:
            raise NoMapping(_no_mapping(tenant_id, from_system, code, to_system))
        service = source.canonical_service
        answers, target_override = _lookup(self._by_service, tenant_id, to_system, service)
        if answers is None:
            reason = f"{to_system} has no code for {service}"
            raise NoMapping(f"{_no_mapping(tenant_id, from_system, code, to_system)}: {reason}")
        return answers[source_override or target_override]

    def _require_known(self, system: str) -> None:
        if system not in self.systems:
            raise InvalidQuery(f"unknown system {system!r}; known: {self._known}")


def _lookup(index: dict, tenant_id: str, system: str, key: str) -> tuple:
    """Return (value, True) from the tenant's row, else (global value or None, False)."""
    value = index.get((tenant_id, system, key))
    if value is not None:
        return value, True
    return index.get((GLOBAL_TENANT, system, key)), False


def _raise_missing(tenant_id: str, from_system: str, code: str, to_system: str) -> None:
    fields = dict(tenant_id=tenant_id, from_system=from_system, code=code, to_system=to_system)
    for name, value in fields.items():
        if not value:
            raise InvalidQuery(f"{name} is required")


def _no_mapping(tenant_id: str, from_system: str, code: str, to_system: str) -> str:
    return f"no mapping for {from_system} code {code!r} to {to_system} for tenant {tenant_id!r}"
