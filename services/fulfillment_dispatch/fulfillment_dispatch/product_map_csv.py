"""The product map as CSV, one row per component, so a merchant can edit it in a spreadsheet:

    tenant,channel_sku,sku,quantity,name
    acme,GRP-TOWEL-2PK,TOWEL-WHITE,2,White bath towel
    acme,GRP-GIFT-SET,MUG-BLUE,1,Blue mug
    acme,GRP-GIFT-SET,TEA-EARLGREY,3,Earl Grey tea (20 bags)
    acme,GRP-HOODIE-M,HD-0042-M,1,Hoodie M

Rows of one tenant and channel_sku form one mapping (a bundle when there are several, or a
quantity other than 1; an alternative code otherwise), in their order in the file. An empty
quantity is 1; name is what product sync creates the product with (empty: its SKU). Export
writes what import reads back. Rows are numbered as a spreadsheet shows them (the header is
row 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from ordersync.dispatch.v1 import product_map_service_pb2 as pb

COLUMNS = ("tenant", "channel_sku", "sku", "quantity", "name")


class CsvError(ValueError):
    """The file's shape is wrong; the message names every bad row."""


def parse_csv(text: str) -> list[pb.ProductImportRow]:
    """Import rows from CSV text with a COLUMNS header; raise CsvError naming every row whose
    shape is wrong (a missing field, a quantity that is not a whole number). The values are
    checked by the service, which names every row it refuses."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise CsvError(f"row 1: the header lacks column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    rows, problems = [], []
    for record in reader:
        line = reader.line_num
        if None in record or any(record[c] is None for c in COLUMNS):
            problems.append(f"row {line}: expected {len(COLUMNS)} fields")
            continue
        quantity = record["quantity"].strip() or "1"
        if not quantity.isdigit():
            problems.append(f"row {line}: quantity {record['quantity']!r} is not a whole number")
            continue
        component = pb.ProductComponent(sku=record["sku"], quantity=min(int(quantity), 2**31 - 1), name=record["name"])
        rows.append(
            pb.ProductImportRow(
                line=line, tenant_id=record["tenant"], channel_sku=record["channel_sku"], component=component
            )
        )
    if problems:
        raise CsvError("; ".join(problems))
    if not rows:
        raise CsvError("the file has no rows after the header")
    return rows


def write_csv(tenant_mappings: Iterable[tuple[str, Sequence[pb.ProductMapping]]], out) -> None:
    """Write each tenant's mappings as CSV that parse_csv reads back."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for tenant_id, mappings in tenant_mappings:
        for mapping in mappings:
            for c in mapping.components:
                writer.writerow([tenant_id, mapping.channel_sku, c.sku, c.quantity, c.name])
