"""Pure code translation through ordersync's canonical carriers and services, tenant overrides first.

Every system's codes map to a canonical carrier and service (UPS, UPS_GROUND), so translating a
Commerce7 code into Vinoshipper's is two lookups: commerce7 code -> canonical -> vinoshipper
code. N systems need N code tables, not N² pairwise ones. On each leg a tenant's own row wins
over the global default, whose tenant_id is GLOBAL_TENANT ('').

Some systems name couriers, not services (Groupon's approved couriers): their codes have an
empty canonical_service and answer for any service of their carrier when no code of the exact
service exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

GLOBAL_TENANT = ""
CARRIER_LEVEL = ""  # canonical_service of a code that names a carrier only


@dataclass(frozen=True, slots=True)
class ServiceCode:
    """One system's code for a canonical carrier (and service), global or one tenant's override."""

    system: str  # 'vinoshipper'
    tenant_id: str  # GLOBAL_TENANT for the default, else the tenant whose override this is
    code: str  # the primary spelling, exact and case-sensitive: '03'; sent to the system
    name: str  # the system's title: 'UPS Ground'
    carrier: str  # the carrier in the system's spelling: 'UPS'
    canonical_carrier: str  # ordersync's carrier id: 'UPS'
    canonical_service: str  # ordersync's service id: 'UPS_GROUND', or CARRIER_LEVEL
    aliases: tuple[str, ...] = ()  # other accepted spellings: ('ups',)

    @property
    def spellings(self) -> tuple[str, ...]:
        """The code and its aliases: every spelling that finds this row."""
        return (self.code, *self.aliases)


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

    def __init__(self, systems: Iterable[str], codes: Iterable[ServiceCode], version: int = 0):
        """Index `codes`; raise ValueError if one names a system not in `systems`, or if two rows
        of one system and tenant share a spelling or a canonical carrier and service (either
        direction would then have two answers). `version` is the change it reflects."""
        self.systems = frozenset(systems)
        self.version = version
        self._known = ", ".join(sorted(self.systems))
        # (tenant_id, system, spelling) -> ServiceCode: the leg into the canonical service.
        self._by_spelling: dict[tuple[str, str, str], ServiceCode] = {}
        # (tenant_id, system, canonical_carrier, canonical_service) -> the two possible answers,
        # indexed by tenant_override, built here so translate() allocates nothing.
        self._by_canonical: dict[tuple[str, str, str, str], tuple[Translation, Translation]] = {}
        self.rows: list[ServiceCode] = []
        for row in codes:
            self._add(row)

    def _add(self, row: ServiceCode) -> None:
        if row.system not in self.systems:
            raise ValueError(f"code {row.code!r} names unknown system {row.system!r}")
        for spelling in row.spellings:
            key = (row.tenant_id, row.system, spelling)
            other = self._by_spelling.get(key)
            if other is not None:
                raise ValueError(f"{row.system} spelling {spelling!r} is used by codes {other.code!r} and {row.code!r}")
            self._by_spelling[key] = row
        canonical = (row.tenant_id, row.system, row.canonical_carrier, row.canonical_service)
        if canonical in self._by_canonical:
            other = self._by_canonical[canonical][0].code
            raise ValueError(f"{row.system} codes {other.code!r} and {row.code!r} both map to {_canonical_name(row)}")
        self._by_canonical[canonical] = (Translation(row, False), Translation(row, True))
        self.rows.append(row)

    @property
    def row_count(self) -> int:
        """How many codes, global and overrides, the table holds (for logs)."""
        return len(self.rows)

    def translate(self, tenant_id: str, from_system: str, code: str, to_system: str) -> Translation:
        """Return to_system's code for from_system's `code` (or an alias), as `tenant_id` sees it.

        Looks up from_system's code, then to_system's code for the same canonical carrier and
        service, falling back to to_system's carrier-level code; on each leg the tenant's row wins
        over the global one. The result's tenant_override is true when a tenant row decided
        either leg. Raises InvalidQuery when an argument is empty or a system is unknown, and
        NoMapping when from_system has no such code or to_system has no code for its canonical
        carrier and service.
        """
        if not (tenant_id and from_system and code and to_system):
            _raise_missing(tenant_id, from_system, code, to_system)
        if from_system not in self.systems:
            self._raise_unknown(from_system)
        if to_system not in self.systems:
            self._raise_unknown(to_system)
        source = self._by_spelling.get((tenant_id, from_system, code))
        source_override = source is not None
        if source is None:
            source = self._by_spelling.get((GLOBAL_TENANT, from_system, code))
            if source is None:
                raise NoMapping(_no_mapping(tenant_id, from_system, code, to_system))
        answers, target_override = self._target(tenant_id, to_system, source)
        if answers is None:
            reason = f"{to_system} has no code for {_canonical_name(source)}"
            raise NoMapping(f"{_no_mapping(tenant_id, from_system, code, to_system)}: {reason}")
        return answers[source_override or target_override]

    def _target(self, tenant_id: str, system: str, source: ServiceCode) -> tuple:
        """Return (answers, tenant decided): the exact service first, then the carrier-level code."""
        index, carrier = self._by_canonical, source.canonical_carrier
        for service in dict.fromkeys((source.canonical_service, CARRIER_LEVEL)):
            answers = index.get((tenant_id, system, carrier, service))
            if answers is not None:
                return answers, True
            answers = index.get((GLOBAL_TENANT, system, carrier, service))
            if answers is not None:
                return answers, False
        return None, False

    def _raise_unknown(self, system: str) -> None:
        raise InvalidQuery(f"unknown system {system!r}; known: {self._known}")

    def rows_of(self, system: str, tenant_id: str | None) -> list[ServiceCode]:
        """A system's global rows, plus `tenant_id`'s own when given, ordered by code then tenant."""
        tenants = {GLOBAL_TENANT, tenant_id} if tenant_id else {GLOBAL_TENANT}
        rows = [r for r in self.rows if r.system == system and r.tenant_id in tenants]
        return sorted(rows, key=lambda r: (r.code, r.tenant_id))


def _canonical_name(row: ServiceCode) -> str:
    return row.canonical_service or f"carrier {row.canonical_carrier}"


def _raise_missing(tenant_id: str, from_system: str, code: str, to_system: str) -> None:
    fields = dict(tenant_id=tenant_id, from_system=from_system, code=code, to_system=to_system)
    for name, value in fields.items():
        if not value:
            raise InvalidQuery(f"{name} is required")


def _no_mapping(tenant_id: str, from_system: str, code: str, to_system: str) -> str:
    return f"no mapping for {from_system} code {code!r} to {to_system} for tenant {tenant_id!r}"
