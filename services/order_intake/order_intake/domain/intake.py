"""Intake decisions: identity of an order and what a new revision means. Pure, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ordersync.common.v1 import order_pb2

_ORDER_NAMESPACE = uuid.UUID("5b0b7f3e-3c8e-4f57-9d0a-6b1c2f1a7e10")
# An order's id and revision are its deduplication key, kept in a unique index. PostgreSQL
# refuses index entries over about 2.7 kB, on every retry; Commerce7's ids are UUIDs and its
# revisions timestamps, so anything this long is not an order.
MAX_KEY_CHARS = 200


def order_id_for(tenant_id: str, channel: str, external_id: str) -> str:
    """Return ordersync's stable id of a channel order: the same for every revision and replica."""
    return "ord_" + uuid.uuid5(_ORDER_NAMESPACE, f"{tenant_id}/{channel}/{external_id}").hex


@dataclass(frozen=True)
class InputLimits:
    """How large a webhook body, and the event of an accepted order, may be.

    The body limit is well under Kafka's 1 MiB message limit, so an accepted order's event
    fits; the event limit is under it with room for the record batch's own framing, and is
    checked as well, so nothing the broker would refuse is written to the outbox.
    """

    max_body_bytes: int = 512 * 1024
    max_event_bytes: int = 900 * 1024


def key_problem(external_id: str, revision: str) -> str | None:
    """Say which part of an order's deduplication key is too long to store, or None."""
    for field, value in (("payload.id", external_id), ("payload.updatedAt", revision)):
        if len(value) > MAX_KEY_CHARS:
            return f"{field} is longer than {MAX_KEY_CHARS} characters"
    return None


@dataclass(frozen=True)
class Validation:
    """The verdict on one revision: valid, or invalid with a reason naming each problem."""

    valid: bool
    reason: str

    @classmethod
    def from_issues(cls, issues) -> Validation:
        if not issues:
            return cls(True, "")
        return cls(False, "; ".join(f"{issue.field}: {issue.message}" for issue in issues))


@dataclass(frozen=True)
class RuleFailure:
    """One channel import rule a revision fails: its code, the channel field, what to fix."""

    code: str
    field: str
    sentence: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "sentence": self.sentence}


@dataclass(frozen=True)
class Verdict:
    """What a revision is: accepted, invalid (bad data) or not_imported (an import rule failed).

    Bad data wins over rule failures: an invalid order must be fixed whatever its stage. The
    rule failures are kept either way, so the next look at the order shows them all.
    """

    outcome: str
    reason: str
    rule_failures: tuple[RuleFailure, ...] = ()

    @classmethod
    def of(cls, issues, rule_failures) -> Verdict:
        failures = tuple(RuleFailure(i.code or i.field, i.field, i.message) for i in rule_failures)
        validation = Validation.from_issues(issues)
        if not validation.valid:
            return cls("invalid", validation.reason, failures)
        if failures:
            return cls("not_imported", "; ".join(f"{f.code}: {f.sentence}" for f in failures), failures)
        return cls("accepted", "")


def revision_is_newer(candidate: str, latest: str) -> bool:
    """True when `candidate` is a later revision than `latest` (both ISO-8601 timestamps).

    Channels retry and reorder webhooks, so an older revision may arrive after a newer one; it is
    kept but must not overwrite the newer state.
    """
    parsed_candidate, parsed_latest = _parse(candidate), _parse(latest)
    if parsed_candidate is None or parsed_latest is None:
        return candidate > latest
    return parsed_candidate > parsed_latest


def _parse(revision: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(revision.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def same_order_content(stored_proto: bytes, new_proto: bytes) -> bool:
    """True when a newer revision changes nothing ordersync acts on, only the channel's bookkeeping.

    Writing a fulfilment back makes Commerce7 send an order Update webhook; the canonical order
    holds no fulfilment state, so that update differs from the stored order in its revision only.
    Recognising it keeps ordersync from reacting to its own writes.
    """
    stored, new = order_pb2.Order(), order_pb2.Order()
    stored.ParseFromString(stored_proto)
    new.ParseFromString(new_proto)
    stored.ClearField("revision")
    new.ClearField("revision")
    return stored == new


# ---- locked after sync (ConnectorInfo.locked_after_handover) ------------------------------------


@dataclass(frozen=True)
class SyncLock:
    """How to word a locked change for one channel: its label, and a provider's label by its
    connector id (the handover row names the provider that took the order)."""

    channel_label: str
    provider_label: Callable[[str], str]


def order_changes(stored: order_pb2.Order, new: order_pb2.Order) -> list[str]:
    """What a newer revision changes, in operator words ("total 120.00 → 90.00"); never a
    customer's personal details themselves (they would land in logs and screens), only that
    they changed. Empty when nothing ordersync sends differs."""
    changes: list[str] = []
    if stored.totals.total != new.totals.total:
        changes.append(f"total {_money(stored.totals.total)} → {_money(new.totals.total)}")
    if stored.channel_status != new.channel_status:
        changes.append(f"status {stored.channel_status or '-'} → {new.channel_status or '-'}")
    if stored.payment.status != new.payment.status:
        changes.append(f"payment {stored.payment.status or '-'} → {new.payment.status or '-'}")
    if _lines(stored) != _lines(new):
        changes.append(f"lines {_lines_text(stored)} → {_lines_text(new)}")
    for field, words in (
        ("customer", "customer details changed"),
        ("ship_to", "ship-to address changed"),
        ("bill_to", "billing address changed"),
        ("discounts", "discounts changed"),
    ):
        if getattr(stored, field) != getattr(new, field):
            changes.append(words)
    if not changes:
        rest_stored, rest_new = order_pb2.Order(), order_pb2.Order()
        rest_stored.CopyFrom(stored)
        rest_new.CopyFrom(new)
        for order in (rest_stored, rest_new):
            order.ClearField("revision")
        if rest_stored != rest_new:
            changes.append("other order details changed")
    return changes


def locked_message(
    lock: SyncLock, changes: list[str], *, synced_at: datetime, provider: str, provider_reference: str
) -> str:
    """The operator's message for a change refused because the order was synced: what changed,
    when and as what it was synced, and what to do."""
    provider_label = lock.provider_label(provider) if provider else "the provider"
    reference = f" as {provider_reference}" if provider_reference else ""
    when = synced_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Changed in {lock.channel_label} after sync: {'; '.join(changes) or 'no detail'}. "
        f"Synced to {provider_label} on {when}{reference}. "
        f"{provider_label} orders cannot be edited after sync: make the change in {provider_label} by hand; "
        f"{lock.channel_label} keeps the order as synced, and ordersync sends nothing more for it."
    )


def _money(money) -> str:
    # Minor units of a two-decimal currency, the common case; the currency code shows otherwise.
    sign, units = ("-", -money.minor_units) if money.minor_units < 0 else ("", money.minor_units)
    return f"{sign}{units // 100}.{units % 100:02d}"


def _lines(order: order_pb2.Order) -> list[tuple[str, int, int]]:
    return [(line.sku, line.quantity, line.unit_price.minor_units) for line in order.lines]


def _lines_text(order: order_pb2.Order) -> str:
    return ", ".join(f"{line.quantity}× {line.sku}" for line in order.lines) or "none"
