"""The Mintsoft account section: keys, defaults, what is refused, secrets hidden."""

from __future__ import annotations

import pytest

from libs.connectors.base.settings import SettingsError
from libs.connectors.mintsoft.connector import CONNECTOR

WHERE = "tenant 't' [accounts.warehouse]"
SECRETS = {"env:MS_PASSWORD": "pw-value", "env:MS_TOKEN": "token-value"}


def resolve(reference: str, where: str) -> str:
    return SECRETS[reference]


def parse(**section):
    return CONNECTOR.parse_settings(
        {"connector": "mintsoft", "username": "ms-user", "password": "env:MS_PASSWORD", **section}, resolve, WHERE
    )


def test_defaults_are_mintsofts_api_auto_courier_and_no_prefix():
    settings = parse()
    assert settings.api.base_url == "https://api.mintsoft.co.uk/api/"
    assert (settings.courier_service, settings.order_number_prefix, settings.api.client_id) == ("AUTO", "", None)
    assert settings.callback_base_url == "" and "pw-value" not in repr(settings)


def test_every_key_is_read():
    settings = parse(
        base_url="https://mintsoft.test/api",
        client_id=12,
        warehouse_id=3,
        courier_service="DPD Next Day",
        channel="Groupon",
        order_number_prefix="",
        callback_base_url="https://hub.example.test/",
        callback_token="env:MS_TOKEN",
    )
    assert settings.api.base_url == "https://mintsoft.test/api/" and settings.api.client_id == 12
    assert (settings.warehouse_id, settings.channel, settings.order_number_prefix) == (3, "Groupon", "")
    assert settings.callback_url("acme") == "https://hub.example.test/webhooks/mintsoft/acme/token-value"
    assert "token-value" not in repr(settings)


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"client_id": "12"}, "client_id"),
        ({"warehouse_id": 0}, "warehouse_id"),
        ({"callback_base_url": "https://hub.example.test"}, "callback_token"),
        ({"callback_base_url": "ftp://hub", "callback_token": "env:MS_TOKEN"}, "callback_base_url"),
    ],
)
def test_wrong_values_are_refused_naming_the_key(section, words):
    with pytest.raises(SettingsError, match=words):
        parse(**section)


def test_tenants_sharing_a_callback_token_or_a_prefix_on_one_client_collide_without_showing_the_token():
    one = parse(callback_base_url="https://hub.example.test", callback_token="env:MS_TOKEN")
    keys = CONNECTOR.unique_keys(one)
    assert keys == CONNECTOR.unique_keys(parse(callback_base_url="https://x.test", callback_token="env:MS_TOKEN"))
    assert not any("token-value" in key for key in keys)
    assert CONNECTOR.unique_keys(parse(order_number_prefix="A-")) != CONNECTOR.unique_keys(
        parse(order_number_prefix="B-")
    )
