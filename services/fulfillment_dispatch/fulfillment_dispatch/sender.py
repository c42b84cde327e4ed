"""The sender: drains due orders from the queue to the provider, in leased batches.

Each pass leases a batch, translates its shipping codes in one carrier-mapping call, sends the
orders concurrently, and records every outcome with its outbox events in one transaction. An
order whose earlier attempt may have reached the provider (a crash, a timeout) is read back
from the provider before it is sent again, and orders are created with the provider's
create-or-update by order number, so no order is ever created or submitted twice, even while
an earlier attempt is still being handled there. A tenant with the compliance pre-check on has
each order checked first; problems fail it unsent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from opentelemetry import propagate, trace
from ordersync.common.v1 import order_pb2
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.domain.dispatch import Outcome, ProviderError, Status, outcome_of_error, sent
from fulfillment_dispatch.providers import ProviderClients
from fulfillment_dispatch.storage.dispatches import AttemptResult, claim_due, record_results
from libs.clients.carrier_mapping import CarrierMappingClient, CarrierMappingUnavailable, CodeQuery, Translation
from libs.connectors.base.errors import ConnectorError, NotFound
from libs.connectors.vinoshipper.orders import build_create_order_request, parse_compliance_response
from libs.platform.events import OutgoingEvent, new_event
from libs.platform.outbox import write_events

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

ORDERS_TOPIC = "dispatch.orders.v1"


class Sender:
    """One pass = lease, translate, send, record. Used by a PollingWorker."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        providers: ProviderClients,
        carriers: CarrierMappingClient,
        *,
        topic: str,
        producer: str,
        lease_s: float,
        batch: int,
        max_attempts: int,
        concurrency: int,
        first_check_after: timedelta,
    ):
        self._pool = pool
        self._providers = providers
        self._carriers = carriers
        self._topic = topic
        self._producer = producer
        self._lease_s = lease_s
        self._batch = batch
        self._max_attempts = max_attempts
        self._limit = asyncio.Semaphore(concurrency)
        self._first_check_after = first_check_after

    async def run_once(self) -> int:
        """Handle one leased batch; return its size (0 when nothing is due)."""
        rows = await claim_due(self._pool, self._batch, self._lease_s)
        if not rows:
            return 0
        orders = [_order_of(row) for row in rows]
        rate_codes = await self._rate_codes(rows, orders)
        outcomes = await asyncio.gather(
            *(self._attempt(row, order, rate_codes) for row, order in zip(rows, orders, strict=True))
        )
        await self._record(rows, orders, outcomes)
        return len(rows)

    async def _rate_codes(
        self, rows, orders: list[order_pb2.Order]
    ) -> dict[tuple[str, CodeQuery], Translation | ProviderError]:
        """Translate every order's shipping code, one batched call per tenant (answers are cached)."""
        wanted: dict[str, set[CodeQuery]] = defaultdict(set)
        traces: dict[str, list] = defaultdict(list)
        for row, order in zip(rows, orders, strict=True):
            wanted[order.tenant_id].add(_rate_query(order))
            traces[order.tenant_id].append(propagate.extract({"traceparent": row["traceparent"]}))
        answers: dict[tuple[str, CodeQuery], Translation | ProviderError] = {}
        for tenant_id, queries in wanted.items():
            # The batch call joins the first order's trace and links the others, so an SRE
            # following any order sees the carrier-mapping call its dispatch depended on.
            contexts = traces[tenant_id]
            links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:]]
            with _tracer.start_as_current_span("translate shipping codes", context=contexts[0], links=links):
                answers.update(await self._translate(tenant_id, queries))
        return answers

    async def _translate(
        self, tenant_id: str, queries: set[CodeQuery]
    ) -> dict[tuple[str, CodeQuery], Translation | ProviderError]:
        try:
            translated = await self._carriers.translate_many(tenant_id, queries)
        except CarrierMappingUnavailable as exc:
            translated = dict.fromkeys(queries, ProviderError("CARRIER_MAPPING_UNAVAILABLE", str(exc), True))
        except grpc.aio.AioRpcError as exc:
            message = f"carrier mapping answered {exc.code().name}: {exc.details()}"
            translated = dict.fromkeys(queries, ProviderError("CARRIER_MAPPING_ERROR", message, True))
        return {(tenant_id, query): answer for query, answer in translated.items()}

    async def _attempt(self, row, order: order_pb2.Order, rate_codes) -> tuple[Outcome, str]:
        async with self._limit:
            parent = propagate.extract({"traceparent": row["traceparent"]})
            with _tracer.start_as_current_span("dispatch order", context=parent) as span:
                span.set_attribute("ordersync.order_id", order.order_id)
                span.set_attribute("ordersync.dispatch.attempt", row["attempts"])
                try:
                    return await self._send(row, order, rate_codes)
                except ConnectorError as exc:
                    error = ProviderError(exc.reason_code, exc.message, exc.retryable, tuple(exc.details))
                    return self._failed(error, row), f"attempt {row['attempts']}: {exc.message}"
                except Exception as exc:  # never leave an order without a recorded outcome and reason
                    log.exception(
                        "dispatch attempt failed unexpectedly", extra={"fields": {"order_id": order.order_id}}
                    )
                    error = ProviderError("INTERNAL", f"unexpected error: {exc!r}", retryable=True)
                    return self._failed(error, row), f"attempt {row['attempts']}: {error.message}"

    async def _send(self, row, order: order_pb2.Order, rate_codes) -> tuple[Outcome, str]:
        number = row["provider_order_number"]
        client = await self._providers.for_tenant(order.tenant_id)
        if row["attempts"] > 1 and await _exists_at_provider(client, number):
            return sent(), f"found at the provider as {number} after an interrupted attempt; not sent again"
        rate = rate_codes[(order.tenant_id, _rate_query(order))]
        if isinstance(rate, ProviderError):
            return self._failed(rate, row), rate.message
        if not rate.found:
            error = ProviderError("UNMAPPED_CARRIER", rate.error, retryable=False)
            return self._failed(error, row), rate.error
        body = build_create_order_request(order, order_number=number, rate_code=rate.code)
        if self._providers.compliance_precheck(order.tenant_id):
            problems = parse_compliance_response(await client.check_compliance(body))
            if problems:
                message = "Vinoshipper's compliance check found problems; nothing was created there"
                error = ProviderError("COMPLIANCE_PRECHECK_FAILED", message, False, tuple(problems))
                return self._failed(error, row), "compliance pre-check: " + "; ".join(problems)
        try:
            # Created by PUT, keyed by the order number: should an earlier attempt still be
            # under way at the provider (it answered too slowly for us), the two requests
            # leave one order, where a POST would be refused as a duplicate submission.
            # Waiting for that attempt instead could never be enough: nothing bounds how long
            # the provider keeps a request it has received.
            created = await client.create_order(body)
        except ConnectorError as exc:
            if exc.reason_code == "ORDER_ALREADY_EXISTS" and await _exists_at_provider(client, number):
                return sent(), f"already at the provider as {number}; not sent again"
            raise
        if not created.created:
            return sent(), f"already at the provider as {number} from an earlier attempt; not created again"
        return sent(), f"sent to the provider as {number} (UPS rate code {rate.code})"

    def _failed(self, error: ProviderError, row) -> Outcome:
        # An operator's Retry gives a fresh budget: count only the attempts made since.
        attempts = row["attempts"] - row["attempts_before_retry"]
        return outcome_of_error(error, attempts=attempts, max_attempts=self._max_attempts, now=datetime.now(UTC))

    async def _record(self, rows, orders, outcomes: list[tuple[Outcome, str]]) -> None:
        results, events = [], []
        for row, order, (outcome, activity) in zip(rows, orders, outcomes, strict=True):
            results.append(
                AttemptResult(
                    order.order_id,
                    order.tenant_id,
                    outcome.status.value,
                    outcome.reason_code,
                    outcome.reason,
                    outcome.next_attempt_at,
                    activity,
                    row["attempts"],
                )
            )
            event = self._event_for(row, order, outcome)
            if event is not None:
                events.append((order.order_id, event))
        async with self._pool.acquire() as conn, conn.transaction():
            recorded = await record_results(conn, results, first_check_after=self._first_check_after)
            # A result whose lease was taken over by another attempt is dropped with its event.
            await write_events(conn, [event for order_id, event in events if order_id in recorded])

    def _event_for(self, row, order: order_pb2.Order, outcome: Outcome) -> OutgoingEvent | None:
        ref = order_pb2.ChannelOrderRef(
            channel=order.channel, external_id=order.external_id, external_number=order.external_number
        )
        if outcome.status is Status.SENT:
            message = events_pb2.OrderDispatched(
                order_id=order.order_id,
                channel_ref=ref,
                provider=row["provider"],
                provider_order_number=row["provider_order_number"],
            )
        elif outcome.status is Status.FAILED:
            message = events_pb2.OrderDispatchFailed(
                order_id=order.order_id,
                channel_ref=ref,
                provider=row["provider"],
                reason_code=outcome.reason_code,
                reason=outcome.reason,
            )
        else:
            return None
        return new_event(
            self._topic, message, aggregate_id=order.order_id, tenant_id=order.tenant_id, producer=self._producer
        )


async def _exists_at_provider(client, order_number: str) -> bool:
    try:
        return await client.get_order(order_number) is not None
    except NotFound:
        return False


def _order_of(row) -> order_pb2.Order:
    order = order_pb2.Order()
    order.ParseFromString(row["order_proto"])
    return order


def _rate_query(order: order_pb2.Order) -> CodeQuery:
    return CodeQuery(from_system=order.channel, code=order.shipping_method.code, to_system="vinoshipper")
