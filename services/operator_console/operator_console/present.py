"""Words for the pages: connector labels, statuses, times and error rates, from the protos.

The status an order card leads with is dispatch's `status_title`, already in the provider
connector's words ("Sent to Vinoshipper", "Waiting for ShipStation to fetch"); this module adds
the labels and words the other services' records need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from ordersync.admin.v1 import order_admin_service_pb2 as admin_pb
from ordersync.common.v1 import shipment_pb2
from ordersync.compliance.v1 import routing_pb2
from ordersync.ops.v1 import connection_health_pb2 as health_pb
from ordersync.tracking.v1 import tracking_service_pb2 as tracking_pb

from libs.connectors.registry import UnknownConnector, default_registry

_REGISTRY = default_registry()

ACTION_WORDS: dict[int, tuple[str, str]] = {
    admin_pb.ORDER_ACTION_RETRY_SEND: ("retry", "Retry"),
    admin_pb.ORDER_ACTION_DONT_SEND: ("dont-send", "Don't Send"),
    admin_pb.ORDER_ACTION_VOID_SYNC: ("void-sync", "Void Sync"),
    admin_pb.ORDER_ACTION_CHECK_FULFILLMENT: ("check-fulfillment", "Check Fulfillment"),
}
ACTION_BY_SLUG = {slug: action for action, (slug, _) in ACTION_WORDS.items()}
STATUS_CLASSES: dict[int, str] = {  # the card's colour: what needs a person, what is on its way, what is settled
    admin_pb.SYNC_STATUS_FAILED: "attention",
    admin_pb.SYNC_STATUS_SENDING: "moving",
    admin_pb.SYNC_STATUS_RETRY_WAIT: "moving",
    admin_pb.SYNC_STATUS_AWAITING_PULL: "moving",
    admin_pb.SYNC_STATUS_SENT: "done",
    admin_pb.SYNC_STATUS_NOT_REQUIRED: "settled",
    admin_pb.SYNC_STATUS_VOIDED: "settled",
}
_OUTCOMES: dict[int, str] = {
    routing_pb2.ROUTING_OUTCOME_ROUTE: "Routed",
    routing_pb2.ROUTING_OUTCOME_NOT_REQUIRED: "Not required to send",
    routing_pb2.ROUTING_OUTCOME_NOT_SENT: "Never sent",
}
_WRITEBACK_STATUSES: dict[int, str] = {
    tracking_pb.WRITEBACK_STATUS_WRITTEN: "Written",
    tracking_pb.WRITEBACK_STATUS_RETRY_WAIT: "Retrying",
    tracking_pb.WRITEBACK_STATUS_FAILED: "Failed",
    tracking_pb.WRITEBACK_STATUS_BLOCKED: "Blocked",
}
UNMAPPED_WORDS: dict[int, str] = {
    health_pb.UNMAPPED_KIND_SKU: "SKU",
    health_pb.UNMAPPED_KIND_SERVICE_CODE: "shipping code",
    health_pb.UNMAPPED_KIND_CARRIER_CODE: "carrier code",
}
UNMAPPED_SLUGS: dict[int, str] = {
    health_pb.UNMAPPED_KIND_SKU: "sku",
    health_pb.UNMAPPED_KIND_SERVICE_CODE: "service-code",
    health_pb.UNMAPPED_KIND_CARRIER_CODE: "carrier-code",
}


def label(connector_id: str) -> str:
    """The vendor's name as operators read it ("Commerce7"); the id itself when unknown."""
    if not connector_id:
        return ""
    try:
        return _REGISTRY.get(connector_id).info.label
    except UnknownConnector:
        return connector_id


def maps_products(connector_id: str) -> bool:
    """True for a provider whose SKUs come through the tenant's product map (a warehouse); an
    unknown SKU at any other provider is fixed by adding the product there."""
    try:
        return _REGISTRY.get(connector_id).info.maps_products
    except UnknownConnector:
        return False


def outcome_words(outcome: int) -> str:
    return _OUTCOMES.get(outcome, "Not decided")


def writeback_words(record: tracking_pb.WritebackRecord, channel: str) -> str:
    """e.g. "Written to Commerce7: shipped" or "Blocked"."""
    status = _WRITEBACK_STATUSES.get(record.status, "Pending")
    shipment = shipment_words(record.shipment_status)
    if record.status == tracking_pb.WRITEBACK_STATUS_WRITTEN:
        return f"Written to {label(channel) or 'the channel'}: {shipment}"
    return f"{status} ({shipment})" if shipment else status


def shipment_words(status: int) -> str:
    """ShipmentStatus in lower-case words, e.g. "shipped"; "" when unspecified."""
    if not status:
        return ""
    return shipment_pb2.ShipmentStatus.Name(status).removeprefix("SHIPMENT_STATUS_").replace("_", " ").lower()


def when(stamp: Timestamp | None, now: datetime | None = None) -> str:
    """A time as "2026-12-02 14:03 UTC (5 min ago)"; "" when unset."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return ""
    moment = stamp.ToDatetime(tzinfo=UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC ({ago(moment, now)})"


def ago(moment: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # unreachable: seconds >= 60 matched "min"


def rate(failures: int, attempts: int) -> str:
    """An error rate in words, e.g. "2 of 40 (5.0%)"; "no traffic" when nothing happened."""
    if attempts <= 0:
        return "no traffic" if failures <= 0 else f"{failures} failed"
    return f"{failures} of {attempts} ({100 * failures / attempts:.1f}%)"


@dataclass
class ConnectionRow:
    """One account of the connections view, merged from each service's view of it."""

    account: str
    connector: str
    last_poll: str = ""
    last_received: str = ""
    oldest_unsent: str = ""
    unsent_count: int = 0
    oldest_unwritten: str = ""
    unwritten_count: int = 0
    error_rates: list[tuple[str, str]] = field(default_factory=list)  # (what, rate in words)
    last_errors: list[tuple[str, str]] = field(default_factory=list)  # (service, message)
    unmapped: list[health_pb.UnmappedCode] = field(default_factory=list)

    @property
    def label(self) -> str:
        return label(self.connector)


_RATE_NAMES = {
    "order-intake": "orders taken in",
    "fulfillment-dispatch": "orders sent",
    "tracking-writeback": "shipments written",
}


def connection_rows(
    views: dict[str, list[health_pb.ConnectionHealth]], now: datetime | None = None
) -> list[ConnectionRow]:
    """One row per account, by account name, with each service's figures on it."""
    rows: dict[str, ConnectionRow] = {}
    for service, connections in views.items():
        for health in connections:
            row = rows.setdefault(health.account, ConnectionRow(health.account, health.connector))
            _merge(row, service, health, now)
    return [rows[name] for name in sorted(rows)]


def _merge(row: ConnectionRow, service: str, health: health_pb.ConnectionHealth, now: datetime | None) -> None:
    if health.HasField("last_poll_time"):
        row.last_poll = when(health.last_poll_time, now)
    if health.HasField("last_received_time"):
        row.last_received = when(health.last_received_time, now)
    if health.HasField("oldest_unsent_time"):
        row.oldest_unsent = when(health.oldest_unsent_time, now)
    if health.HasField("oldest_unwritten_time"):
        row.oldest_unwritten = when(health.oldest_unwritten_time, now)
    row.unsent_count += health.unsent_count
    row.unwritten_count += health.unwritten_count
    if health.attempts or health.failures:
        row.error_rates.append((_RATE_NAMES.get(service, service), rate(health.failures, health.attempts)))
    if health.last_error:
        row.last_errors.append((service, health.last_error))
    row.unmapped.extend(health.unmapped)
