"""VinSuite account settings: required keys, date options, defaults, unique prefix."""

from __future__ import annotations

import pytest

from libs.connectors.base.settings import SettingsError
from libs.connectors.vinsuite.connector import CONNECTOR, DEFAULT_BASE_URL
from libs.connectors.vinsuite.orders import DateSource
from libs.connectors.vinsuite.tests.builders import valid_order
from libs.platform.secrets import resolve_secret_value

WHERE = "tenant 't' [accounts.vs]"
SECTION = {
    "connector": "vinsuite",
    "winery_id": "4471",
    "username": "env:VS_USER",
    "password": "env:VS_PASS",
    "order_number_prefix": "CP-",
}


@pytest.fixture(autouse=True)
def secrets(monkeypatch):
    monkeypatch.setenv("VS_USER", "partner")
    monkeypatch.setenv("VS_PASS", "secret-password")


def parse(**changes):
    return CONNECTOR.parse_settings({**SECTION, **changes}, resolve_secret_value, WHERE)


def test_defaults_are_the_booked_order_date_the_event_pickup_date_and_production():
    settings = parse()
    assert settings.order_date is DateSource.BOOKED and settings.pickup_date is DateSource.EVENT
    assert settings.api.base_url == DEFAULT_BASE_URL and settings.api.requests_per_minute == 60
    assert "secret-password" not in repr(settings)


def test_each_date_option_is_read_and_anything_else_is_refused_naming_the_field():
    assert parse(order_date="sync_day").order_date is DateSource.SYNC_DAY
    assert parse(order_date="event", pickup_date="booked").pickup_date is DateSource.BOOKED
    with pytest.raises(SettingsError, match=r"order_date: must be one of booked, event, sync_day"):
        parse(order_date="tomorrow")
    with pytest.raises(SettingsError, match=r"pickup_date: must be one of booked, event, not 'sync_day'"):
        parse(pickup_date="sync_day")
    with pytest.raises(SettingsError, match="base_url"):
        parse(base_url="ftp://x")


def test_order_numbers_are_the_prefix_and_the_booking_code_and_prefixes_are_unique_keys():
    settings = parse()
    assert CONNECTOR.order_number(settings, valid_order()) == "CP-B1001"
    assert CONNECTOR.order_number(settings, valid_order(external_number="")) == "CP-R-88231"
    assert CONNECTOR.unique_keys(settings) != CONNECTOR.unique_keys(parse(order_number_prefix="CP2-"))
    with pytest.raises(SettingsError, match="order_number_prefix"):
        parse(order_number_prefix="")
