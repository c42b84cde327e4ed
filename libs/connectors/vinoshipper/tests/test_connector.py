"""The Vinoshipper connector's submit, read-back, cancel and notices, on httpx.MockTransport.

The sender's rules for this provider live here now: an attempt that may have reached
Vinoshipper is read back before anything is created, the pre-check fails an order unsent, and
an order found already there counts as sent, never created twice.
"""

from __future__ import annotations

import pytest

from libs.connectors.base.contract import ClientResources, Submission, Submitted
from libs.connectors.base.errors import InvalidWebhook, Unavailable
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json, vendor_bytes
from libs.connectors.vinoshipper.client import VinoshipperClient
from libs.connectors.vinoshipper.connector import CONNECTOR, VinoshipperAccount
from libs.connectors.vinoshipper.tests.builders import ORDER_NUMBER, settings, valid_order

pytestmark = pytest.mark.asyncio


def account(precheck: bool = False) -> VinoshipperAccount:
    return VinoshipperAccount(settings(), webhook_token="token", compliance_precheck=precheck)


def submission(may_exist: bool = False) -> Submission:
    return Submission(valid_order(), ORDER_NUMBER, idempotency_key="k", service_code="03", may_exist=may_exist)


def detail(sample: str, **changes) -> dict:
    body = load_vendor_json("vinoshipper", f"order_detail_{sample}.json")
    body.update(changes)
    return body


async def submit(recorder: RequestRecorder, item: Submission, precheck: bool = False):
    async with VinoshipperClient(settings(), transport=recorder.transport) as client:
        return await CONNECTOR.submit(client, account(precheck), [item])


async def test_a_first_attempt_is_created_by_put_and_says_so():
    recorder = RequestRecorder(json_response(201, detail("pending")))
    (result,) = await submit(recorder, submission())
    assert result == Submitted(f"sent to the provider as {ORDER_NUMBER} (UPS rate code 03)")
    assert [r.method for r in recorder.requests] == ["PUT"]


async def test_a_repeated_attempt_found_at_the_provider_is_not_sent_again():
    recorder = RequestRecorder(json_response(200, detail("pending")))
    (result,) = await submit(recorder, submission(may_exist=True))
    assert isinstance(result, Submitted) and "not sent again" in result.activity
    assert [r.method for r in recorder.requests] == ["GET"]


async def test_a_repeated_attempt_not_found_there_is_created():
    recorder = RequestRecorder(json_response(404, {"message": "not found"}), json_response(201, detail("pending")))
    (result,) = await submit(recorder, submission(may_exist=True))
    assert isinstance(result, Submitted) and result.activity.startswith("sent to the provider")
    assert [r.method for r in recorder.requests] == ["GET", "PUT"]


async def test_an_update_of_an_existing_order_counts_as_sent_not_created():
    recorder = RequestRecorder(json_response(200, detail("pending")))
    (result,) = await submit(recorder, submission())
    assert isinstance(result, Submitted) and "not created again" in result.activity


async def test_the_precheck_fails_the_order_with_vinoshippers_problems_and_creates_nothing():
    problems = load_vendor_json("vinoshipper", "error_not_compliant.json")
    recorder = RequestRecorder(json_response(422, problems))
    (result,) = await submit(recorder, submission(), precheck=True)
    assert result.reason_code == "COMPLIANCE_PRECHECK_FAILED" and result.retryable is False
    assert result.details
    assert [r.url.path for r in recorder.requests] == ["/api/v3/p/orders/check-compliance"]


async def test_a_provider_error_is_the_items_result_and_keeps_its_retryability():
    recorder = RequestRecorder(*[json_response(503, {"message": "down"})] * 4)
    (result,) = await submit(recorder, submission())
    assert isinstance(result, Unavailable) and result.retryable


async def test_read_back_returns_the_shipment_or_none_when_the_order_is_gone():
    recorder = RequestRecorder(json_response(200, detail("shipped")), json_response(404, {"message": "no"}))
    async with VinoshipperClient(settings(), transport=recorder.transport) as client:
        found = await CONNECTOR.read_back(client, account(), ORDER_NUMBER)
        gone = await CONNECTOR.read_back(client, account(), ORDER_NUMBER)
    assert found is not None and found.shipment is not None
    assert found.order_number == ORDER_NUMBER and found.shipment.tracking_numbers
    assert gone is None


async def test_a_thin_notice_is_read_back_and_must_name_the_order_read():
    head = CONNECTOR.parse_notice(vendor_bytes("vinoshipper", "webhook_order_tracking_number_added.json"))
    assert head.reference and head.keep and not head.ignored_reason
    recorder = RequestRecorder(
        json_response(200, detail("shipped", orderNumber=head.order_number)),
        json_response(200, detail("shipped", orderNumber="SOMEONE-ELSE")),
    )
    site = settings(base_url="https://vinoshipper.com")  # the sample's hrefV3 points at the real site
    async with VinoshipperClient(site, transport=recorder.transport) as client:
        (notice,) = await CONNECTOR.resolve_notice(client, account(), head)
        assert notice.order_number == head.order_number and notice.shipment is not None
        with pytest.raises(InvalidWebhook, match="not the webhook's identifier"):
            await CONNECTOR.resolve_notice(client, account(), head)


async def test_the_client_takes_the_services_concurrency():
    client = CONNECTOR.open_client(account(), ClientResources(max_concurrency=3))
    assert client.settings.max_concurrency == 3
