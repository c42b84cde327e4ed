"""The sender: drains due orders from the queue to their providers, in leased batches.

Each pass leases a batch (libs.platform.work_queue), translates the shipping codes of the
orders whose provider needs its own service code in one carrier-mapping call per tenant, and
hands the orders to their provider connectors (found in the registry by the order's provider)
in chunks of the connector's batch size: one chunk per call, chunks of all accounts in flight
at once, bounded by the connector's concurrency limit and the service's. Every item's result is
recorded with its outbox event in one transaction, in group commits as chunks complete (at
RECORD_EVERY results, or RECORD_AFTER_S after the oldest unrecorded one), so an order a slow,
one-at-a-time provider accepted early in a large pass is known as sent (and its channel told)
without waiting for the pass to end; the claims still in flight have their leases renewed
every third of the lease, so another replica never takes over an order being sent.

A burst of orders for a provider taking large batches (ShipStation: 100 a call, 40 calls a
minute) lingers `linger_s` while it is still arriving, so it goes in full batches rather than
in whatever slices the queue held at each wake-up: the pass waits while fewer than a claim's
worth are due for such providers and the newest came due less than `linger_s` ago.

An order whose earlier attempt may have reached the provider (a crash, a timeout) goes with
`may_exist`, so the connector reads it back before creating it; each carries an idempotency
key stable across attempts. Nothing is created twice, even while an earlier attempt is still
being handled at the provider.

A provider with SKUs of its own (`maps_products`, a warehouse) receives each order's lines through
the tenant's product map (`Submission.items`), loaded for the whole pass in one query at every
attempt, so a mapping added after a failure is what an operator's Retry sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
import grpc
import structlog
from opentelemetry import propagate, trace
from ordersync.common.v1 import order_pb2
from ordersync.dispatch.v1 import events_pb2

from fulfillment_dispatch.custom_store import held_for_pull
from fulfillment_dispatch.domain.dispatch import (
    UNKNOWN_SKU,
    Outcome,
    ProviderError,
    Status,
    activity_of_error,
    outcome_of_error,
    sent,
    unknown_skus,
)
from fulfillment_dispatch.domain.product_map import expand
from fulfillment_dispatch.storage.dispatches import (
    AttemptResult,
    batch_filling,
    claim_due,
    record_results,
    renew_leases,
)
from fulfillment_dispatch.storage.product_map import mappings_for
from libs.clients.carrier_mapping import CarrierMappingClient, CarrierMappingUnavailable, CodeQuery, Translation
from libs.connectors.base.contract import ProviderConnector, Submission, SubmissionItem, Submitted
from libs.connectors.base.errors import ConnectorError
from libs.connectors.base.idempotency import idempotency_key
from libs.platform import metrics
from libs.platform.accounts import AccountClients
from libs.platform.events import OutgoingEvent, new_event
from libs.platform.outbox import write_events
from libs.platform.tenants import Account

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

ORDERS_TOPIC = "dispatch.orders.v1"
# Group commits of a pass's results: at this many, or this long after the oldest unrecorded.
RECORD_EVERY = 100
RECORD_AFTER_S = 1.0


@dataclass
class _Due:
    """One leased order on its way: its row, order, provider account and connector."""

    row: asyncpg.Record
    order: order_pb2.Order
    account: Account
    connector: ProviderConnector
    service_code: str = ""
    items: tuple[SubmissionItem, ...] = ()  # the lines through the product map (maps_products)


class _Result(NamedTuple):
    """An attempt's outcome, its activity line, the provider's own id of the order, and the codes
    a failure found unmapped (the SKUs of UNKNOWN_SKU, the shipping code of UNMAPPED_CARRIER)."""

    outcome: Outcome
    activity: str
    provider_reference: str = ""
    unmapped: tuple[str, ...] = ()


class Sender:
    """One pass = lease, translate, submit in batches, record. Used by a PollingWorker."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        accounts: AccountClients,
        carriers: CarrierMappingClient,
        *,
        topic: str,
        producer: str,
        lease_s: float,
        batch: int,
        max_attempts: int,
        concurrency: int,
        first_check_after: timedelta,
        linger_s: float = 0.0,
    ):
        self._pool = pool
        self._accounts = accounts
        self._carriers = carriers
        self._topic = topic
        self._producer = producer
        self._lease_s = lease_s
        self._batch = batch
        self._max_attempts = max_attempts
        self._limit = asyncio.Semaphore(concurrency)  # calls in flight, all providers together
        self._per_connector: dict[str, asyncio.Semaphore] = {}  # each connector's limits.concurrency
        self._first_check_after = first_check_after
        self._linger_s = linger_s
        self._batching = [c.info.id for c in accounts.registry if c.info.limits.batch_size > 1]
        # Whole calls failed in a row per (tenant, provider account): reported, never disabling it.
        self._connections = metrics.ConnectionFailures(log)

    async def run_once(self) -> int:
        """Handle one leased batch; return its size (0 when nothing is due, or a batch fills)."""
        if await batch_filling(self._pool, self._batching, self._batch, self._linger_s):
            return 0  # the worker comes back at its next wake-up or idle interval
        rows = await claim_due(self._pool, self._batch, self._lease_s)
        if not rows:
            return 0
        results: dict[str, _Result] = {}
        due: list[_Due] = []
        for row in rows:
            resolved = self._resolve(row)
            held = held_for_pull(self._accounts, row, resolved.connector) if isinstance(resolved, _Due) else None
            if isinstance(held, ProviderError):  # the route's mode is unusable
                results[row["order_id"]] = self._failure(held, row)
            elif held is not None:  # a pull-mode route: the provider fetches it (custom_store.py)
                results[row["order_id"]] = _Result(*held)
            elif isinstance(resolved, _Due):
                due.append(resolved)
            else:
                results[row["order_id"]] = self._failure(resolved, row)
        ready = await self._translate_service_codes(due, results)
        await self._map_products(ready)
        chunks = [chunk for group in _by_account(ready) for chunk in _chunks(group)]
        await self._submit_and_record(rows, chunks, results)
        return len(rows)

    async def _submit_and_record(self, rows, chunks: list[list[_Due]], results: dict[str, _Result]) -> None:
        """Submit every chunk at once and record results in group commits as chunks complete,
        renewing the leases of the claims not recorded yet while any call is in flight."""
        pending = dict(results)  # known before any call: failures, held for a pull
        oldest = time.monotonic()
        in_flight = {row["order_id"]: row["attempts"] for row in rows}
        calls = {asyncio.ensure_future(self._submit(chunk)) for chunk in chunks}
        renewer = asyncio.create_task(self._keep_leased(in_flight))
        try:
            while calls:
                wait_s = max(0.0, RECORD_AFTER_S - (time.monotonic() - oldest)) if pending else None
                done, calls = await asyncio.wait(calls, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
                for call in done:
                    if not pending:
                        oldest = time.monotonic()
                    pending.update(call.result())
                if len(pending) >= RECORD_EVERY or (pending and time.monotonic() - oldest >= RECORD_AFTER_S):
                    await self._record(rows, pending, in_flight)
                    pending = {}
            await self._record(rows, pending, in_flight)
        finally:
            renewer.cancel()
            for call in calls:
                call.cancel()

    async def _keep_leased(self, in_flight: dict[str, int]) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await renew_leases(self._pool, list(in_flight.items()), self._lease_s)
            except (OSError, asyncpg.PostgresError) as exc:  # the lease may lapse: a takeover reads back first
                log.warning("could not renew send leases", extra={"fields": {"error": str(exc)}})

    def _resolve(self, row) -> _Due | ProviderError:
        """The row's provider account and connector, or why there is none."""
        order = _order_of(row)
        try:
            account = self._accounts.account(row["tenant_id"], row["provider_account"], row["provider"])
            connector = self._accounts.provider_connector(account)
        except LookupError as exc:  # AccountNotConfigured, UnknownConnector
            # Retryable: a tenants file fixed and reloaded lets the next attempt through.
            return ProviderError("PROVIDER_NOT_CONFIGURED", str(exc), retryable=True)
        return _Due(row, order, account, connector)

    # ---- shipping codes ------------------------------------------------------------------

    async def _translate_service_codes(self, due: list[_Due], results: dict[str, _Result]) -> list[_Due]:
        """Set each order's service code where its provider needs one; fail those with none.

        Returns the orders ready to submit; the others' results go into `results`.
        """
        needing = [item for item in due if item.connector.info.needs_service_code]
        answers = await self._service_codes(needing)
        ready = []
        for item in due:
            if not item.connector.info.needs_service_code:
                ready.append(item)
                continue
            answer = answers[(item.order.tenant_id, _code_query(item))]
            if isinstance(answer, ProviderError):
                results[item.order.order_id] = _Result(self._failed(answer, item.row), answer.message)
            elif not answer.found:
                error = ProviderError("UNMAPPED_CARRIER", answer.error, retryable=False)
                code = item.order.shipping_method.code
                results[item.order.order_id] = _Result(self._failed(error, item.row), answer.error, unmapped=(code,))
            else:
                item.service_code = answer.code
                ready.append(item)
        return ready

    async def _service_codes(self, due: list[_Due]) -> dict[tuple[str, CodeQuery], Translation | ProviderError]:
        """Translate the orders' shipping codes, one batched call per tenant (answers are cached)."""
        wanted: dict[str, set[CodeQuery]] = defaultdict(set)
        traces: dict[str, list] = defaultdict(list)
        for item in due:
            wanted[item.order.tenant_id].add(_code_query(item))
            traces[item.order.tenant_id].append(_trace_of(item.row))
        answers: dict[tuple[str, CodeQuery], Translation | ProviderError] = {}
        for tenant_id, queries in wanted.items():
            # The batch call joins the first order's trace and links the others, so an SRE
            # following any order sees the carrier-mapping call its dispatch depended on.
            with _span("translate shipping codes", traces[tenant_id]):
                answers.update(await self._translate(tenant_id, queries))
        return answers

    async def _translate(
        self, tenant_id: str, queries: set[CodeQuery]
    ) -> dict[tuple[str, CodeQuery], Translation | ProviderError]:
        translated: dict[CodeQuery, Translation | ProviderError]
        try:
            translated = dict(await self._carriers.translate_many(tenant_id, queries))
        except CarrierMappingUnavailable as exc:
            translated = dict.fromkeys(queries, ProviderError("CARRIER_MAPPING_UNAVAILABLE", str(exc), True))
        except grpc.aio.AioRpcError as exc:
            message = f"carrier mapping answered {exc.code().name}: {exc.details()}"
            translated = dict.fromkeys(queries, ProviderError("CARRIER_MAPPING_ERROR", message, True))
        return {(tenant_id, query): answer for query, answer in translated.items()}

    # ---- product map --------------------------------------------------------------------

    async def _map_products(self, due: list[_Due]) -> None:
        """Fill the items of orders whose provider maps products, from one query for the pass."""
        mapping = [item for item in due if item.connector.info.maps_products]
        wanted = {(item.order.tenant_id, line.sku) for item in mapping for line in item.order.lines}
        by_tenant: dict[str, dict] = defaultdict(dict)
        for (tenant_id, sku), found in (await mappings_for(self._pool, wanted)).items():
            by_tenant[tenant_id][sku] = found
        for item in mapping:
            item.items = expand(item.order.lines, by_tenant[item.order.tenant_id])

    # ---- submitting ----------------------------------------------------------------------

    async def _submit(self, chunk: list[_Due]) -> dict[str, _Result]:
        """Hand one chunk to its provider in one call; one result per order."""
        connector = chunk[0].connector
        per_connector = self._per_connector.setdefault(
            connector.info.id, asyncio.Semaphore(connector.info.limits.concurrency)
        )
        # The connector's own slot first: a chunk waiting for it holds none of the shared ones.
        async with per_connector, self._limit:
            with (
                _span("dispatch order", [_trace_of(item.row) for item in chunk]) as span,
                # A batch of one is one order's line; a larger one names its orders in the fields.
                structlog.contextvars.bound_contextvars(tenant=chunk[0].order.tenant_id, **_order_field(chunk)),
            ):
                span.set_attribute("ordersync.order_id", chunk[0].order.order_id)
                span.set_attribute("ordersync.dispatch.attempt", chunk[0].row["attempts"])
                span.set_attribute("ordersync.dispatch.batch_size", len(chunk))
                try:
                    answers = await self._call(chunk)
                except ConnectorError as exc:  # the whole call failed: every order of the chunk did
                    answers = [exc] * len(chunk)
                except Exception as exc:  # never leave an order without a recorded outcome and reason
                    log.exception(
                        "dispatch call failed unexpectedly",
                        extra={"fields": {"order_ids": [item.order.order_id for item in chunk]}},
                    )
                    answers = [ProviderError("INTERNAL", f"unexpected error: {exc!r}", retryable=True)] * len(chunk)
        self._count_connection(chunk[0], answers)
        return {item.order.order_id: self._result_of(item, answer) for item, answer in zip(chunk, answers, strict=True)}

    def _count_connection(self, first: _Due, answers: Sequence[Any]) -> None:
        """Count a call the provider account failed as a whole (unreachable, 5xx, timeout)."""
        key = (first.order.tenant_id, first.account.name)
        if answers and all(isinstance(a, ConnectorError) and a.retryable for a in answers):
            self._connections.failed(*key)
        else:
            self._connections.succeeded(*key)

    async def _call(self, chunk: list[_Due]) -> Sequence[Any]:
        first = chunk[0]
        opened = await self._accounts.provider(first.order.tenant_id, first.account.name, first.account.connector)
        batch = [self._submission(item) for item in chunk]
        answers = await first.connector.submit(opened.client, opened.settings, batch)
        if len(answers) != len(chunk):
            message = f"the {first.connector.info.id} connector answered {len(answers)} results for {len(chunk)} orders"
            return [ProviderError("INTERNAL", message, retryable=True)] * len(chunk)
        return answers

    def _submission(self, item: _Due) -> Submission:
        route = self._accounts.tenant(item.order.tenant_id).route(item.row["route"]) if item.row["route"] else None
        return Submission(
            order=item.order,
            order_number=item.row["provider_order_number"],
            idempotency_key=idempotency_key("dispatch", item.order.tenant_id, item.order.order_id),
            service_code=item.service_code,
            # An earlier attempt may have reached the provider (a crash, a timeout): read back first.
            may_exist=item.row["attempts"] > 1,
            options=route.options if route is not None else {},
            items=item.items,
        )

    def _result_of(self, item: _Due, answer: Any) -> _Result:
        if isinstance(answer, Submitted):
            return _Result(sent(), answer.activity, answer.provider_reference)
        if isinstance(answer, ConnectorError):
            answer = ProviderError(answer.reason_code, answer.message, answer.retryable, tuple(answer.details))
        if not isinstance(answer, ProviderError):
            answer = ProviderError("INTERNAL", f"unexpected result: {answer!r}", retryable=True)
        result = self._failure(answer, item.row)
        if answer.reason_code == UNKNOWN_SKU:
            skus = [i.sku for i in item.items] if item.items else [line.sku for line in item.order.lines]
            result = result._replace(unmapped=unknown_skus(skus, answer))
        return result

    # ---- outcomes and recording ----------------------------------------------------------

    def _failure(self, error: ProviderError, row) -> _Result:
        return _Result(self._failed(error, row), activity_of_error(error, row["attempts"]))

    def _failed(self, error: ProviderError, row) -> Outcome:
        # An operator's Retry gives a fresh budget: count only the attempts made since.
        attempts = row["attempts"] - row["attempts_before_retry"]
        return outcome_of_error(error, attempts=attempts, max_attempts=self._max_attempts, now=datetime.now(UTC))

    async def _record(self, rows, results: dict[str, _Result], in_flight: dict[str, int]) -> None:
        """Record the results of these rows (the others of the pass are still in flight)."""
        if not results:
            return
        attempts, events = [], []
        for row in rows:
            if row["order_id"] not in results:
                continue
            outcome, activity, reference, unmapped = results[row["order_id"]]
            attempts.append(
                AttemptResult(
                    row["order_id"],
                    row["tenant_id"],
                    outcome.status.value,
                    outcome.reason_code,
                    outcome.reason,
                    outcome.next_attempt_at,
                    activity,
                    row["attempts"],
                    provider_reference=reference,
                    unmapped_codes=json.dumps(list(unmapped)),
                )
            )
            event = self._event_for(row, outcome, reference)
            if event is not None:
                events.append((row["order_id"], event))
        async with self._pool.acquire() as conn, conn.transaction():
            recorded = await record_results(conn, attempts, first_check_after=self._first_check_after)
            # A result whose lease was taken over by another attempt is dropped with its event.
            await write_events(conn, [event for order_id, event in events if order_id in recorded])
        for order_id in results:
            in_flight.pop(order_id, None)
        _observe(rows, results, recorded)

    def _event_for(self, row, outcome: Outcome, provider_reference: str) -> OutgoingEvent | None:
        ref = order_pb2.ChannelOrderRef(
            channel=row["channel"],
            external_id=row["external_id"],
            external_number=row["external_number"],
            account=row["channel_account"],
        )
        message: events_pb2.OrderDispatched | events_pb2.OrderDispatchFailed
        if outcome.status is Status.SENT:
            message = events_pb2.OrderDispatched(
                order_id=row["order_id"],
                channel_ref=ref,
                provider=row["provider"],
                provider_order_number=row["provider_order_number"],
                provider_account=row["provider_account"],
                provider_reference=provider_reference,
            )
        elif outcome.status is Status.FAILED:
            message = events_pb2.OrderDispatchFailed(
                order_id=row["order_id"],
                channel_ref=ref,
                provider=row["provider"],
                reason_code=outcome.reason_code,
                reason=outcome.reason,
                provider_account=row["provider_account"],
            )
        else:
            return None
        return new_event(
            self._topic,
            message,
            aggregate_id=row["order_id"],
            tenant_id=row["tenant_id"],
            producer=self._producer,
            traceparent=row["traceparent"],
        )


_OUTCOME_NAMES = {Status.SENT: "sent", Status.FAILED: "failed", Status.RETRY_WAIT: "retry"}


def _observe(rows, results: dict[str, _Result], recorded) -> None:
    """Count each recorded attempt's outcome and, for a sent order, its handover time."""
    now = datetime.now(UTC)
    for row in rows:
        result = results.get(row["order_id"])
        if result is None or row["order_id"] not in recorded:
            continue
        outcome = result.outcome
        name = _OUTCOME_NAMES.get(outcome.status, outcome.status.value)
        metrics.ORDER_OUTCOMES.labels("fulfillment-dispatch", row["provider"], name, outcome.reason_code).inc()
        if outcome.status is Status.SENT:
            metrics.ORDER_HANDOVER.labels(row["provider"]).observe((now - row["created_at"]).total_seconds())


def _by_account(due: list[_Due]) -> list[list[_Due]]:
    """Orders grouped by (tenant, provider account): one account's orders share a call."""
    groups: dict[tuple[str, str], list[_Due]] = defaultdict(list)
    for item in due:
        groups[(item.order.tenant_id, item.account.name)].append(item)
    return list(groups.values())


def _chunks(group: list[_Due]) -> list[list[_Due]]:
    size = max(1, group[0].connector.info.limits.batch_size)
    return [group[i : i + size] for i in range(0, len(group), size)]


def _span(name: str, contexts: list):
    """A span joining the first order's trace and linking the others'."""
    links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:]]
    return _tracer.start_as_current_span(name, context=contexts[0], links=links)


def _order_field(chunk: list[_Due]) -> dict[str, str]:
    return {"order_id": chunk[0].order.order_id} if len(chunk) == 1 else {}


def _trace_of(row):
    return propagate.extract({"traceparent": row["traceparent"]})


def _order_of(row) -> order_pb2.Order:
    order = order_pb2.Order()
    order.ParseFromString(row["order_proto"])
    return order


def _code_query(item: _Due) -> CodeQuery:
    return CodeQuery(
        from_system=item.order.channel, code=item.order.shipping_method.code, to_system=item.row["provider"]
    )
