"""Dead letters an operator can read and replay: `ordersync.ops.v1.DeadLetterService`.

Every service with Kafka consumers or an outbox keeps `dead_letters` in its schema (kafka.py for
consumed messages it could not decode or use, outbox.py for its own events Kafka refused for
good) and serves this API over them. A replay republishes the message through the service's own
outbox, in the transaction that marks the dead letter replayed and audits who, why and what: so
it is published once, or not at all. A consumed message is redelivered to the service's own
consumer group only (REPLAY_FOR_HEADER): the topic's other groups had it already. A dead letter
is replayed at most once; a replay that fails again is a new dead letter, to be fixed and
replayed in turn. An edited message keeps the event id of the one it replaces, so the group's
processed-event ledger still makes any redelivery harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import asyncpg
import grpc
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message
from ordersync.compliance.v1 import events_pb2 as compliance_events
from ordersync.dispatch.v1 import events_pb2 as dispatch_events
from ordersync.intake.v1 import events_pb2 as intake_events
from ordersync.ops.v1 import dead_letters_pb2 as pb
from ordersync.ops.v1 import dead_letters_pb2_grpc as pb_grpc
from ordersync.tracking.v1 import events_pb2 as tracking_events

from libs.platform.auth import ALL_TENANTS, OPERATOR, READ, Caller, GrpcAccess
from libs.platform.db import PgConnection
from libs.platform.events import EnvelopeError, OutgoingEvent, parse_envelope
from libs.platform.grpc_server import ServiceBinding, abort, bind
from libs.platform.kafka import REPLAY_FOR_HEADER
from libs.platform.metrics import DEAD_LETTER_REPLAYS
from libs.platform.outbox import decode_headers, write_events

# The event types each topic carries (topic names without the deployment's prefix).
TOPIC_EVENT_TYPES: dict[str, tuple[type[Message], ...]] = {
    "intake.orders.v1": (intake_events.OrderAccepted,),
    "compliance.decisions.v1": (compliance_events.RoutingDecided,),
    "dispatch.orders.v1": (dispatch_events.OrderDispatched, dispatch_events.OrderDispatchFailed),
    "dispatch.shipments.v1": (dispatch_events.ShipmentUpdated,),
    "tracking.writebacks.v1": (tracking_events.ChannelUpdated,),
}
MAX_PAGE = 500  # dead letters per page, and per replay
DEFAULT_PAGE = 100
MAX_EDITED_BYTES = 1_000_000  # Kafka's default message limit
_EDITED_EVENT_IDS = uuid.UUID("6f1d0c8e-3b7a-4c53-9a51-0d6c2b8e4f17")  # namespace of uuid5 event ids

_COLUMNS = (
    'id, tenant_id, source, topic, consumer_group, partition, "offset", key, value, headers, error,'
    " received_at, replayed_at, replayed_by, outbox_id"
)


class DeadLetterServicer(pb_grpc.DeadLetterServiceServicer):
    """DeadLetterService over one service's schema. `topic` maps a topic's name to the full one."""

    def __init__(self, pool: asyncpg.Pool, access: GrpcAccess, *, service: str, topic: Callable[[str], str]):
        self._pool = pool
        self._access = access
        self._service = service
        self._event_types = {
            topic(name): {t.DESCRIPTOR.full_name for t in types} for name, types in TOPIC_EVENT_TYPES.items()
        }

    async def ListDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeadLettersResponse:
        await self._access.require(context, request.tenant_id, READ)
        page_size = request.page_size or DEFAULT_PAGE
        if not 1 <= page_size <= MAX_PAGE:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"page_size must be 1 to {MAX_PAGE}")
        where = _Where(request.tenant_id).matching(request.filter, include_replayed=request.filter.include_replayed)
        if request.page_token:
            if not request.page_token.isdigit():
                await abort(context, grpc.StatusCode.INVALID_ARGUMENT, "page_token is not one this API gave")
            where.add("id < {}", int(request.page_token))
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM dead_letters WHERE {where.sql} ORDER BY id DESC LIMIT {page_size + 1}",
                *where.args,
            )
        more = len(rows) > page_size
        rows = rows[:page_size]
        return pb.ListDeadLettersResponse(
            dead_letters=[self._proto(r) for r in rows], next_page_token=str(rows[-1]["id"]) if more else ""
        )

    async def GetDeadLetter(
        self, request: pb.GetDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDeadLetterResponse:
        await self._access.require(context, request.tenant_id, READ)
        async with self._pool.acquire() as conn:
            row = await _one(conn, request.tenant_id, request.id)
            replays = await conn.fetch(
                "SELECT replayed_at, operator, reason, edited_value, event_id FROM dead_letter_replays"
                " WHERE dead_letter_id = $1 ORDER BY id",
                request.id,
            )
        if row is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, _not_found(request.tenant_id, [request.id]))
        return pb.GetDeadLetterResponse(
            dead_letter=self._proto(row),
            value=row["value"] or b"",
            value_json=_readable(row["value"]),
            replays=[_replay_proto(r) for r in replays],
        )

    async def ReplayDeadLetters(
        self, request: pb.ReplayDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReplayDeadLettersResponse:
        caller = await self._access.require(context, request.tenant_id, READ if request.dry_run else OPERATOR)
        problem = _request_problem(request)
        if problem:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, problem)
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await self._chosen(conn, request)
            if request.ids and len(rows) < len(set(request.ids)):
                missing = sorted(set(request.ids) - {r["id"] for r in rows})
                await abort(context, grpc.StatusCode.NOT_FOUND, _not_found(request.tenant_id, missing))
            edited = None
            if request.edited_value:
                edited, problem = self._edited(rows[0], request.edited_value)
                if edited is None:
                    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, problem)
            replay = _Replay(caller, request.reason, request.dry_run)
            results = [replay.judge(row, self._replayable(row, edited)) for row in rows]
            await replay.republish(conn)
        for result in results:
            if result.outcome != pb.REPLAY_OUTCOME_WOULD_REPLAY:
                DEAD_LETTER_REPLAYS.labels(outcome_name(result.outcome)).inc()
        return pb.ReplayDeadLettersResponse(results=results)

    async def _chosen(self, conn: PgConnection, request: pb.ReplayDeadLettersRequest) -> list[asyncpg.Record]:
        """The dead letters the request chose, locked for this transaction, in the order chosen."""
        where = _Where(request.tenant_id)
        if request.ids:
            where.add("id = ANY({})", list(request.ids))
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM dead_letters WHERE {where.sql} FOR UPDATE", *where.args)
            by_id = {r["id"]: r for r in rows}
            return [by_id[i] for i in dict.fromkeys(request.ids) if i in by_id]
        where.matching(request.filter, include_replayed=False)
        return await conn.fetch(
            f"SELECT {_COLUMNS} FROM dead_letters WHERE {where.sql} ORDER BY id LIMIT {MAX_PAGE} FOR UPDATE",
            *where.args,
        )

    def _edited(self, row: asyncpg.Record, value: bytes) -> tuple[OutgoingEvent | None, str]:
        """The operator's replacement of `row`'s message as the event to publish, or the problem."""
        try:
            envelope = parse_envelope(value)
        except EnvelopeError as exc:
            return None, f"edited_value is {exc}"
        problem = self._type_problem(row["topic"], envelope.event_type)
        if problem:
            return None, f"edited_value: {problem}"
        envelope.event_id = _event_id_of(row)
        return _event(row, envelope.SerializeToString(), envelope.event_id, envelope.event_type), ""

    def _replayable(self, row: asyncpg.Record, edited: OutgoingEvent | None) -> OutgoingEvent | str:
        """The event replaying `row` publishes, or why it cannot be replayed as kept."""
        if edited is not None:
            return edited
        try:
            envelope = parse_envelope(row["value"] or b"")
        except EnvelopeError as exc:
            return f"the message is {exc}; replay it with an edited value"
        problem = self._type_problem(row["topic"], envelope.event_type)
        if problem:
            return f"{problem}; replay it with an edited value"
        return _event(row, row["value"], envelope.event_id, envelope.event_type)

    def _type_problem(self, topic: str, event_type: str) -> str:
        allowed = self._event_types.get(topic)
        if allowed is not None and event_type not in allowed:
            return f"{event_type} is not an event {topic} carries ({', '.join(sorted(allowed))})"
        return ""

    def _proto(self, row: asyncpg.Record) -> pb.DeadLetter:
        return pb.DeadLetter(
            id=row["id"],
            service=self._service,
            tenant_id=row["tenant_id"],
            source=row["source"],
            topic=row["topic"],
            consumer_group=row["consumer_group"] or "",
            partition=row["partition"] or 0,
            offset=row["offset"] or 0,
            order_id=(row["key"] or b"").decode("utf-8", "replace"),
            event_type=_event_type(row["value"]),
            error=row["error"],
            received_at=_stamp(row["received_at"]),
            replayed=row["replayed_at"] is not None,
            replayed_at=_stamp(row["replayed_at"]) if row["replayed_at"] else None,
            replayed_by=row["replayed_by"] or "",
            value_bytes=len(row["value"] or b""),
        )


class _Replay:
    """One ReplayDeadLetters call: each dead letter judged, then every replay written at once
    (four statements, however many dead letters) on the call's transaction."""

    def __init__(self, caller: Caller, reason: str, dry_run: bool):
        self._caller = caller
        self._reason = reason
        self._dry_run = dry_run
        self._replays: list[tuple[asyncpg.Record, OutgoingEvent]] = []

    def judge(self, row: asyncpg.Record, replayable: OutgoingEvent | str) -> pb.ReplayResult:
        """What replaying `row` does; a real replay is kept for `republish`."""
        if row["replayed_at"] is not None:
            when = row["replayed_at"].isoformat(timespec="seconds")
            return _result(row, pb.REPLAY_OUTCOME_ALREADY_REPLAYED, f"replayed at {when} by {row['replayed_by']}")
        if isinstance(replayable, str):
            return _result(row, pb.REPLAY_OUTCOME_NOT_REPLAYABLE, replayable)
        if self._dry_run:
            return _result(row, pb.REPLAY_OUTCOME_WOULD_REPLAY, f"would republish to {row['topic']}", replayable)
        self._replays.append((row, replayable))
        return _result(row, pb.REPLAY_OUTCOME_REPLAYED, f"republished to {row['topic']}", replayable)

    async def republish(self, conn: PgConnection) -> None:
        if not self._replays:
            return
        consumed = [(row["consumer_group"], e.event_id) for row, e in self._replays if row["source"] == "consumer"]
        # A group may have claimed an event before setting it aside: let it process it again.
        await conn.execute(
            "DELETE FROM processed_events p USING unnest($1::text[], $2::text[]) AS r(consumer_group, event_id)"
            " WHERE p.consumer_group = r.consumer_group AND p.event_id = r.event_id",
            [group for group, _ in consumed],
            [event_id for _, event_id in consumed],
        )
        await write_events(conn, [event for _, event in self._replays])
        ids = [row["id"] for row, _ in self._replays]
        await conn.execute(
            "UPDATE dead_letters SET replayed_at = now(), replayed_by = $2 WHERE id = ANY($1::bigint[])",
            ids,
            self._caller.name,
        )
        await conn.execute(
            "INSERT INTO dead_letter_replays (dead_letter_id, operator, reason, edited_value, event_id)"
            " SELECT d, $2, $3, v, e FROM unnest($1::bigint[], $4::bytea[], $5::text[]) AS r(d, v, e)",
            ids,
            self._caller.name,
            self._reason,
            [event.value if event.value != row["value"] else None for row, event in self._replays],
            [event.event_id for _, event in self._replays],
        )


class _Where:
    """A WHERE clause built from a request: the tenant first, then the filter's conditions."""

    def __init__(self, tenant_id: str):
        self.args: list[object] = []
        self._parts: list[str] = []
        if tenant_id != ALL_TENANTS:
            self.add("tenant_id = {}", tenant_id)

    def add(self, condition: str, value: object) -> _Where:
        self.args.append(value)
        self._parts.append(condition.format(f"${len(self.args)}"))
        return self

    def matching(self, chosen: pb.DeadLetterFilter, *, include_replayed: bool) -> _Where:
        if chosen.topic:
            self.add("topic = {}", chosen.topic)
        if chosen.error_contains:
            self.add("strpos(lower(error), lower({})) > 0", chosen.error_contains)
        if chosen.HasField("since"):
            self.add("received_at >= {}", chosen.since.ToDatetime(tzinfo=UTC))
        if chosen.HasField("until"):
            self.add("received_at < {}", chosen.until.ToDatetime(tzinfo=UTC))
        if chosen.order_id:
            self.add("key = convert_to({}, 'UTF8')", chosen.order_id)
        if not include_replayed:
            self._parts.append("replayed_at IS NULL")
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self._parts) or "true"


def dead_letter_binding(
    pool: asyncpg.Pool, access: GrpcAccess, *, service: str, topic: Callable[[str], str]
) -> ServiceBinding:
    """DeadLetterService over the service's schema, to serve beside its other bindings."""
    return bind(pb, pb_grpc, "DeadLetterService", DeadLetterServicer(pool, access, service=service, topic=topic))


def outcome_name(outcome: pb.ReplayOutcome) -> str:
    """The outcome in words: "replayed", "would_replay", "already_replayed", "not_replayable"."""
    return pb.ReplayOutcome.Name(outcome).removeprefix("REPLAY_OUTCOME_").lower()


def _request_problem(request: pb.ReplayDeadLettersRequest) -> str:
    if not request.dry_run and not request.reason.strip():
        return "reason is required: say why these are replayed"
    if bool(request.ids) == request.HasField("filter"):
        return "choose dead letters by ids or by filter (one of them)"
    if len(request.ids) > MAX_PAGE:
        return f"at most {MAX_PAGE} ids per call"
    if request.edited_value and len(request.ids) != 1:
        return "edited_value replaces one dead letter's message: give exactly one id"
    if len(request.edited_value) > MAX_EDITED_BYTES:
        return f"edited_value is over {MAX_EDITED_BYTES} bytes"
    return ""


async def _one(conn: PgConnection, tenant_id: str, dead_letter_id: int) -> asyncpg.Record | None:
    where = _Where(tenant_id).add("id = {}", dead_letter_id)
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM dead_letters WHERE {where.sql}", *where.args)


def _event_id_of(row: asyncpg.Record) -> str:
    """The event id a replacement of `row`'s message carries: the original's, or one derived
    from where the message was (the same for every service that set the same message aside)."""
    try:
        return parse_envelope(row["value"] or b"").event_id
    except EnvelopeError:
        return str(uuid.uuid5(_EDITED_EVENT_IDS, f"{row['topic']}/{row['partition']}/{row['offset']}"))


def _event(row: asyncpg.Record, value: bytes, event_id: str, event_type: str) -> OutgoingEvent:
    """The replay of `row` carrying `value`: its key and trace, for its own group when consumed."""
    kept = decode_headers(row["headers"]) if row["headers"] else []
    headers = [(k, v) for k, v in kept if k not in (REPLAY_FOR_HEADER, "event_type")]
    headers.append(("event_type", event_type.encode()))
    if row["source"] == "consumer":
        headers.append((REPLAY_FOR_HEADER, row["consumer_group"].encode()))
    return OutgoingEvent(row["topic"], row["key"] or b"", value, headers, event_id)


def _result(
    row: asyncpg.Record, outcome: pb.ReplayOutcome, reason: str, event: OutgoingEvent | None = None
) -> pb.ReplayResult:
    return pb.ReplayResult(id=row["id"], outcome=outcome, reason=reason, event_id=event.event_id if event else "")


def _event_type(value: bytes | None) -> str:
    try:
        return parse_envelope(value or b"").event_type
    except EnvelopeError:
        return ""


def _readable(value: bytes | None) -> str:
    """The envelope as protobuf JSON, its payload included; "" when it is not an envelope."""
    try:
        return json_format.MessageToJson(parse_envelope(value or b""), indent=2)
    except (EnvelopeError, TypeError, KeyError):  # a payload of an unknown type cannot be shown
        return ""


def _replay_proto(row: asyncpg.Record) -> pb.DeadLetterReplay:
    return pb.DeadLetterReplay(
        replayed_at=_stamp(row["replayed_at"]),
        operator=row["operator"],
        reason=row["reason"],
        edited=row["edited_value"] is not None,
        edited_value=row["edited_value"] or b"",
        event_id=row["event_id"],
    )


def _not_found(tenant_id: str, ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids)
    return f"tenant {tenant_id!r} has no dead letter {shown} at this service"


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp
