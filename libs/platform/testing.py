"""Helpers for testing consumers: build ConsumedEvents as the BatchConsumer would hand them over."""

from __future__ import annotations

from google.protobuf.message import Message
from opentelemetry import context as otel_context

from libs.platform.events import new_event, parse_envelope
from libs.platform.kafka import ConsumedEvent


def consumed(topic: str, payload: Message, *, aggregate_id: str, tenant_id: str, offset: int = 0) -> ConsumedEvent:
    """Wrap `payload` in an envelope and return it as a consumed Kafka message."""
    event = new_event(topic, payload, aggregate_id=aggregate_id, tenant_id=tenant_id, producer="test")
    return ConsumedEvent(topic, 0, offset, parse_envelope(event.value), otel_context.Context())
