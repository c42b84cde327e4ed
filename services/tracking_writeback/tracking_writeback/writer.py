"""The writer: brings each order's channel record to the state the provider reported.

Each leased row is written through the order's channel account: the plan (domain/writeback.py)
gives the steps from what was written to what is wanted, carrier mapping spells the shipment's
carrier as the channel does, and the account's channel connector applies the steps
(`write_back`), which it must make safe to repeat (a retry after a lost response, or a crash
before recording, writes nothing twice). The account's client paces itself by the channel's
limit, a budget shared by every replica (channels.py).

A channel that takes only carrier codes of its own list (`ConnectorInfo.needs_carrier_code`,
Groupon's approved couriers) is never sent a shipment whose courier maps to none of them: the
row is *blocked*, its reason naming the courier and the carrier-mapping command that fixes it.
A blocked row is checked again every `blocked_recheck_s`, and at once when carrier mapping
announces a change of the tenant's mappings (`mappings_changed`), without using up attempts;
it is written as soon as the mapping exists. Carrier mapping unreachable is a retry, not a block.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import structlog
from opentelemetry import propagate, trace
from ordersync.common.v1 import order_pb2, shipment_pb2
from ordersync.tracking.v1 import events_pb2

from libs.clients.carrier_mapping import CarrierMappingClient, CarrierMappingUnavailable, CodeQuery, Translation
from libs.connectors.base.contract import Capability, ChannelUpdate, ConnectorInfo, WritebackStep
from libs.connectors.base.errors import ConnectorError
from libs.platform import metrics
from libs.platform.accounts import AccountClients, AccountNotConfigured
from libs.platform.events import new_event
from libs.platform.outbox import write_events
from libs.platform.work_queue import retry_delay
from tracking_writeback.domain.writeback import Plan, plan
from tracking_writeback.storage.writebacks import WriteResult, claim_due, recheck_blocked, record_results

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

WRITEBACKS_TOPIC = "tracking.writebacks.v1"
_PROTO_STATUS = {
    "shipped": shipment_pb2.SHIPMENT_STATUS_SHIPPED,
    "delivered": shipment_pb2.SHIPMENT_STATUS_DELIVERED,
    "cancelled": shipment_pb2.SHIPMENT_STATUS_CANCELLED,
}


class TakesNoWriteback(LookupError):
    """The order's channel connector does not declare Capability.WRITE_BACK: nothing to retry."""


class NoChannelCarrierCode(Exception):
    """The channel takes only carrier codes of its own and the shipment's courier maps to none:
    the write is blocked until the tenant's mapping exists. The message is the operator's reason."""


class Writer:
    """One pass = lease due orders, write each to its channel, record outcomes with their events."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: AccountClients,
        carriers: CarrierMappingClient,
        *,
        topic: str,
        producer: str,
        lease_s: float,
        batch: int,
        max_attempts: int,
        blocked_recheck_s: float = 60.0,
    ):
        self._pool = pool
        self._channels = channels
        self._carriers = carriers
        self._topic = topic
        self._producer = producer
        self._lease_s = lease_s
        self._batch = batch
        self._max_attempts = max_attempts
        self._blocked_recheck = timedelta(seconds=blocked_recheck_s)
        # Tenants whose carrier mappings changed since the last pass (None in it: every tenant).
        self._changed: set[str | None] = set()
        self._connections = metrics.ConnectionFailures(log)

    def mappings_changed(self, tenant_id: str | None) -> None:
        """Carrier mapping reported a change of the tenant's mappings (None: maybe of any): its
        blocked writes are checked again at the next pass. Wake the worker after calling it."""
        self._changed.add(tenant_id)

    async def run_once(self) -> int:
        await self._recheck_changed()
        rows = await claim_due(self._pool, self._batch, self._lease_s)
        if not rows:
            return 0
        carriers = await self._channel_carriers(rows)
        results = await asyncio.gather(*(self._write(row, carriers) for row in rows))
        async with self._pool.acquire() as conn, conn.transaction():
            recorded = await record_results(conn, results)
            written = [
                (row, r)
                for row, r in zip(rows, results, strict=True)
                if r.status == "written" and r.order_id in recorded
            ]
            await write_events(conn, [self._event(row, r) for row, r in written])
        _observe(rows, results, recorded)
        return len(rows)

    async def _recheck_changed(self) -> None:
        changed, self._changed = self._changed, set()
        if not changed:
            return
        try:
            made_due = await recheck_blocked(self._pool, None if None in changed else sorted(t for t in changed if t))
        except Exception:
            self._changed |= changed  # try again at the next pass; the schedule re-checks them anyway
            raise
        if made_due:
            log.info("carrier mappings changed; blocked writebacks checked again", extra={"fields": {"rows": made_due}})

    async def _write(self, row, carriers: dict) -> WriteResult:
        parent = propagate.extract({"traceparent": row["traceparent"]})
        with (
            _tracer.start_as_current_span("write back to channel", context=parent) as span,
            structlog.contextvars.bound_contextvars(order_id=row["order_id"], tenant=row["tenant_id"]),
        ):
            span.set_attribute("ordersync.order_id", row["order_id"])
            try:
                the_plan = _plan_of(row)
                notified = await self._apply(row, the_plan, carriers)
            except NoChannelCarrierCode as exc:
                return self._blocked(row, str(exc))
            except (ConnectorError, LookupError) as exc:
                if isinstance(exc, ConnectorError) and exc.retryable:  # the channel is unreachable or failing
                    self._connections.failed(row["tenant_id"], row["channel_account"])
                return self._failure(row, exc)
            except CarrierMappingUnavailable as exc:
                return self._failure(row, exc, retryable=True)
            except Exception as exc:  # never leave a write without a recorded outcome and reason
                log.exception("writeback failed unexpectedly", extra={"fields": {"order_id": row["order_id"]}})
                return self._failure(row, exc, retryable=True)
        self._connections.succeeded(row["tenant_id"], row["channel_account"])
        return WriteResult(
            row["order_id"],
            row["tenant_id"],
            "written",
            the_plan.reached,
            "",
            notified,
            None,
            _written_words(the_plan, notified),
            row["attempts"],
            json.dumps(the_plan.written_tracking),
            row["target_revision"],
        )

    async def _apply(self, row, the_plan: Plan, carriers: dict) -> bool:
        """Write the row's plan through its channel account; True when the customer was told.

        Raises LookupError (AccountNotConfigured, UnknownConnector, TakesNoWriteback) when there
        is no account to write through, ConnectorError from the channel, CarrierMappingUnavailable.
        """
        # Rows from before accounts had names carry '' and resolve to the tenant's only
        # account of the row's channel connector.
        account = await self._channels.channel(row["tenant_id"], row["channel_account"], row["channel"])
        info = account.connector.info
        if info.id != row["channel"]:  # the account was re-pointed: its ids mean nothing there
            raise AccountNotConfigured(
                f"channel account {account.account.name!r} is now a {info.label} account;"
                f" the order came from {row['channel']}"
            )
        if not info.can(Capability.WRITE_BACK):
            raise TakesNoWriteback(
                f"{info.label} (channel account {account.account.name!r}) takes no writebacks;"
                " the shipment state stays at the provider"
            )
        if not the_plan.steps:
            return False
        shipment = _writable(_shipment_of(row), the_plan)
        ships = WritebackStep.SHIP in the_plan.steps
        carrier = _carrier_for(carriers, row, shipment, as_code=info.needs_carrier_code) if ships else None
        if carrier is None and info.needs_carrier_code and ships:
            raise NoChannelCarrierCode(_no_carrier_code(row, shipment, info))
        update = ChannelUpdate(
            row["external_id"], row["external_number"], the_plan.steps, shipment, carrier, _order_lines(row)
        )
        return await account.connector.write_back(account.client, account.settings, update)

    async def _channel_carriers(self, rows) -> dict:
        """The channel's spelling of each shipment's carrier, one carrier-mapping call per tenant.

        Keys are (tenant_id, CodeQuery); a value is a Translation, or CarrierMappingUnavailable
        for that tenant's queries (their writes are then retried).
        """
        wanted: dict[str, set[CodeQuery]] = defaultdict(set)
        traces: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            query = _carrier_query(row, _shipment_of(row))
            if query is not None:
                wanted[row["tenant_id"]].add(query)
                traces[row["tenant_id"]].append(row["traceparent"])
        answers: dict = {}
        for tenant_id, queries in wanted.items():
            translated: Mapping[CodeQuery, Translation | CarrierMappingUnavailable]
            try:
                # In the first order's trace, linking the others: without a span of ours the
                # call would be a root client span, which the sampler drops as idle noise.
                with _batch_span("translate carrier codes", traces[tenant_id]):
                    translated = await self._carriers.translate_many(tenant_id, queries)
            except CarrierMappingUnavailable as exc:
                translated = dict.fromkeys(queries, exc)
            except grpc.aio.AioRpcError as exc:
                # A refusal (a token not granted this tenant, a bad query) is kept as the
                # tenant's writes' reason and retried like the sender does, not left to abort
                # the whole pass with nothing recorded.
                refused = CarrierMappingUnavailable(f"carrier mapping answered {exc.code().name}: {exc.details()}")
                translated = dict.fromkeys(queries, refused)
            answers.update({(tenant_id, query): answer for query, answer in translated.items()})
        return answers

    def _failure(self, row, exc: Exception, *, retryable: bool = False) -> WriteResult:
        message = exc.message if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"
        retryable = retryable or (isinstance(exc, ConnectorError) and exc.retryable)
        attempts = row["attempts"]
        if retryable and attempts < self._max_attempts:
            status, when = "retry_wait", datetime.now(UTC) + retry_delay(attempts)
        else:
            status, when = "failed", None
        return WriteResult(
            row["order_id"],
            row["tenant_id"],
            status,
            row["written_status"],
            message,
            False,
            when,
            f"attempt {attempts} to write {row['target_status'] or 'a retraction'} failed: {message}",
            attempts,
            _json_text(row["written_tracking"]),
            row["target_revision"],
        )

    def _blocked(self, row, reason: str) -> WriteResult:
        """Blocked until the tenant's mapping exists: nothing written, checked again later; the
        activity log has the block once, not once per re-check."""
        repeated = row["status"] == "blocked" and row["reason"] == reason
        return WriteResult(
            row["order_id"],
            row["tenant_id"],
            "blocked",
            row["written_status"],
            reason,
            False,
            datetime.now(UTC) + self._blocked_recheck,
            "" if repeated else f"blocked, not written to the channel: {reason}",
            row["attempts"],
            _json_text(row["written_tracking"]),
            row["target_revision"],
        )

    def _event(self, row, result: WriteResult):
        message = events_pb2.ChannelUpdated(
            order_id=row["order_id"],
            channel_ref=order_pb2.ChannelOrderRef(
                channel=row["channel"],
                external_id=row["external_id"],
                external_number=row["external_number"],
                account=row["channel_account"],
            ),
            status=_PROTO_STATUS.get(result.written_status, shipment_pb2.SHIPMENT_STATUS_UNSPECIFIED),
            tracking_numbers=json.loads(result.written_tracking),
            customer_notified=result.customer_notified,
            retracted_tracking_numbers=_plan_of(row).retracted,
        )
        return new_event(
            self._topic,
            message,
            aggregate_id=row["order_id"],
            tenant_id=row["tenant_id"],
            producer=self._producer,
            traceparent=row["traceparent"],
        )


def _batch_span(name: str, traceparents: list[str]):
    """A span joining the first order's trace and linking the others'."""
    contexts = [propagate.extract({"traceparent": tp}) for tp in traceparents]
    links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:]]
    return _tracer.start_as_current_span(name, context=contexts[0], links=links)


_OUTCOME_NAMES = {"retry_wait": "retry"}


def _observe(rows, results: list[WriteResult], recorded) -> None:
    """Count each recorded outcome and, for a shipment first written back, its time since shipping."""
    now = datetime.now(UTC)
    for row, result in zip(rows, results, strict=True):
        if result.order_id not in recorded:
            continue
        outcome = _OUTCOME_NAMES.get(result.status, result.status)
        # Reasons here are sentences (unbounded), so the reason code stays empty.
        metrics.ORDER_OUTCOMES.labels("tracking-writeback", row["channel"], outcome, "").inc()
        if result.status == "written" and row["written_status"] == "" and result.written_status:
            shipment = _shipment_of(row)
            if shipment.HasField("shipped_time"):
                shipped = shipment.shipped_time.ToDatetime(tzinfo=UTC)
                metrics.SHIPMENT_WRITEBACK.labels(row["channel"]).observe(max(0.0, (now - shipped).total_seconds()))


def _plan_of(row) -> Plan:
    shipment = _shipment_of(row)
    return plan(
        row["written_status"],
        json.loads(_json_text(row["written_tracking"])),
        row["target_status"],
        shipment.tracking_numbers,
        shipment.voided_tracking_numbers,
    )


def _writable(shipment: shipment_pb2.Shipment, the_plan: Plan) -> shipment_pb2.Shipment:
    """The shipment the channel is given: its live tracking numbers only, never a voided one."""
    writable = shipment_pb2.Shipment()
    writable.CopyFrom(shipment)
    del writable.tracking_numbers[:]
    writable.tracking_numbers.extend(the_plan.tracking)
    return writable


def _written_words(the_plan: Plan, notified: bool) -> str:
    words = f"channel updated to {the_plan.reached or 'no shipment'}"
    if the_plan.retracted:
        words += f"; tracking of voided labels taken back: {', '.join(the_plan.retracted)}"
    return words + ("; customer e-mailed" if notified else "")


def _json_text(value) -> str:
    # asyncpg hands jsonb over as its text; rows from before migration 0004 have '[]'.
    return value if isinstance(value, str) else json.dumps(value or [])


def _order_lines(row) -> list[order_pb2.OrderLine]:
    order = order_pb2.Order()
    order.ParseFromString(row["order_lines_proto"] or b"")
    return list(order.lines)


def _shipment_of(row) -> shipment_pb2.Shipment:
    shipment = shipment_pb2.Shipment()
    shipment.ParseFromString(row["shipment_proto"])
    return shipment


def _carrier_query(row, shipment: shipment_pb2.Shipment) -> CodeQuery | None:
    if not shipment.service_code:
        return None
    return CodeQuery(from_system=row["provider"], code=shipment.service_code, to_system=row["channel"])


def _no_carrier_code(row, shipment: shipment_pb2.Shipment, channel: ConnectorInfo) -> str:
    """The blocked write's reason: which courier has no code of the channel's, and the fix."""
    tenant, provider, code = row["tenant_id"], row["provider"], shipment.service_code
    catalog = f"python -m carrier_mapping.cli catalog {channel.id} lists the {channel.label} codes"
    if not code:
        courier = shipment.carrier or "(not named)"
        return (
            f"courier {courier} has no {channel.label} code: {provider} reported the shipment without its courier"
            f" service code, so none can be mapped; fix: have {provider} report the courier service, and map it"
            f" with python -m carrier_mapping.cli add {tenant} {provider} CODE NAME CARRIER CANONICAL_CARRIER"
            f" [CANONICAL_SERVICE] ({catalog})"
        )
    return (
        f"courier {code} has no {channel.label} code; fix: python -m carrier_mapping.cli add {tenant} {provider}"
        f" {code} NAME CARRIER CANONICAL_CARRIER [CANONICAL_SERVICE], naming a canonical carrier (and service)"
        f" that {channel.label} has a code for ({catalog}); written as soon as the mapping exists"
    )


def _carrier_for(carriers: dict, row, shipment: shipment_pb2.Shipment, *, as_code: bool = False) -> str | None:
    """The mapped carrier spelling (`as_code`: the channel's carrier code, for a channel that
    takes only codes of its own list); None (the connector spells the canonical carrier) when the
    provider gave no service code or the tenant maps none. Raises CarrierMappingUnavailable."""
    query = _carrier_query(row, shipment)
    answer = carriers.get((row["tenant_id"], query)) if query else None
    if isinstance(answer, CarrierMappingUnavailable):
        raise answer
    if answer is None or not answer.found:
        return None
    return answer.code if as_code else answer.carrier
