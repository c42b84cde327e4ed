"""Every service's /metrics after real traffic: Commerce7 orders sent to Vinoshipper, shipped and written back."""

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import web_order

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.e2e, pytest.mark.timeout(180)]

SERVICES = ("order_intake", "compliance_routing", "fulfillment_dispatch", "tracking_writeback", "carrier_mapping")


async def scrape(driver, service: str) -> dict[str, list]:
    """The service's samples by name (each a prometheus_client Sample with labels and value)."""
    response = await driver.stack.http.get(driver.stack.metrics_url(service))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples: dict[str, list], name: str, **labels) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


async def until(check, timeout_s: float = 20.0):
    """Scrape until `check` holds (sampled gauges follow within ORDERSYNC_METRICS_SAMPLE_S)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.5)


async def test_every_service_exposes_the_catalogue_after_orders_are_sent_shipped_and_written_back(driver):
    numbers = []
    for state in ("CA", "OR"):
        placed = (await driver.place(web_order(state=state)))["order"]
        sent = await driver.wait_for(placed["id"], lambda j: j.dispatch == "sent")
        await driver.provider(sent.provider_order_number, "fulfil")
        await driver.provider(sent.provider_order_number, "ship", trackingNumbers=[f"1ZMETRICS{state}"])
        numbers.append(placed["id"])
    for external_id in numbers:
        await driver.wait_for(external_id, lambda j: j.written_back == "shipped")

    scraped = {service: await scrape(driver, service) for service in SERVICES}
    for samples in scraped.values():
        assert total(samples, "process_resident_memory_bytes") > 0
        assert "ordersync_outbox_backlog_events" in samples
        assert {s.labels["source"] for s in samples["ordersync_dead_letters"]} == {"consumer", "outbox"}

    intake = scraped["order_intake"]
    assert total(intake, "ordersync_order_outcomes_total", outcome="accepted", connector="commerce7") >= 2
    assert total(intake, "ordersync_webhooks_total", connector="commerce7", outcome="accepted") >= 2
    assert "ordersync_kafka_consumer_lag" in intake

    routing = scraped["compliance_routing"]
    assert total(routing, "ordersync_order_outcomes_total", service="compliance-routing", outcome="route") >= 2
    assert "ordersync_kafka_consumer_lag" in routing

    dispatch = scraped["fulfillment_dispatch"]
    assert total(dispatch, "ordersync_order_outcomes_total", connector="vinoshipper", outcome="sent") >= 2
    assert total(dispatch, "ordersync_external_request_duration_seconds_count", connector="vinoshipper") > 0
    assert total(dispatch, "ordersync_order_handover_seconds_count", provider="vinoshipper") >= 2
    assert total(dispatch, "ordersync_webhooks_total", connector="vinoshipper", outcome="accepted") > 0
    assert {s.labels["status"] for s in dispatch["ordersync_work_queue_items"]} >= {"sending", "retry_wait"}
    assert dispatch["ordersync_oldest_unsent_order_age_seconds"]
    assert dispatch["ordersync_connection_consecutive_failures"]

    writeback = scraped["tracking_writeback"]
    assert total(writeback, "ordersync_order_outcomes_total", connector="commerce7", outcome="written") >= 2
    assert total(writeback, "ordersync_shipment_writeback_seconds_count", channel="commerce7") >= 2
    assert total(writeback, "ordersync_external_request_duration_seconds_count", connector="commerce7") > 0
    assert writeback["ordersync_oldest_unwritten_shipment_age_seconds"]
    assert "ordersync_work_queue_items" in writeback

    async def translated():
        mapping = await scrape(driver, "carrier_mapping")
        return total(mapping, "ordersync_carrier_translations_total") > 0

    assert await until(translated)
