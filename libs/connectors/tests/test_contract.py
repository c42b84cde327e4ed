"""The connector contract, checked for every registered connector.

What the services rely on without knowing the vendor: metadata that is complete and consistent,
a declared capability for each implemented method and an implementation for each declared
capability, account settings parsed strictly with secrets hidden, pure and repeatable
build/parse, errors that say whether a retry can succeed, and stable order numbers (our
idempotency key at a provider). A new connector passes this suite once its
`tests/contract_samples.py` exists (docs/adding-a-connector.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from libs.connectors.base.contract import (
    OPTIONAL_PROTOCOLS,
    Capability,
    ChannelConnector,
    Connector,
    ExportedOrder,
    ExportPage,
    ExportStatus,
    Ignored,
    NoticeHead,
    ParsedOrder,
    ProviderConnector,
    PullAction,
    PulledByProvider,
    PushRequest,
    Role,
)
from libs.connectors.base.errors import ConnectorError
from libs.connectors.base.settings import SettingsError
from libs.connectors.base.testing import ContractSamples
from libs.connectors.registry import default_registry
from libs.platform.secrets import resolve_secret_value

REGISTRY = default_registry()
CONNECTORS = [pytest.param(c, id=c.info.id) for c in REGISTRY]
STATUSES = {"sending", "retry_wait", "sent", "failed", "not_required", "voided"}
# A capability and the methods that implement it, on the side that has it.
METHODS = {
    Capability.PUSH_ORDERS: (ChannelConnector, ("authenticate_push", "parse_push")),
    Capability.PULL_ORDERS: (ChannelConnector, ("fetch_page",)),
    Capability.ACKNOWLEDGE: (ChannelConnector, ("acknowledge",)),
    Capability.SYNC_RESULTS: (ChannelConnector, ("report_sync_results",)),
    Capability.WRITE_BACK: (ChannelConnector, ("write_back",)),
    Capability.READ_BACK: (ProviderConnector, ("read_back",)),
    Capability.POLL_SHIPMENTS: (ProviderConnector, ("read_back_since",)),
    Capability.CANCEL: (ProviderConnector, ("cancel",)),
    Capability.PUSH_NOTICES: (ProviderConnector, ("authenticate_notice", "parse_notice", "resolve_notice")),
}
MALFORMED = (b"", b"{", b"[]", b'{"a":' * 40 + b"1" + b"}" * 40, b'"\\u0000"', b"null")


def samples(connector: Connector) -> ContractSamples:
    module = importlib.import_module(f"libs.connectors.{connector.info.id}.tests.contract_samples")
    return module.SAMPLES


def settings_of(connector: Connector, monkeypatch) -> Hashable:
    sample = samples(connector)
    for name, value in sample.secrets.items():
        monkeypatch.setenv(name, value)
    return connector.parse_settings(sample.account, resolve_secret_value, "tenant 't' [accounts.a]")


def overrides(connector: Connector, base: type, method: str) -> bool:
    return getattr(type(connector), method) is not getattr(base, method)


@pytest.mark.parametrize("connector", CONNECTORS)
def test_metadata_is_complete(connector: Connector):
    info = connector.info
    assert REGISTRY.get(info.id) is connector
    assert info.id.isidentifier() and info.id == info.id.lower()
    assert info.label and info.roles
    assert info.limits.batch_size >= 1 and info.limits.concurrency >= 1
    assert info.limits.requests_per_minute is None or info.limits.requests_per_minute >= 1
    if Role.PROVIDER in info.roles:
        # A provider that fetches orders from us has one status more: held until it fetches them.
        pulled = {"awaiting_pull"} if info.can(Capability.PULLED_BY_PROVIDER) else set()
        assert set(info.status_titles) == STATUSES | pulled, "a provider names every sync status for operators"
        assert Capability.SUBMIT in info.capabilities
    if Role.CHANNEL in info.roles:
        assert info.capabilities & {Capability.PUSH_ORDERS, Capability.PULL_ORDERS}, "orders must come in somehow"


@pytest.mark.parametrize("connector", CONNECTORS)
def test_declared_capabilities_are_implemented_and_implemented_ones_declared(connector: Connector):
    for capability, (side, methods) in METHODS.items():
        if not isinstance(connector, side):
            assert capability not in connector.info.capabilities
            continue
        implemented = [overrides(connector, side, m) for m in methods]
        declared = connector.info.can(capability)
        assert all(implemented) == declared and any(implemented) == declared, (capability, implemented)
    for capability, protocol in OPTIONAL_PROTOCOLS.items():
        assert isinstance(connector, protocol) == connector.info.can(capability), capability


@pytest.mark.parametrize("connector", CONNECTORS)
def test_settings_parse_to_a_hashable_value_that_hides_secrets(connector: Connector, monkeypatch):
    settings = settings_of(connector, monkeypatch)
    assert hash(settings) == hash(settings_of(connector, monkeypatch))
    for secret in samples(connector).secrets.values():
        assert secret not in repr(settings) and secret not in str(settings)


@pytest.mark.parametrize("connector", CONNECTORS)
def test_settings_refuse_unknown_keys_and_literal_secrets_naming_where(connector: Connector, monkeypatch):
    sample = samples(connector)
    for name, value in sample.secrets.items():
        monkeypatch.setenv(name, value)
    where = "tenant 't' [accounts.a]"
    with pytest.raises(SettingsError, match=r"tenant 't' \[accounts.a\].*'no_such_option'"):
        connector.parse_settings({**sample.account, "no_such_option": 1}, resolve_secret_value, where)
    secret_key = next(k for k, v in sample.account.items() if isinstance(v, str) and v.startswith("env:"))
    with pytest.raises(Exception, match="literal"):
        connector.parse_settings({**sample.account, secret_key: "plain"}, resolve_secret_value, where)
    required = next(k for k in sample.account if k != "connector")
    without = {k: v for k, v in sample.account.items() if k != required}
    with pytest.raises(SettingsError, match=required):
        connector.parse_settings(without, resolve_secret_value, where)


PUSH = [pytest.param(c, id=c.info.id) for c in REGISTRY if c.info.can(Capability.PUSH_ORDERS)]


@pytest.mark.parametrize("connector", PUSH)
def test_pushes_authenticate_only_with_the_accounts_credentials(connector: ChannelConnector, monkeypatch):
    settings = settings_of(connector, monkeypatch)
    sample = samples(connector)
    assert connector.authenticate_push(settings, PushRequest(sample.push_headers, sample.push_path_tail))
    assert not connector.authenticate_push(settings, PushRequest({}, ""))
    wrong = {k: v[:-2] + "xx" for k, v in sample.push_headers.items()}
    assert not connector.authenticate_push(settings, PushRequest(wrong, sample.push_path_tail + "x"))


@pytest.mark.parametrize("connector", PUSH)
def test_pushed_orders_parse_purely_into_canonical_orders(connector: ChannelConnector, monkeypatch):
    settings = settings_of(connector, monkeypatch)
    for body in samples(connector).push_bodies:
        first = connector.parse_push(settings, body, "tenant-a")
        again = connector.parse_push(settings, body, "tenant-a")
        assert isinstance(first, ParsedOrder) and isinstance(again, ParsedOrder)
        assert first.order == again.order and first.issues == again.issues
        assert first.order.channel == connector.info.id
        assert first.order.tenant_id == "tenant-a"
        assert first.order.external_id and first.order.revision


@pytest.mark.parametrize("connector", PUSH)
@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_pushes_raise_errors_that_say_no_retry_helps(connector: ChannelConnector, body, monkeypatch):
    settings = settings_of(connector, monkeypatch)
    try:
        result = connector.parse_push(settings, body, "tenant-a")
    except ConnectorError as exc:
        assert exc.retryable is False and exc.reason_code.isupper()
    else:
        assert isinstance(result, Ignored) and result.reason


PROVIDERS = [pytest.param(c, id=c.info.id) for c in REGISTRY if isinstance(c, ProviderConnector)]


@pytest.mark.parametrize("connector", PROVIDERS)
def test_order_numbers_are_stable_and_differ_between_orders(connector: ProviderConnector, monkeypatch):
    settings = settings_of(connector, monkeypatch)
    order = samples(connector).order
    number = connector.order_number(settings, order)
    assert number and number == connector.order_number(settings, order)
    other = type(order)()
    other.CopyFrom(order)
    other.external_number = order.external_number + "7"
    assert connector.order_number(settings, other) != number


NOTICES = [pytest.param(c, id=c.info.id) for c in REGISTRY if c.info.can(Capability.PUSH_NOTICES)]


@pytest.mark.parametrize("connector", NOTICES)
def test_notices_authenticate_and_parse_purely(connector: ProviderConnector, monkeypatch):
    settings = settings_of(connector, monkeypatch)
    sample = samples(connector)
    assert connector.authenticate_notice(settings, PushRequest(sample.notice_headers, sample.notice_path_tail))
    assert not connector.authenticate_notice(settings, PushRequest({}, ""))
    assert not connector.authenticate_notice(settings, PushRequest({}, sample.notice_path_tail + "x"))
    for body in sample.notice_bodies:
        head = connector.parse_notice(body)
        assert isinstance(head, NoticeHead) and (head.order_number or head.reference)
        assert head == connector.parse_notice(body)


@pytest.mark.parametrize("connector", NOTICES)
@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_notices_raise_errors_that_say_no_retry_helps(connector: ProviderConnector, body):
    with pytest.raises(ConnectorError) as raised:
        connector.parse_notice(body)
    assert raised.value.retryable is False and raised.value.reason_code.isupper()


QUOTERS = [pytest.param(c, id=c.info.id) for c in REGISTRY if c.info.can(Capability.RATE_QUOTES)]


@pytest.mark.parametrize("connector", QUOTERS)
def test_a_rate_quoting_account_states_its_markup_as_an_exact_percentage(connector, monkeypatch):
    markup = connector.rate_markup_percent(settings_of(connector, monkeypatch))
    assert isinstance(markup, Decimal) and markup.is_finite() and markup >= 0


@pytest.mark.parametrize("connector", [pytest.param(c, id=c.info.id) for c in REGISTRY])
def test_freight_is_written_only_by_channels(connector: Connector):
    assert not connector.info.can(Capability.FREIGHT_WRITE) or isinstance(connector, ChannelConnector)


PULLED = [pytest.param(c, id=c.info.id) for c in REGISTRY if c.info.can(Capability.PULLED_BY_PROVIDER)]
XML_MALFORMED = (b"", b"<", b"<a>", b"null", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>')


@pytest.mark.parametrize("connector", PULLED)
def test_pulls_authenticate_only_with_the_accounts_credentials(connector: ProviderConnector, monkeypatch):
    assert isinstance(connector, PulledByProvider)
    settings = settings_of(connector, monkeypatch)
    sample = samples(connector)
    assert connector.authenticate_pull(settings, PushRequest(sample.pull_headers))
    assert not connector.authenticate_pull(settings, PushRequest({}))
    wrong = {k: v[:-4] + "AAA=" for k, v in sample.pull_headers.items()}
    assert not connector.authenticate_pull(settings, PushRequest(wrong))


@pytest.mark.parametrize("connector", PULLED)
def test_pull_calls_parse_into_a_window_and_malformed_ones_say_no_retry_helps(
    connector: ProviderConnector, monkeypatch
):
    assert isinstance(connector, PulledByProvider)
    settings = settings_of(connector, monkeypatch)
    method, query = samples(connector).pull_export
    asked = connector.parse_pull(settings, method, query)
    assert asked.action is PullAction.EXPORT and asked.page >= 1
    assert asked.start is not None and asked.end is not None and asked.start < asked.end
    assert asked.start.utcoffset() == timedelta(0)  # windows are UTC
    assert asked == connector.parse_pull(settings, method, query)
    for wrong_method, wrong_query in (("DELETE", query), (method, {}), (method, {**query, "page": "-1"})):
        with pytest.raises(ConnectorError) as raised:
            connector.parse_pull(settings, wrong_method, wrong_query)
        assert raised.value.retryable is False and raised.value.reason_code.isupper()


@pytest.mark.parametrize("connector", PULLED)
def test_export_pages_render_purely_and_refuse_a_page_past_the_last(connector: ProviderConnector, monkeypatch):
    assert isinstance(connector, PulledByProvider)
    settings = settings_of(connector, monkeypatch)
    order = samples(connector).order
    exported = ExportedOrder(
        order, connector.order_number(settings, order), ExportStatus.AWAITING_SHIPMENT, datetime(2024, 5, 1, tzinfo=UTC)
    )
    page = ExportPage([exported], page=2, pages=2)
    rendered = connector.render_export(settings, page)
    assert rendered and rendered == connector.render_export(settings, page)
    assert exported.order_number.encode() in rendered
    for status in ExportStatus:  # every state renders: the provider re-pulls shipped and cancelled orders too
        connector.render_export(settings, ExportPage([replace(exported, status=status)]))
    with pytest.raises(ValueError):
        connector.render_export(settings, ExportPage([exported], page=3, pages=2))


@pytest.mark.parametrize("connector", PULLED)
def test_posted_shipments_parse_purely_and_malformed_ones_say_no_retry_helps(connector: ProviderConnector, monkeypatch):
    assert isinstance(connector, PulledByProvider)
    settings = settings_of(connector, monkeypatch)
    for body in samples(connector).posted_shipments:
        notice = connector.parse_posted_shipment(settings, body)
        assert notice.order_number and notice == connector.parse_posted_shipment(settings, body)
    for body in XML_MALFORMED:
        with pytest.raises(ConnectorError) as raised:
            connector.parse_posted_shipment(settings, body)
        assert raised.value.retryable is False and raised.value.reason_code.isupper()


@pytest.mark.parametrize("connector", CONNECTORS)
def test_only_channels_lock_orders_after_handover_and_only_those_told_the_result(connector: Connector):
    # A lock is about edits reaching the hub from a channel; a provider has none to lock.
    if connector.info.locked_after_handover:
        assert Role.CHANNEL in connector.info.roles
        assert connector.info.can(Capability.SYNC_RESULTS) or connector.info.can(Capability.ACKNOWLEDGE)
