"""The product map's rules: what a mapping may hold, an import checked row by row, and an
order's lines expanded through the map into the items a warehouse receives. Pure.

A mapping takes one channel SKU to components: one warehouse SKU with quantity 1 is an
alternative code, anything else a bundle. An import is one row per component (as the CSV is):
the rows of one tenant and channel SKU, wherever they are in the file, form one mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ordersync.common.v1 import order_pb2

from libs.connectors.base.contract import SubmissionItem

MAX_TEXT = 200  # longest SKU or name accepted
MAX_COMPONENTS = 50  # components of one bundle
MAX_QUANTITY = 10_000  # units of one component in one unit of the channel SKU


class InvalidMapping(ValueError):
    """A mapping's fields are wrong; the message names the field."""


@dataclass(frozen=True)
class Component:
    """One warehouse product in a mapping: its SKU there, how many one channel unit takes, and
    the name product sync creates it with ("" = its SKU)."""

    sku: str
    quantity: int = 1
    name: str = ""


@dataclass(frozen=True)
class ProductMapping:
    """A channel SKU and the components it stands for."""

    channel_sku: str
    components: tuple[Component, ...]

    @property
    def is_bundle(self) -> bool:
        return len(self.components) > 1 or self.components[0].quantity != 1


@dataclass(frozen=True)
class ImportRow:
    """One row of an import: its row number in the caller's file, its tenant, one component."""

    line: int
    tenant_id: str
    channel_sku: str
    component: Component


def check_mapping(mapping: ProductMapping) -> None:
    """Raise InvalidMapping naming the first wrong field."""
    _check_text("channel_sku", mapping.channel_sku)
    if not mapping.components:
        raise InvalidMapping("components: at least one is required")
    if len(mapping.components) > MAX_COMPONENTS:
        raise InvalidMapping(f"components: at most {MAX_COMPONENTS}, got {len(mapping.components)}")
    seen: set[str] = set()
    for component in mapping.components:
        _check_component(component)
        if component.sku in seen:
            raise InvalidMapping(f"sku {component.sku!r} is named twice: give it once with the total quantity")
        seen.add(component.sku)


def _check_component(component: Component) -> None:
    _check_text("sku", component.sku)
    if not 1 <= component.quantity <= MAX_QUANTITY:
        raise InvalidMapping(f"quantity must be 1 to {MAX_QUANTITY}, got {component.quantity}")
    if len(component.name) > MAX_TEXT:
        raise InvalidMapping(f"name is longer than {MAX_TEXT} characters")


def _check_text(field: str, value: str) -> None:
    if not value or not value.strip():
        raise InvalidMapping(f"{field} is required")
    if value != value.strip():
        raise InvalidMapping(f"{field} {value!r} has spaces around it")
    if len(value) > MAX_TEXT:
        raise InvalidMapping(f"{field} is longer than {MAX_TEXT} characters")


def check_import(rows: Sequence[ImportRow]) -> tuple[dict[str, list[ProductMapping]], list[str]]:
    """Group the rows into each tenant's mappings; return them and one message per bad row
    (every bad row named by its number; the mappings are to be used only when there is none)."""
    problems: list[str] = []
    grouped: dict[tuple[str, str], list[ImportRow]] = {}
    for row in rows:
        problem = _row_problem(row, grouped)
        if problem:
            problems.append(f"row {row.line}: {problem}")
        else:
            grouped.setdefault((row.tenant_id, row.channel_sku), []).append(row)
    mappings: dict[str, list[ProductMapping]] = {}
    for (tenant_id, channel_sku), members in grouped.items():
        if len(members) > MAX_COMPONENTS:
            problems.append(
                f"row {members[MAX_COMPONENTS].line}: {channel_sku!r} has more than {MAX_COMPONENTS} components"
            )
            continue
        components = tuple(m.component for m in members)
        mappings.setdefault(tenant_id, []).append(ProductMapping(channel_sku, components))
    return mappings, problems


def _row_problem(row: ImportRow, grouped: Mapping[tuple[str, str], list[ImportRow]]) -> str:
    try:
        _check_text("tenant_id", row.tenant_id)
        _check_text("channel_sku", row.channel_sku)
        _check_component(row.component)
    except InvalidMapping as exc:
        return str(exc)
    for other in grouped.get((row.tenant_id, row.channel_sku), ()):
        if other.component.sku == row.component.sku:
            return f"sku {row.component.sku!r} of {row.channel_sku!r} is also on row {other.line}"
    return ""


def expand(lines: Iterable[order_pb2.OrderLine], mappings: Mapping[str, ProductMapping]) -> tuple[SubmissionItem, ...]:
    """The order's lines as a warehouse receives them: a mapped SKU becomes its components (line
    quantity x component quantity, the channel line id kept); an unmapped SKU passes as it is."""
    items: list[SubmissionItem] = []
    for line in lines:
        mapping = mappings.get(line.sku)
        if mapping is None:
            items.append(SubmissionItem(line.channel_line_id, line.sku, line.quantity, line.title))
            continue
        for component in mapping.components:
            # A bundle's parts are titled by the part when it has a name, else by the line.
            title = component.name or line.title
            items.append(SubmissionItem(line.channel_line_id, component.sku, line.quantity * component.quantity, title))
    return tuple(items)


def catalog_products(mappings: Iterable[ProductMapping]) -> dict[str, str]:
    """Every warehouse SKU the mappings name -> the name to create it with (the first non-empty
    name given for it, else the SKU itself)."""
    named: dict[str, str] = {}
    for mapping in mappings:
        for component in mapping.components:
            if not named.get(component.sku):
                named[component.sku] = component.name
    return {sku: name or sku for sku, name in named.items()}
