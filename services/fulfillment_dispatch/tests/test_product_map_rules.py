"""The product map's pure rules: lines expanded through the map, an import's rows checked and
grouped with every bad row named, the SKUs product sync wants, and the CSV read back as written."""

from __future__ import annotations

import io

import pytest
from ordersync.common.v1 import order_pb2
from ordersync.dispatch.v1 import product_map_service_pb2 as pb

from fulfillment_dispatch.domain.product_map import (
    Component,
    ImportRow,
    InvalidMapping,
    ProductMapping,
    catalog_products,
    check_import,
    check_mapping,
    expand,
)
from fulfillment_dispatch.product_map_csv import CsvError, parse_csv, write_csv
from libs.connectors.base.contract import SubmissionItem

BUNDLE = ProductMapping("GRP-SET", (Component("MUG", 1, "Mug"), Component("TEA", 3, "Tea")))
ALTERNATIVE = ProductMapping("GRP-HOODIE", (Component("HD-42"),))


def line(line_id: str, sku: str, quantity: int) -> order_pb2.OrderLine:
    return order_pb2.OrderLine(channel_line_id=line_id, sku=sku, quantity=quantity, title=f"deal {sku}")


def test_a_bundle_line_becomes_its_components_and_other_lines_stay_as_they_are():
    lines = [line("l1", "GRP-SET", 2), line("l2", "GRP-HOODIE", 1), line("l3", "LOOSE", 5)]
    assert expand(lines, {"GRP-SET": BUNDLE, "GRP-HOODIE": ALTERNATIVE}) == (
        SubmissionItem("l1", "MUG", 2, "Mug"),
        SubmissionItem("l1", "TEA", 6, "Tea"),
        SubmissionItem("l2", "HD-42", 1, "deal GRP-HOODIE"),
        SubmissionItem("l3", "LOOSE", 5, "deal LOOSE"),
    )


def test_one_component_of_quantity_one_is_an_alternative_anything_else_a_bundle():
    assert not ALTERNATIVE.is_bundle and BUNDLE.is_bundle
    assert ProductMapping("GRP-2PK", (Component("TOWEL", 2),)).is_bundle


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        (ProductMapping("", (Component("A"),)), "channel_sku is required"),
        (ProductMapping("X", ()), "components: at least one is required"),
        (ProductMapping("X", tuple(Component(f"S{n}") for n in range(51))), "components: at most 50, got 51"),
        (ProductMapping("X", (Component("A", 10_001),)), "quantity must be 1 to 10000, got 10001"),
        (ProductMapping("X", (Component("A", 1, "n" * 201),)), "name is longer than 200 characters"),
        (ProductMapping("X" * 201, (Component("A"),)), "channel_sku is longer than 200 characters"),
    ],
)
def test_a_bad_mapping_names_its_field(mapping, words):
    with pytest.raises(InvalidMapping, match=words):
        check_mapping(mapping)


def test_an_import_groups_rows_by_tenant_and_channel_sku_in_file_order():
    rows = [
        ImportRow(2, "acme", "GRP-SET", Component("MUG", 1, "Mug")),
        ImportRow(3, "globex", "GRP-SET", Component("OTHER")),
        ImportRow(4, "acme", "GRP-SET", Component("TEA", 3, "Tea")),
    ]
    mappings, problems = check_import(rows)
    assert problems == []
    assert mappings == {"acme": [BUNDLE], "globex": [ProductMapping("GRP-SET", (Component("OTHER"),))]}


def test_an_import_names_every_bad_row():
    rows = [
        ImportRow(2, "acme", "GRP-SET", Component("MUG")),
        ImportRow(3, "", "GRP-SET", Component("MUG")),
        ImportRow(4, "acme", "GRP-SET", Component("MUG", 2)),
        ImportRow(5, "acme", "GRP-X", Component("A", -1)),
    ]
    _, problems = check_import(rows)
    assert problems == [
        "row 3: tenant_id is required",
        "row 4: sku 'MUG' of 'GRP-SET' is also on row 2",
        "row 5: quantity must be 1 to 10000, got -1",
    ]


def test_sync_wants_every_component_sku_once_named_by_the_map_or_else_by_its_sku():
    again = ProductMapping("GRP-MUG-2", (Component("MUG", 2),))
    unnamed = ProductMapping("GRP-Y", (Component("PLAIN"),))
    assert catalog_products([again, BUNDLE, ALTERNATIVE, unnamed]) == {
        "MUG": "Mug",
        "TEA": "Tea",
        "HD-42": "HD-42",
        "PLAIN": "PLAIN",
    }


def test_the_csv_written_is_read_back_to_the_same_rows():
    mappings = [
        pb.ProductMapping(
            channel_sku="GRP-SET",
            components=[
                pb.ProductComponent(sku="MUG", quantity=1, name='Mug, "blue"'),
                pb.ProductComponent(sku="TEA", quantity=3, name="Tea"),
            ],
        ),
        pb.ProductMapping(channel_sku="GRP-HOODIE", components=[pb.ProductComponent(sku="HD-42", quantity=1)]),
    ]
    out = io.StringIO()
    write_csv([("acme", mappings)], out)

    rows = parse_csv(out.getvalue())

    assert [
        (r.line, r.tenant_id, r.channel_sku, r.component.sku, r.component.quantity, r.component.name) for r in rows
    ] == [
        (2, "acme", "GRP-SET", "MUG", 1, 'Mug, "blue"'),
        (3, "acme", "GRP-SET", "TEA", 3, "Tea"),
        (4, "acme", "GRP-HOODIE", "HD-42", 1, ""),
    ]


def test_an_empty_quantity_is_one():
    [row] = parse_csv("tenant,channel_sku,sku,quantity,name\nacme,GRP-HOODIE,HD-42,,Hoodie\n")
    assert row.component.quantity == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "tenant,sku\nacme,A\n",
            "row 1: the header lacks column(s) channel_sku, quantity, name; expected tenant,channel_sku,sku,quantity,name",
        ),
        ("tenant,channel_sku,sku,quantity,name\n", "the file has no rows after the header"),
        (
            "tenant,channel_sku,sku,quantity,name\nacme,X,A,1.5,\nacme,X,B,1,,extra\n",
            "row 2: quantity '1.5' is not a whole number; row 3: expected 5 fields",
        ),
    ],
)
def test_a_csv_of_the_wrong_shape_names_its_rows(text, words):
    with pytest.raises(CsvError) as refused:
        parse_csv(text)
    assert str(refused.value) == words
