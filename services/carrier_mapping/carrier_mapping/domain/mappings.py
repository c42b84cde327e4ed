"""Pure checks of tenant mappings before they are written: one row's fields, then a whole import.

Every message names the field (and, in an import, the line) so an operator can fix the input
without reading code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from carrier_mapping.domain.translate import CodeTable, ServiceCode

_CANONICAL = re.compile(r"^[A-Z0-9_]+$")
MAX_TEXT = 200  # longest code, name, carrier or alias accepted


class InvalidMapping(Exception):
    """A mapping's fields are wrong; the message names the field."""


class MappingConflict(Exception):
    """A mapping is valid alone but clashes with another of the tenant's codes or aliases."""


@dataclass(frozen=True)
class ImportLine:
    """One row of an import: the line it came from and the mapping, tenant included."""

    line: int
    code: ServiceCode


def check_mapping(code: ServiceCode, systems: Iterable[str]) -> None:
    """Raise InvalidMapping naming the first wrong field of a tenant's mapping."""
    if not code.tenant_id:
        raise InvalidMapping("tenant_id is required")
    for field in ("system", "code", "name", "carrier", "canonical_carrier"):
        value = getattr(code, field)
        if not value or not value.strip():
            raise InvalidMapping(f"{field} is required")
        if len(value) > MAX_TEXT:
            raise InvalidMapping(f"{field} is longer than {MAX_TEXT} characters")
    known = sorted(systems)
    if code.system not in known:
        raise InvalidMapping(f"unknown system {code.system!r}; known: {', '.join(known)}")
    if not _CANONICAL.match(code.canonical_carrier):
        raise InvalidMapping(f"canonical_carrier {code.canonical_carrier!r} must be upper-case letters, digits and _")
    if code.canonical_service and not _CANONICAL.match(code.canonical_service):
        raise InvalidMapping(f"canonical_service {code.canonical_service!r} must be upper-case letters, digits and _")
    _check_aliases(code)


def _check_aliases(code: ServiceCode) -> None:
    seen = {code.code}
    for alias in code.aliases:
        if not alias.strip():
            raise InvalidMapping("aliases must not be empty")
        if len(alias) > MAX_TEXT:
            raise InvalidMapping(f"alias {alias[:20]!r}... is longer than {MAX_TEXT} characters")
        if alias in seen:
            raise InvalidMapping(f"alias {alias!r} repeats the code or another alias")
        seen.add(alias)


def check_table(table_rows: Sequence[ServiceCode], systems: Iterable[str]) -> None:
    """Raise MappingConflict when the rows, as they would be stored, cannot form a CodeTable."""
    try:
        CodeTable(systems, table_rows)
    except ValueError as exc:
        raise MappingConflict(str(exc)) from None


def check_import(lines: Sequence[ImportLine], systems: Iterable[str]) -> list[str]:
    """Return one message per bad line (empty when all are good): bad fields first, then any two
    lines that would store the same code, spelling or canonical target for one tenant."""
    systems = frozenset(systems)
    problems: list[str] = []
    seen_code: dict[tuple, int] = {}
    seen_spelling: dict[tuple, int] = {}
    seen_canonical: dict[tuple, int] = {}
    for item in lines:
        code, line = item.code, item.line
        try:
            check_mapping(code, systems)
        except InvalidMapping as exc:
            problems.append(f"line {line}: {exc}")
            continue
        clash = _first_clash(item, seen_code, seen_spelling, seen_canonical)
        if clash:
            problems.append(f"line {line}: {clash}")
    return problems


def _first_clash(item: ImportLine, seen_code: dict, seen_spelling: dict, seen_canonical: dict) -> str:
    code, line = item.code, item.line
    owner = (code.tenant_id, code.system)
    key = (*owner, code.code)
    if key in seen_code:
        return f"{code.system} code {code.code!r} of tenant {code.tenant_id!r} is also on line {seen_code[key]}"
    seen_code[key] = line
    for spelling in code.spellings:
        key = (*owner, spelling)
        if key in seen_spelling and seen_spelling[key] != line:
            return f"spelling {spelling!r} is also on line {seen_spelling[key]}"
        seen_spelling[key] = line
    canonical = (*owner, code.canonical_carrier, code.canonical_service)
    if canonical in seen_canonical:
        target = code.canonical_service or f"carrier {code.canonical_carrier}"
        return f"{target} is also mapped on line {seen_canonical[canonical]}"
    seen_canonical[canonical] = line
    return ""


def check_import_against_stored(lines: Sequence[ImportLine], stored: Iterable[ServiceCode]) -> list[str]:
    """Return one message per line that clashes with a stored row it does not replace.

    An import replaces the stored row of the same tenant, system and code, so only the other
    stored rows of the line's tenant and system can clash: by spelling or by canonical target.
    """
    replaced = {(i.code.tenant_id, i.code.system, i.code.code) for i in lines}
    spellings: dict[tuple, str] = {}
    targets: dict[tuple, str] = {}
    for row in stored:
        if (row.tenant_id, row.system, row.code) in replaced:
            continue
        for spelling in row.spellings:
            spellings[(row.tenant_id, row.system, spelling)] = row.code
        targets[(row.tenant_id, row.system, row.canonical_carrier, row.canonical_service)] = row.code
    problems = []
    for item in lines:
        clash = _stored_clash(item.code, spellings, targets)
        if clash:
            problems.append(f"line {item.line}: {clash}")
    return problems


def _stored_clash(code: ServiceCode, spellings: dict, targets: dict) -> str:
    owner = (code.tenant_id, code.system)
    for spelling in code.spellings:
        other = spellings.get((*owner, spelling))
        if other is not None:
            return f"spelling {spelling!r} is already used by {code.system} code {other!r} of tenant {code.tenant_id!r}"
    other = targets.get((*owner, code.canonical_carrier, code.canonical_service))
    if other is not None:
        target = code.canonical_service or f"carrier {code.canonical_carrier}"
        return f"{target} is already mapped by {code.system} code {other!r} of tenant {code.tenant_id!r}"
    return ""
