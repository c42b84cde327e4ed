"""Tests of date and money conversions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from libs.connectors.base import convert


def test_minor_units_become_exact_two_place_decimals() -> None:
    assert convert.minor_units_to_decimal(2499) == Decimal("24.99")
    assert str(convert.minor_units_to_decimal(2499)) == "24.99"
    assert str(convert.minor_units_to_decimal(4500)) == "45.00"
    assert str(convert.minor_units_to_decimal(-1)) == "-0.01"
    # 0.1 + 0.2 style drift is impossible: the sum of the parts is the total, exactly.
    parts = [convert.minor_units_to_decimal(n) for n in (10, 20)]
    assert sum(parts) == Decimal("0.30")


def test_offsets_are_normalised_to_utc() -> None:
    parsed = convert.parse_datetime("2024-05-01T10:03:12.5-07:00")
    assert parsed == datetime(2024, 5, 1, 17, 3, 12, 500000, tzinfo=UTC)


def test_text_without_offset_is_taken_as_utc() -> None:
    assert convert.parse_datetime("2024-05-01T17:03:12") == datetime(2024, 5, 1, 17, 3, 12, tzinfo=UTC)


@pytest.mark.parametrize("value", ["", "yesterday", "2024-13-01T00:00:00Z"])
def test_unreadable_date_times_raise(value: str) -> None:
    with pytest.raises(ValueError):
        convert.parse_datetime(value)


def test_iso_millis_format_has_three_decimals_and_z() -> None:
    ts = Timestamp(seconds=1714760400, nanos=123_456_789)
    assert convert.format_iso_millis(ts) == "2024-05-03T18:20:00.123Z"


def test_timestamps_round_trip_through_datetimes() -> None:
    moment = datetime(2024, 5, 3, 18, 20, 0, 250000, tzinfo=UTC)
    assert convert.timestamp_to_datetime(convert.to_timestamp(moment)) == moment


def test_dates_keep_their_calendar_day() -> None:
    assert convert.parse_date("1980-04-12") == "1980-04-12"
    assert convert.parse_date("1980-04-12T23:30:00-08:00") == "1980-04-12"
    with pytest.raises(ValueError):
        convert.parse_date("04/12/1980")
    with pytest.raises(ValueError):
        convert.parse_date("1980-02-30")


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("US", "US"),
        ("usa", "US"),
        ("GBR", "GB"),
        ("United Kingdom", "GB"),
        ("uk", "GB"),
        (" Scotland ", "GB"),
        ("New Zealand", "NZ"),
    ],
)
def test_a_country_written_as_a_code_or_a_name_gives_its_alpha_2_code(written, code):
    assert convert.country_code(written) == code


@pytest.mark.parametrize("written", ["", "  ", "Atlantis", "ZZ"])
def test_text_naming_no_country_gives_none(written):
    assert convert.country_code(written) is None
