"""Writing a shipment back: read first, then one PUT row; the tenant's carrier is never overwritten."""

from __future__ import annotations

import pytest

from libs.connectors.base.contract import ChannelUpdate, Ignored, WritebackStep
from libs.connectors.base.errors import InvalidRequest, InvalidResponse, NotFound
from libs.connectors.base.testing import RequestRecorder, json_response, load_vendor_json, request_json
from libs.connectors.cin7.dispatch import build_dispatch_update, check_update_response
from libs.connectors.cin7.schemas import SalesOrder
from libs.connectors.cin7.tests.builders import NOW, client, connector, sales_order, settings, shipment

pytestmark = pytest.mark.asyncio
OK = load_vendor_json("cin7", "update_response_ok.json")


def update(*steps: WritebackStep, **shipment_changes) -> ChannelUpdate:
    return ChannelUpdate("41872", "SO-10482", steps or (WritebackStep.SHIP,), shipment(**shipment_changes))


async def write(current: dict, *replies, the_update: ChannelUpdate | None = None, **account):
    recorder = RequestRecorder(json_response(200, current), *replies)
    async with client(recorder.transport) as cin7:
        told = await connector().write_back(cin7, settings(**account), the_update or update())
    return told, recorder.requests


# ---- build


async def test_the_row_marks_the_order_dispatched_with_tracking_date_and_carrier():
    row = build_dispatch_update(SalesOrder.model_validate(sales_order()), shipment(), stage="Dispatched", now=NOW)
    assert row is not None and row.to_json_dict() == {
        "id": 41872,
        "stage": "Dispatched",
        "trackingCode": "1Z999AA10123456784",
        "dispatchedDate": "2024-05-10T12:00:00Z",
        "logisticsCarrier": "UPS Ground",
    }


async def test_a_carrier_already_in_cin7_is_kept_and_the_mapped_carrier_is_used_when_empty():
    kept = build_dispatch_update(
        SalesOrder.model_validate(sales_order(logisticsCarrier="Local courier")), shipment(), stage="D", now=NOW
    )
    assert kept is not None and "logisticsCarrier" not in kept.to_json_dict()
    mapped = build_dispatch_update(
        SalesOrder.model_validate(sales_order()), shipment(service=""), stage="D", now=NOW, carrier="UPS Freight"
    )
    assert mapped is not None and mapped.logisticsCarrier == "UPS Freight"
    canonical = build_dispatch_update(
        SalesOrder.model_validate(sales_order()), shipment(service="UPS_GROUND"), stage="D", now=NOW
    )
    assert canonical is not None and canonical.logisticsCarrier == "UPS GROUND"


async def test_no_ship_time_dispatches_now_and_a_dispatched_date_is_written_once():
    row = build_dispatch_update(
        SalesOrder.model_validate(sales_order()), shipment(shipped_time=None), stage="D", now=NOW
    )
    assert row is not None and row.dispatchedDate == "2024-05-10T12:00:00Z"
    again = build_dispatch_update(
        SalesOrder.model_validate(sales_order(dispatchedDate="2024-05-09T08:00:00Z")), shipment(), stage="D", now=NOW
    )
    assert again is not None and again.dispatchedDate is None


async def test_a_shipment_without_tracking_cannot_be_written():
    with pytest.raises(InvalidRequest):
        build_dispatch_update(
            SalesOrder.model_validate(sales_order()), shipment(tracking_numbers=[" "]), stage="D", now=NOW
        )


# ---- send


async def test_write_back_reads_then_puts_one_row():
    told, requests = await write(sales_order(), json_response(200, OK))
    assert told is False  # Cin7 e-mails no one on an API dispatch
    assert [(r.method, r.url.path) for r in requests] == [
        ("GET", "/api/v1/SalesOrders/41872"),
        ("PUT", "/api/v1/SalesOrders"),
    ]
    body = request_json(requests[1])
    assert body == [
        {
            "id": 41872,
            "stage": "Dispatched",
            "trackingCode": "1Z999AA10123456784",
            "dispatchedDate": "2024-05-10T12:00:00Z",
            "logisticsCarrier": "UPS Ground",
        }
    ]


async def test_the_configured_dispatched_stage_is_written_and_the_carrier_left_alone():
    _, requests = await write(sales_order(logisticsCarrier="FedEx"), json_response(200, OK), dispatched_stage="Shipped")
    body = request_json(requests[1])[0]
    assert body["stage"] == "Shipped" and "logisticsCarrier" not in body


async def test_repeating_a_write_back_that_landed_writes_nothing():
    done = sales_order(stage="Dispatched", trackingCode="1Z999AA10123456784", dispatchedDate="2024-05-10T12:00:00Z")
    told, requests = await write(done)
    assert told is False and len(requests) == 1


async def test_delivery_writes_nothing():
    recorder = RequestRecorder()
    async with client(recorder.transport) as cin7:
        assert await connector().write_back(cin7, settings(), update(WritebackStep.DELIVER)) is False
    assert recorder.requests == []


async def test_a_cancellation_writes_the_configured_cancelled_stage_once():
    _, requests = await write(sales_order(), json_response(200, OK), the_update=update(WritebackStep.VOID))
    assert request_json(requests[1]) == [{"id": 41872, "stage": "Cancelled"}]
    custom = update(WritebackStep.VOID)
    _, requests = await write(sales_order(), json_response(200, OK), the_update=custom, cancelled_stage="Annulled")
    assert request_json(requests[1]) == [{"id": 41872, "stage": "Annulled"}]
    told, requests = await write(sales_order(stage="Cancelled"), the_update=update(WritebackStep.VOID))
    assert told is False and len(requests) == 1


DISPATCHED = {"stage": "Dispatched", "trackingCode": "1Z999AA10123456784", "dispatchedDate": "2024-05-10T12:00:00Z"}
VOIDED = {"tracking_numbers": [], "voided_tracking_numbers": ["1Z999AA10123456784"]}


async def test_retracting_a_voided_label_clears_its_tracking_and_puts_the_stage_back():
    _, requests = await write(
        sales_order(**DISPATCHED), json_response(200, OK), the_update=update(WritebackStep.RETRACT, **VOIDED)
    )
    # The dispatched date stays: Cin7 documents no way to undo a dispatch of stock.
    assert request_json(requests[1]) == [{"id": 41872, "trackingCode": "", "stage": "Fully Picked"}]


async def test_repeating_a_retraction_or_retracting_a_code_the_tenant_typed_writes_nothing():
    cleared = sales_order(stage="Fully Picked", trackingCode="", dispatchedDate="2024-05-10T12:00:00Z")
    told, requests = await write(cleared, the_update=update(WritebackStep.RETRACT, **VOIDED))
    assert told is False and len(requests) == 1
    typed = sales_order(**(DISPATCHED | {"trackingCode": "TYPED-IN-CIN7"}))
    _, requests = await write(typed, the_update=update(WritebackStep.RETRACT, **VOIDED))
    assert len(requests) == 1


async def test_a_new_label_after_a_voided_one_replaces_its_tracking_in_one_row():
    relabel = update(
        WritebackStep.RETRACT,
        WritebackStep.SHIP,
        tracking_numbers=["1Z999AA10123456784", "1ZNEWLABEL0000001"],
        voided_tracking_numbers=["1Z999AA10123456784"],
    )
    _, requests = await write(
        sales_order(**DISPATCHED, logisticsCarrier="UPS Ground"), json_response(200, OK), the_update=relabel
    )
    assert request_json(requests[1]) == [{"id": 41872, "trackingCode": "1ZNEWLABEL0000001", "stage": "Dispatched"}]


async def test_a_voided_tracking_number_is_never_written():
    with pytest.raises(InvalidRequest):
        build_dispatch_update(
            SalesOrder.model_validate(sales_order()),
            shipment(voided_tracking_numbers=["1Z999AA10123456784"]),
            stage="D",
            now=NOW,
        )


async def test_a_retraction_with_a_cancellation_clears_the_tracking_and_writes_the_cancelled_stage():
    both = update(WritebackStep.RETRACT, WritebackStep.VOID, **VOIDED)
    _, requests = await write(sales_order(**DISPATCHED), json_response(200, OK), the_update=both)
    assert request_json(requests[1]) == [{"id": 41872, "trackingCode": "", "stage": "Cancelled"}]


async def test_the_cancelled_stage_must_differ_from_the_other_stages():
    with pytest.raises(ValueError, match="three different stages"):
        settings(cancelled_stage="dispatched")
    parsed = connector().parse_settings(
        {"username": "u", "api_key": "env:K", "cancelled_stage": "Void in Cin7"}, lambda ref, where: "key", "omni"
    )
    assert parsed.cancelled_stage == "Void in Cin7"


# ---- parse and parse error


async def test_a_failed_row_in_a_200_answer_is_an_error_with_the_rows_messages():
    with pytest.raises(InvalidRequest) as raised:
        await write(sales_order(), json_response(200, load_vendor_json("cin7", "update_response_row_error.json")))
    assert raised.value.details == ["Stage 'Dispatchd' is not a stage of this account"]
    assert not raised.value.retryable


@pytest.mark.parametrize("body", [[], {}, ["x"], [{"id": 1, "success": True}]])
async def test_an_answer_without_this_orders_row_is_invalid(body):
    with pytest.raises(InvalidResponse):
        check_update_response(body, 41872)


async def test_an_order_cin7_does_not_have_is_not_found():
    recorder = RequestRecorder(json_response(404, {"message": "Not found"}))
    async with client(recorder.transport) as cin7:
        with pytest.raises(NotFound):
            await connector().write_back(cin7, settings(), update())


async def test_an_order_our_cancellation_staged_comes_back_ignored_on_the_next_poll():
    recorder = RequestRecorder(json_response(200, [sales_order(stage="Annulled")]))
    async with client(recorder.transport) as cin7:
        page = await connector().fetch_page(cin7, settings(cancelled_stage="Annulled", page_size=3), "", "harbour")
    [ignored] = page.orders
    assert isinstance(ignored, Ignored) and "SO-10482" in ignored.reason
