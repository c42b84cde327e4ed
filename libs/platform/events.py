"""Event envelopes: build the one shape every topic carries, and open it again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from ordersync.common.v1 import event_pb2

from libs.platform.telemetry import inject_headers

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class OutgoingEvent:
    """A serialised event ready for the outbox: topic, key, envelope bytes and Kafka headers."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    event_id: str


def new_event(
    topic: str, payload: Message, *, aggregate_id: str, tenant_id: str, producer: str, traceparent: str = ""
) -> OutgoingEvent:
    """Wrap `payload` in an EventEnvelope keyed by `aggregate_id`, carrying the order's trace.

    `traceparent` is the one the order's work was queued with (see inject_headers): given, the
    event carries that trace unless the current span already belongs to it; else the current trace.
    """
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.GetCurrentTime()
    event_id = str(uuid.uuid4())
    envelope = event_pb2.EventEnvelope(
        event_id=event_id,
        event_type=payload.DESCRIPTOR.full_name,
        occurred_time=occurred,
        aggregate_id=aggregate_id,
        tenant_id=tenant_id,
        producer=producer,
        payload=packed,
    )
    headers = inject_headers(traceparent) + [("event_type", envelope.event_type.encode())]
    return OutgoingEvent(topic, aggregate_id.encode(), envelope.SerializeToString(), headers, event_id)


class EnvelopeError(ValueError):
    """A Kafka message is not an EventEnvelope, or not the payload type expected."""


def parse_envelope(value: bytes) -> event_pb2.EventEnvelope:
    """Decode an EventEnvelope; raise EnvelopeError when the bytes are not one."""
    envelope = event_pb2.EventEnvelope()
    try:
        envelope.ParseFromString(value)
    except Exception as exc:  # protobuf raises DecodeError, and others on truncated input
        raise EnvelopeError(f"not an EventEnvelope: {exc}") from None
    if not envelope.event_id or not envelope.event_type:
        raise EnvelopeError("EventEnvelope without event_id or event_type")
    return envelope


def tenant_of(value: bytes) -> str:
    """The tenant of an envelope's bytes; "" when they are not an envelope."""
    try:
        return parse_envelope(value).tenant_id
    except EnvelopeError:
        return ""


def unpack(envelope: event_pb2.EventEnvelope, message_type: type[M]) -> M:
    """Return the envelope's payload as `message_type`; raise EnvelopeError on a mismatch."""
    payload = message_type()
    if not envelope.payload.Unpack(payload):
        raise EnvelopeError(f"expected {payload.DESCRIPTOR.full_name}, got {envelope.event_type}")
    return payload
