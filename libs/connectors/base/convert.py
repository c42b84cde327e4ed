"""Conversions for every connector: ISO-8601 <-> protobuf Timestamp, minor units <-> Decimal."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pycountry
from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.common.v1 import money_pb2

_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:$|[T ])")


def parse_datetime(value: str) -> datetime:
    """Parse ISO-8601 text into an aware UTC datetime.

    Args:
        value: e.g. "2024-05-01T17:03:12.123Z" or "2024-05-01T10:03:12-07:00". Text without an
            offset is taken as UTC, which is what Commerce7 and Vinoshipper send.

    Raises:
        ValueError: the text is not an ISO-8601 date-time.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("empty date-time")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(value: str) -> str:
    """Return the calendar date of ISO text as "YYYY-MM-DD".

    Args:
        value: "YYYY-MM-DD" or a date-time starting with one. The literal date is kept, not
            shifted to UTC: a birth date or a requested ship date is a calendar day, not an
            instant.

    Raises:
        ValueError: the text does not start with a valid date.
    """
    match = _DATE_PREFIX.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError("not a date")
    return date.fromisoformat(match.group(1)).isoformat()


def to_timestamp(moment: datetime) -> Timestamp:
    """Convert an aware datetime to a protobuf Timestamp (microsecond precision kept)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    utc = moment.astimezone(UTC)
    return Timestamp(seconds=calendar.timegm(utc.timetuple()), nanos=utc.microsecond * 1000)


def timestamp_to_datetime(ts: Timestamp) -> datetime:
    """Convert a protobuf Timestamp to an aware UTC datetime (sub-microsecond digits dropped)."""
    return datetime.fromtimestamp(ts.seconds, tz=UTC).replace(microsecond=ts.nanos // 1000)


def format_iso_millis(moment: datetime | Timestamp) -> str:
    """Format as ISO-8601 UTC with milliseconds and "Z", e.g. "2024-05-03T18:20:00.000Z"."""
    if isinstance(moment, Timestamp):
        moment = timestamp_to_datetime(moment)
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def money(minor_units: int, currency_code: str) -> money_pb2.Money:
    """Build a Money from integer minor units (cents for USD)."""
    return money_pb2.Money(currency_code=currency_code, minor_units=minor_units)


def minor_units_to_decimal(minor_units: int, exponent: int = 2) -> Decimal:
    """Convert integer minor units to an exact Decimal amount: 2499 -> Decimal("24.99").

    Decimal arithmetic keeps the value exact; float division would turn some cents into
    29.990000000000002-style values on the way to a vendor.
    """
    return Decimal(int(minor_units)).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


# Spellings people and channels use that ISO 3166 does not list.
_COUNTRY_ALIASES = {"UK": "GB", "USA": "US", "ENGLAND": "GB", "SCOTLAND": "GB", "WALES": "GB"}


def country_code(text: str) -> str | None:
    """The ISO 3166 alpha-2 code of a country written as its alpha-2 or alpha-3 code or its name
    (any case, pycountry's lookup), or None when it names no country."""
    text = text.strip()
    if not text:
        return None
    alias = _COUNTRY_ALIASES.get(text.upper())
    if alias:
        return alias
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None
