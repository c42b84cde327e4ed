"""From a connector's ParsedOrder (or Ignored) to the Revision the writer records, with its event.

The one place where a channel order gets ordersync's identity (`order_id_for`), its verdict
(accepted, invalid, or not imported for a failed import rule) and its OrderAccepted event; the webhook handler and the pull poller both build their
revisions here, so a pushed and a pulled revision of one order dedupe against each other.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from ordersync.intake.v1 import events_pb2

from libs.connectors.base.contract import Ignored, ParsedOrder
from libs.connectors.base.errors import InvalidWebhook
from libs.platform.events import OutgoingEvent, new_event
from libs.platform.telemetry import current_trace_id
from order_intake.domain.intake import InputLimits, Verdict, key_problem, order_id_for
from order_intake.storage.orders import Revision

ORDERS_TOPIC = "intake.orders.v1"


class RevisionBuilder:
    """Builds revisions of one service: its orders topic, producer name and input limits."""

    def __init__(self, topic: str, producer_name: str, limits: InputLimits):
        self._topic = topic
        self._producer_name = producer_name
        self.limits = limits

    def from_parsed(
        self,
        tenant_id: str,
        channel: str,
        account: str,
        parsed: ParsedOrder | Ignored,
        body: bytes,
        *,
        source: str = "push",
        mail_to: str = "",
    ) -> Revision:
        """The revision of one parsed push or pulled record; `body` is what its receipt keeps.

        `mail_to` is the account's failed-import mail recipient ("" for none): a revision not
        imported for a rule not mailed before queues a mail to it, in the same commit.

        Raises InvalidWebhook when the order's deduplication key cannot be stored.
        """
        if isinstance(parsed, Ignored):
            return self.receipt(tenant_id, channel, account, body, "ignored", parsed.reason, source=source)
        order = parsed.order
        too_long = key_problem(order.external_id, order.revision)
        if too_long is not None:
            raise InvalidWebhook(f"{channel} webhook: {too_long}")
        order.order_id = order_id_for(tenant_id, channel, order.external_id)
        order.channel, order.channel_account = channel, account
        verdict = Verdict.of(parsed.issues, parsed.rule_failures)
        revision = self.receipt(tenant_id, channel, account, body, verdict.outcome, verdict.reason, source=source)
        revision.rule_failures = verdict.rule_failures
        revision.mail_to = mail_to
        revision.order_id = order.order_id
        revision.external_id = order.external_id
        revision.external_number = order.external_number
        revision.revision = order.revision
        revision.order_proto = order.SerializeToString()
        revision.build_event = lambda first: new_event(
            self._topic,
            events_pb2.OrderAccepted(order=order, first_revision=first),
            aggregate_id=order.order_id,
            tenant_id=tenant_id,
            producer=self._producer_name,
        )
        return revision

    def receipt(
        self,
        tenant_id: str,
        channel: str,
        account: str,
        body: bytes,
        outcome: str,
        detail: str,
        *,
        source: str = "push",
    ) -> Revision:
        """A revision that is only a receipt (ignored or refused), or the base of an order's."""
        return Revision(
            tenant_id=tenant_id,
            channel=channel,
            body=body,
            trace_id=current_trace_id(),
            outcome_if_new=outcome,
            detail=detail,
            trace_context=otel_context.get_current(),
            account=account,
            source=source,
        )

    def event_too_large(self, revision: Revision) -> str | None:
        """Say why an accepted order's event cannot be published, or None when it fits.

        The event is built here once with first_revision=True, its largest form, so the one the
        writer builds is never larger. A refused order is kept as a receipt only: neither
        stored as an order nor written to the outbox, where the broker would refuse it.
        """
        if revision.build_event is None or revision.outcome_if_new != "accepted":
            return None
        size = _encoded_size(revision.build_event(True))
        if size <= self.limits.max_event_bytes:
            return None
        return f"the order's event would be {size} bytes; the limit is {self.limits.max_event_bytes} bytes"


def _encoded_size(event: OutgoingEvent) -> int:
    # What the producer sends for one record, less the record batch's framing.
    return len(event.key) + len(event.value) + sum(len(k) + len(v) for k, v in event.headers)
