"""OpenTelemetry and logging setup: one call per process, and trace context in Kafka headers.

Spans come from instrumented libraries (asyncpg, httpx, gRPC client and server), from our
aiohttp middleware (which names spans by route template so secret URL tokens never reach a
trace) and from the Kafka consumer, which continues the producer's trace from message headers.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import SpanKind

from libs.platform.outage import RepeatedRecordFilter
from libs.platform.redaction import redact_processor

_installed = False
_grpc_server_installed = False


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object per line (for the demo and local tracing)."""

    def __init__(self, path: str):
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in shutdown()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(_span_to_dict(span)) + "\n" for span in spans]
        with self._lock:
            self._file.writelines(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def _span_to_dict(span: ReadableSpan) -> dict:
    parent = span.parent
    return {
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {k: v for k, v in (span.attributes or {}).items() if isinstance(k, str)},
    }


class OwnRootsSampler(Sampler):
    """Samples a trace only when our own code started it: a server, consumer or internal span.

    A root CLIENT span is a library call made outside any span of ours: the SQL of an idle
    polling loop (leased work queues, pollers, schedules, snapshot refreshes) or an HTTP or
    gRPC call of a background loop that found nothing to do. Those were nearly every exported
    trace and showed no order's work, so they are dropped; ParentBased then drops their
    children too. Work our code does starts a span first (the aiohttp middleware, the gRPC
    server, a consumer's or a worker's span continuing the order's trace), so its library
    calls are children of a sampled span and are kept whole.
    """

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "OwnRootsSampler"


def quiet_sampler() -> Sampler:
    """The sampler of every service: children follow their parent, roots as OwnRootsSampler says."""
    return ParentBased(root=OwnRootsSampler())


class TelemetrySettings(Protocol):
    """What tracing needs of a process's settings (PlatformSettings, the console's settings)."""

    @property
    def service_name(self) -> str: ...

    @property
    def otlp_endpoint(self) -> str | None: ...

    @property
    def trace_file(self) -> str | None: ...


def setup_telemetry(
    settings: TelemetrySettings, *, grpc_server_spans: bool = True, untraced_grpc_services: Sequence[str] = ()
) -> TracerProvider:
    """Install the tracer provider, exporters and library instrumentation once per process.

    grpc_server_spans=False leaves gRPC servers uninstrumented: the instrumentation is an aio
    interceptor on every call, which a service answering in microseconds may not afford
    (carrier mapping measured it; docs/benchmarks.md). Callers' client spans still time its calls.
    `untraced_grpc_services` (full names) are left out of server spans in a service whose other
    gRPC services keep theirs: high-rate look-ups answered from memory (docs/benchmarks.md).
    """
    global _installed, _grpc_server_installed
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}), sampler=quiet_sampler()
    )
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    if settings.trace_file:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(settings.trace_file)))
    trace.set_tracer_provider(provider)
    if not _installed:
        _instrument_libraries()
        _installed = True
    if grpc_server_spans and not _grpc_server_installed:
        from grpc_health.v1 import health
        from grpc_reflection.v1alpha import reflection
        from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer, filters

        # Health and reflection stay out of traces: probes every few seconds are noise, and the
        # interceptor breaks Health/Watch (it iterates the handler's result, while the aio health
        # servicer streams with context.write, so every Watch ended with UNKNOWN).
        infrastructure = filters.any_of(
            filters.service_name(health.SERVICE_NAME),
            filters.service_name(reflection.SERVICE_NAME),
            *(filters.service_name(name) for name in untraced_grpc_services),
        )
        GrpcAioInstrumentorServer(filter_=filters.negate(infrastructure)).instrument()
        _grpc_server_installed = True
    return provider


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    AsyncPGInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument(request_hook=_redact_span_url, async_request_hook=_redact_span_url_async)
    GrpcAioInstrumentorClient().instrument()


# Query parameters vendors take credentials in (CommerceInterface's `token`, Mintsoft's
# `APIKey`): the httpx instrumentation puts the full URL on every span and redacts only cloud
# signatures, so the values are replaced here before the span is exported.
SECRET_QUERY_PARAMETERS = frozenset({"token", "apikey", "api_key", "key", "password", "secret", "access_token"})
_URL_ATTRIBUTES = ("url.full", "http.url")


def redact_secret_query(url: str) -> str:
    """`url` with the values of SECRET_QUERY_PARAMETERS (any case) replaced by REDACTED."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name.lower() in SECRET_QUERY_PARAMETERS for name, _ in pairs):
        return url
    query = urlencode([(n, "REDACTED" if n.lower() in SECRET_QUERY_PARAMETERS else v) for n, v in pairs])
    return urlunsplit(parts._replace(query=query))


def instrument_http_client(client) -> None:
    """Trace one httpx.AsyncClient whose transport is not httpx's own (which the global
    instrumentation covers): a CLIENT span per request, traceparent on the wire, secret query
    values redacted. Does nothing in a process that did not set up telemetry, as before."""
    if not _installed:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, request_hook=_redact_span_url_async)


def _redact_span_url(span, request) -> None:
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        if name in attributes:
            span.set_attribute(name, redact_secret_query(str(attributes[name])))


async def _redact_span_url_async(span, request) -> None:
    _redact_span_url(span, request)


def setup_logging(service_name: str, level: str = "INFO") -> None:
    """Log one JSON object per line through structlog, stdlib `logging` calls included.

    Every line has time (UTC, ISO 8601), level, service, logger, message, the trace_id and
    span_id of the current span, the fields bound with structlog.contextvars (order_id and
    tenant where an order is handled) and those passed as `extra={"fields": {...}}`; the
    redaction processor (libs.platform.redaction) then removes personal data and secrets.
    """
    structlog.configure(
        processors=[*_shared_processors(service_name), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(log_formatter(service_name))
    # aiokafka logs every reconnect attempt (about a hundred lines a second while Kafka is down):
    # one line per kind and reminder period is enough, and our own loops log the outage's state.
    handler.addFilter(RepeatedRecordFilter("aiokafka"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO: noise in the logs and a measurable cost per order.
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_formatter(service_name: str) -> logging.Formatter:
    """The formatter of setup_logging's handler: JSON lines for structlog and stdlib records alike."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(service_name),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def _shared_processors(service_name: str) -> list:
    def add_service(logger, method_name, event_dict):
        event_dict["service"] = service_name
        return event_dict

    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        _add_level,
        add_service,
        structlog.stdlib.add_logger_name,
        _add_record_fields,
        _add_trace_ids,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.format_exc_info,
        structlog.processors.EventRenamer("message"),
        redact_processor,
    ]


def _add_level(logger, method_name, event_dict):
    record = event_dict.get("_record")
    event_dict["level"] = record.levelname if record is not None else method_name.upper().replace("EXCEPTION", "ERROR")
    return event_dict


def _add_record_fields(logger, method_name, event_dict):
    # The stdlib calls' structured fields: log.info("...", extra={"fields": {...}}).
    record = event_dict.get("_record")
    for key, value in (getattr(record, "fields", None) or {}).items():
        event_dict.setdefault(key, value)
    return event_dict


def _add_trace_ids(logger, method_name, event_dict):
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict["trace_id"] = format(span_context.trace_id, "032x")
        event_dict["span_id"] = format(span_context.span_id, "016x")
    return event_dict


def current_trace_id() -> str:
    """Return the current trace id as 32 hex digits, or "" outside a trace."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


def inject_headers(order_traceparent: str = "") -> list[tuple[str, bytes]]:
    """Return the trace context for an event's Kafka headers (W3C traceparent/tracestate).

    `order_traceparent` is the traceparent an order's work was queued with. An event written
    after the order's span closed, or inside a span of another trace (a provider's notice, a
    batch whose span joined another order's trace), would otherwise carry no trace or the
    wrong one: it carries the order's own instead, so one order keeps one trace id end to end.
    """
    carrier: dict[str, str] = {}
    current = trace.get_current_span().get_span_context()
    queued = trace.get_current_span(_context_of(order_traceparent)).get_span_context()
    if queued.is_valid and not (current.is_valid and current.trace_id == queued.trace_id):
        carrier["traceparent"] = order_traceparent
    else:
        propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


def _context_of(traceparent: str) -> context.Context:
    return propagate.extract({"traceparent": traceparent}) if traceparent else context.Context()


def context_headers(ctx: context.Context) -> list[tuple[str, bytes]]:
    """The Kafka headers carrying `ctx`'s trace (what extract_context reads back)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return [(key, value.encode()) for key, value in carrier.items()]


def extract_context(headers: Sequence[tuple[str, bytes]] | None) -> context.Context:
    """Return the trace context carried in Kafka headers (empty context when there is none)."""
    carrier = {key: value.decode("latin-1") for key, value in headers or ()}
    return propagate.extract(carrier)


def get_tracer(name: str) -> trace.Tracer:
    """Return a tracer for instrumentation scope `name` (a module name)."""
    return trace.get_tracer(name)
