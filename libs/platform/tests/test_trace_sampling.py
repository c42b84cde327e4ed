"""The quiet sampler and the order's trace on events: idle library calls are not traced, and an
event written outside its order's span still carries the order's trace."""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.platform.telemetry import inject_headers, quiet_sampler

ORDER_TRACE = "0af7651916cd43dd8448eb211c80319c"
ORDER_TRACEPARENT = f"00-{ORDER_TRACE}-b7ad6b7169203331-01"


def _tracer():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=quiet_sampler())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def _trace_of(headers) -> str:
    return dict(headers)["traceparent"].decode().split("-")[1]


def test_a_library_call_outside_any_span_of_ours_is_not_exported():
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT), tracer.start_as_current_span("nested"):
        pass
    assert exporter.get_finished_spans() == ()


def test_work_our_code_starts_is_exported_whole_with_its_library_calls():
    tracer, exporter = _tracer()
    with tracer.start_as_current_span("dispatch order"), tracer.start_as_current_span("POST", kind=SpanKind.CLIENT):
        pass
    assert sorted(span.name for span in exporter.get_finished_spans()) == ["POST", "dispatch order"]


def test_a_span_continuing_a_queued_order_trace_is_exported_in_that_trace():
    tracer, exporter = _tracer()
    parent = propagate.extract({"traceparent": ORDER_TRACEPARENT})
    with (
        tracer.start_as_current_span("write back to channel", context=parent),
        tracer.start_as_current_span("UPDATE", kind=SpanKind.CLIENT),
    ):
        pass
    assert {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()} == {ORDER_TRACE}


def test_event_written_after_the_span_closed_carries_the_order_trace():
    assert _trace_of(inject_headers(ORDER_TRACEPARENT)) == ORDER_TRACE


def test_event_written_in_another_trace_carries_the_order_trace():
    tracer, _ = _tracer()
    with tracer.start_as_current_span("POST /webhooks/vinoshipper", kind=SpanKind.SERVER):
        assert _trace_of(inject_headers(ORDER_TRACEPARENT)) == ORDER_TRACE


def test_event_written_in_the_order_span_carries_that_span():
    tracer, _ = _tracer()
    with tracer.start_as_current_span("x", context=propagate.extract({"traceparent": ORDER_TRACEPARENT})) as span:
        traceparent = dict(inject_headers(ORDER_TRACEPARENT))["traceparent"].decode()
    assert traceparent.split("-")[2] == format(span.get_span_context().span_id, "016x")


def test_without_a_queued_trace_the_current_one_is_carried_and_none_outside_a_span():
    tracer, _ = _tracer()
    assert inject_headers() == []
    with tracer.start_as_current_span("route order", kind=SpanKind.CONSUMER) as span:
        assert _trace_of(inject_headers()) == format(span.get_span_context().trace_id, "032x")
