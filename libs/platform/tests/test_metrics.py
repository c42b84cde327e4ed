"""The sampled gauges' bookkeeping, the failure reporting and the /metrics exposition."""

import logging

import pytest
from aiohttp import ClientSession
from prometheus_client import Gauge

from libs.platform import metrics

_GAUGE = Gauge("ordersync_test_sampled", "test only", ["tenant", "account"])


def test_a_series_no_longer_returned_drops_to_zero_and_known_ones_exist_from_the_start():
    sample = metrics.SampledGauge(_GAUGE, "SELECT 1", known=lambda: [("t", "quiet")])
    sample.apply([("t", "busy", 42.0)])
    assert _GAUGE.labels("t", "busy")._value.get() == 42.0
    assert _GAUGE.labels("t", "quiet")._value.get() == 0.0
    sample.apply([])
    assert _GAUGE.labels("t", "busy")._value.get() == 0.0


def test_a_failing_connection_is_logged_at_thresholds_and_reset_by_a_success(caplog):
    failures = metrics.ConnectionFailures(logging.getLogger("test"))
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            failures.failed("acme", "vinoshipper")
    assert metrics.CONNECTION_CONSECUTIVE_FAILURES.labels("acme", "vinoshipper")._value.get() == 3
    assert [r.fields["consecutive_failures"] for r in caplog.records] == [3]
    failures.succeeded("acme", "vinoshipper")
    assert metrics.CONNECTION_CONSECUTIVE_FAILURES.labels("acme", "vinoshipper")._value.get() == 0


@pytest.mark.asyncio
async def test_metrics_server_serves_the_exposition_format():
    metrics.DEAD_LETTERS.labels("outbox").set(2)
    server = metrics.MetricsServer(port=0, host="127.0.0.1")
    await server.start()
    try:
        async with ClientSession() as session, session.get(f"http://127.0.0.1:{server.port}/metrics") as response:
            body = await response.text()
            assert response.headers["Content-Type"].startswith("text/plain; version=")
    finally:
        await server.stop()
    assert 'ordersync_dead_letters{source="outbox"} 2.0' in body
    assert "# TYPE ordersync_order_outcomes_total counter" in body
