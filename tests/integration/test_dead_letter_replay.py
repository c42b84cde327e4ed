"""Dead letters replayed over DeadLetterService on real Kafka, Postgres and gRPC: every answer
code, edits audited, a replay reaching only the group that set the message aside, and a replay
asked twice having one effect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from ordersync.compliance.v1 import events_pb2 as compliance_events
from ordersync.intake.v1 import events_pb2 as intake_events
from ordersync.ops.v1 import dead_letters_pb2 as pb
from ordersync.ops.v1 import dead_letters_pb2_grpc as pb_grpc

from libs.platform.auth import OPERATOR, Caller, CallerDirectory, GrpcAccess
from libs.platform.dead_letters import dead_letter_binding
from libs.platform.events import EnvelopeError, new_event, parse_envelope, unpack
from libs.platform.kafka import BatchConsumer, claim_fresh, create_producer, keep_dead_letter
from libs.platform.order_history import dead_letter_steps
from libs.platform.outbox import OutboxRelay
from libs.platform.testing import ACME_OPERATOR, ACME_READER, GLOBEX_OPERATOR, TEST_CALLERS, authorized, serving
from tests.integration.test_outbox_and_consumer import SCHEMA, accepted, prepared_pool

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(120)]

ALL_OPERATOR = "all-tenants-operator-token"
CALLERS = {**TEST_CALLERS, ALL_OPERATOR: Caller("sre@ordersync.example", frozenset({"*"}), frozenset({OPERATOR}))}
UNDECODABLE = b"\xff not an envelope"


@dataclass
class Pipeline:
    """Two consumer groups of one topic, a relay for replays, and the API over the dead letters."""

    pool: asyncpg.Pool
    topic: str
    ours: str
    other_seen: list[str] = field(default_factory=list)  # event ids the other group was handed
    unusable: set[str] = field(default_factory=set)  # order ids our handler cannot apply (yet)
    channel: grpc.aio.Channel | None = None

    def api(self, token: str):
        return authorized(pb_grpc.DeadLetterServiceStub(self.channel), token)

    async def applied(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT order_id, event_id FROM applied ORDER BY order_id")

    async def wait_for(self, query: str, expected: int) -> None:
        for _ in range(200):
            if await self.pool.fetchval(query) >= expected:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{query} never reached {expected}")


@pytest_asyncio.fixture
async def pipeline(infra, database, topics) -> AsyncIterator[Pipeline]:
    pool = await prepared_pool(database)
    await pool.execute("CREATE TABLE applied (order_id text, event_id text)")
    topic = f"{topics}intake.orders.v1"
    found = Pipeline(pool, topic, ours=f"ours-{uuid.uuid4().hex[:6]}")

    async def apply(events):
        # Our service: an envelope of the wrong type is kept as a dead letter, the rest applied.
        async with pool.acquire() as conn, conn.transaction():
            for event in await claim_fresh(conn, found.ours, events):
                try:
                    order = unpack(event.envelope, intake_events.OrderAccepted).order
                except EnvelopeError as exc:
                    await keep_dead_letter(conn, found.ours, event, str(exc))
                    continue
                if order.order_id in found.unusable:  # e.g. configuration the order needs is missing
                    await keep_dead_letter(conn, found.ours, event, f"could not apply order {order.order_id}")
                    continue
                await conn.execute("INSERT INTO applied VALUES ($1, $2)", order.order_id, event.event_id)

    async def other(events):
        found.other_seen.extend(e.event_id for e in events)

    def consumer(group: str, handler) -> BatchConsumer:
        return BatchConsumer(
            bootstrap=infra.kafka_bootstrap, topics=[topic], group_id=group, handler=handler, pool=pool
        )

    producer = create_producer(infra.kafka_bootstrap, "replays")
    await producer.start()
    binding = dead_letter_binding(
        pool, GrpcAccess(CallerDirectory(CALLERS.items())), service="order-intake", topic=lambda n: f"{topics}{n}"
    )
    try:
        async with (
            consumer(found.ours, apply),
            consumer(f"other-{found.ours}", other),
            OutboxRelay(pool, producer, SCHEMA, bootstrap=infra.kafka_bootstrap),
            serving(binding) as channel,
        ):
            found.channel = channel
            yield found
    finally:
        await producer.stop()
        await pool.close()


async def publish(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"o-1", partition=0)
    finally:
        await producer.stop()


def wrong_type(topic: str) -> bytes:
    """A RoutingDecided on the orders topic: an envelope our handler cannot use."""
    return new_event(
        topic, compliance_events.RoutingDecided(), aggregate_id="o-1", tenant_id="acme", producer="test"
    ).value


def fixed(topic: str, order_id: str = "o-1") -> bytes:
    return new_event(topic, accepted(order_id), aggregate_id="o-1", tenant_id="acme", producer="operator").value


async def dead_letters_of(pipeline: Pipeline, infra) -> dict:
    """Publish one undecodable message, one of the wrong type and a good one; wait for the dead
    letters: both groups set the undecodable one aside, our group the one of the wrong type."""
    wrong = wrong_type(pipeline.topic)
    await publish(infra.kafka_bootstrap, pipeline.topic, UNDECODABLE, wrong, fixed(pipeline.topic, "good"))
    await pipeline.wait_for("SELECT count(*) FROM dead_letters", 3)
    rows = await pipeline.pool.fetch("SELECT id, consumer_group FROM dead_letters ORDER BY id")
    ours = [r["id"] for r in rows if r["consumer_group"] == pipeline.ours]
    other = [r["id"] for r in rows if r["consumer_group"] != pipeline.ours]
    return {
        "undecodable": ours[0],
        "wrong_type": ours[1],
        "other_undecodable": other[0],
        "wrong_event_id": parse_envelope(wrong).event_id,
    }


async def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code()


async def test_a_tenant_lists_and_reads_only_its_own_dead_letters(pipeline, infra):
    ids = await dead_letters_of(pipeline, infra)
    mine = await pipeline.api(ACME_READER).ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="acme"))
    assert [(d.id, d.tenant_id, d.event_type) for d in mine.dead_letters] == [
        (ids["wrong_type"], "acme", "ordersync.compliance.v1.RoutingDecided")
    ]
    assert (
        mine.dead_letters[0].order_id == "o-1"
        and "expected ordersync.intake.v1.OrderAccepted" in mine.dead_letters[0].error
    )
    assert mine.next_page_token == ""
    # Every tenant, a page at a time: the undecodable message (no tenant) is seen only there.
    first = await pipeline.api(ALL_OPERATOR).ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="*", page_size=2))
    rest = await pipeline.api(ALL_OPERATOR).ListDeadLetters(
        pb.ListDeadLettersRequest(tenant_id="*", page_size=2, page_token=first.next_page_token)
    )
    every = [d.id for d in [*first.dead_letters, *rest.dead_letters]]
    assert every == sorted([ids["wrong_type"], ids["undecodable"], ids["other_undecodable"]], reverse=True)
    assert rest.next_page_token == ""
    unreadable = {d.id for d in [*first.dead_letters, *rest.dead_letters] if d.tenant_id == ""}
    assert unreadable == {ids["undecodable"], ids["other_undecodable"]}
    by_topic = await pipeline.api(ACME_READER).ListDeadLetters(
        pb.ListDeadLettersRequest(tenant_id="acme", filter=pb.DeadLetterFilter(topic="elsewhere"))
    )
    assert list(by_topic.dead_letters) == []

    shown = await pipeline.api(ACME_READER).GetDeadLetter(
        pb.GetDeadLetterRequest(tenant_id="acme", id=ids["wrong_type"])
    )
    assert parse_envelope(shown.value).event_id == ids["wrong_event_id"]
    assert '"eventType": "ordersync.compliance.v1.RoutingDecided"' in shown.value_json
    undecodable = await pipeline.api(ALL_OPERATOR).GetDeadLetter(
        pb.GetDeadLetterRequest(tenant_id="*", id=ids["undecodable"])
    )
    assert undecodable.value == UNDECODABLE and undecodable.value_json == ""

    api = pipeline.api(ACME_READER)
    assert await code_of(api.GetDeadLetter(pb.GetDeadLetterRequest(tenant_id="acme", id=ids["undecodable"]))) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code_of(api.ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="*")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert await code_of(api.ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="acme", page_size=501))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await code_of(api.ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="acme", page_token="x"))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    globex = pipeline.api(GLOBEX_OPERATOR)
    assert await code_of(globex.ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="acme"))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert await code_of(globex.GetDeadLetter(pb.GetDeadLetterRequest(tenant_id="globex", id=ids["wrong_type"]))) == (
        grpc.StatusCode.NOT_FOUND
    )
    anonymous = pb_grpc.DeadLetterServiceStub(pipeline.channel)
    assert await code_of(anonymous.ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="acme"))) == (
        grpc.StatusCode.UNAUTHENTICATED
    )


async def test_an_edited_replay_reaches_our_group_once_and_is_audited(pipeline, infra):
    ids = await dead_letters_of(pipeline, infra)
    operator, dead = pipeline.api(ACME_OPERATOR), ids["wrong_type"]

    def replay(**fields) -> pb.ReplayDeadLettersRequest:
        return pb.ReplayDeadLettersRequest(tenant_id="acme", ids=[dead], reason="order lines fixed", **fields)

    # Kept as it is, the message would fail again: the answer says to edit it.
    as_kept = await operator.ReplayDeadLetters(replay())
    assert as_kept.results[0].outcome == pb.REPLAY_OUTCOME_NOT_REPLAYABLE
    assert "replay it with an edited value" in as_kept.results[0].reason
    for bad_edit in (b"garbage", wrong_type(pipeline.topic)):
        assert (
            await code_of(operator.ReplayDeadLetters(replay(edited_value=bad_edit))) == grpc.StatusCode.INVALID_ARGUMENT
        )
    reader = pipeline.api(ACME_READER)
    assert await code_of(reader.ReplayDeadLetters(replay(edited_value=fixed(pipeline.topic)))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    dry = await reader.ReplayDeadLetters(replay(edited_value=fixed(pipeline.topic), dry_run=True))
    assert dry.results[0].outcome == pb.REPLAY_OUTCOME_WOULD_REPLAY
    assert dry.results[0].event_id == ids["wrong_event_id"]  # an edit keeps the event id
    assert await pipeline.pool.fetchval("SELECT count(*) FROM dead_letter_replays") == 0

    done = await operator.ReplayDeadLetters(replay(edited_value=fixed(pipeline.topic)))
    assert [(r.id, r.outcome, r.event_id) for r in done.results] == [
        (dead, pb.REPLAY_OUTCOME_REPLAYED, ids["wrong_event_id"])
    ]
    await pipeline.wait_for("SELECT count(*) FROM applied WHERE order_id = 'o-1'", 1)
    again = await operator.ReplayDeadLetters(replay(edited_value=fixed(pipeline.topic)))
    assert again.results[0].outcome == pb.REPLAY_OUTCOME_ALREADY_REPLAYED
    assert "by jane@acme.example" in again.results[0].reason
    await asyncio.sleep(1.5)  # time for a second delivery, were there one
    applied = await pipeline.applied()
    assert [r["order_id"] for r in applied] == ["good", "o-1"] and applied[1]["event_id"] == ids["wrong_event_id"]
    # The other group had the original and was not handed the replay.
    assert pipeline.other_seen.count(ids["wrong_event_id"]) == 1

    shown = await operator.GetDeadLetter(pb.GetDeadLetterRequest(tenant_id="acme", id=dead))
    assert shown.dead_letter.replayed and shown.dead_letter.replayed_by == "jane@acme.example"
    assert [(r.operator, r.reason, r.edited, r.event_id) for r in shown.replays] == [
        ("jane@acme.example", "order lines fixed", True, ids["wrong_event_id"])
    ]
    assert parse_envelope(shown.replays[0].edited_value).event_type == "ordersync.intake.v1.OrderAccepted"
    listed = await operator.ListDeadLetters(pb.ListDeadLettersRequest(tenant_id="acme"))
    assert list(listed.dead_letters) == []  # replayed ones are listed only when asked for
    async with pipeline.pool.acquire() as conn:
        steps = {
            s.message.split("(dead letter ")[1].split(")")[0]: s for s in await dead_letter_steps(conn, "x", ["o-1"])
        }
    replayed = steps[str(dead)]
    assert (replayed.status, replayed.failed, replayed.action) == ("replayed", False, "")
    assert "replayed by jane@acme.example" in replayed.message
    assert (
        steps[str(ids["undecodable"])].failed
        and "ordersync dead-letters replay" in steps[str(ids["undecodable"])].action
    )


async def test_an_undecodable_message_replays_only_edited_under_an_id_of_its_place(pipeline, infra):
    ids = await dead_letters_of(pipeline, infra)
    sre, dead = pipeline.api(ALL_OPERATOR), ids["undecodable"]
    by_filter = await sre.ReplayDeadLetters(
        pb.ReplayDeadLettersRequest(
            tenant_id="*", filter=pb.DeadLetterFilter(error_contains="NOT AN EVENTENVELOPE"), reason="r"
        )
    )
    assert {(r.id, r.outcome) for r in by_filter.results} == {
        (dead, pb.REPLAY_OUTCOME_NOT_REPLAYABLE),
        (ids["other_undecodable"], pb.REPLAY_OUTCOME_NOT_REPLAYABLE),
    }
    edited = fixed(pipeline.topic, "o-1")

    async def replay_edited(dead_letter_id) -> pb.ReplayResult:
        request = pb.ReplayDeadLettersRequest(tenant_id="*", ids=[dead_letter_id], reason="r", edited_value=edited)
        return (await sre.ReplayDeadLetters(request)).results[0]

    ours = await replay_edited(dead)
    assert ours.outcome == pb.REPLAY_OUTCOME_REPLAYED
    assert ours.event_id != parse_envelope(edited).event_id  # derived from where the message was
    await pipeline.wait_for("SELECT count(*) FROM applied WHERE order_id = 'o-1'", 1)
    assert await pipeline.pool.fetchval("SELECT event_id FROM applied WHERE order_id = 'o-1'") == ours.event_id
    # The other group's copy of the same message, edited alike, gets the same event id (a service
    # that applied one copy would skip the other), and the replay reaches that group only.
    theirs = await replay_edited(ids["other_undecodable"])
    assert theirs.event_id == ours.event_id
    for _ in range(100):
        if ours.event_id in pipeline.other_seen:
            break
        await asyncio.sleep(0.1)
    assert pipeline.other_seen.count(ours.event_id) == 1
    assert await pipeline.pool.fetchval("SELECT count(*) FROM applied WHERE order_id = 'o-1'") == 1


async def test_a_replay_request_must_be_well_formed(pipeline):
    api = pipeline.api(ACME_OPERATOR)
    invalid = [
        pb.ReplayDeadLettersRequest(tenant_id="acme", ids=[1]),  # no reason
        pb.ReplayDeadLettersRequest(tenant_id="acme", reason="r"),  # neither ids nor filter
        pb.ReplayDeadLettersRequest(tenant_id="acme", reason="r", ids=[1], filter=pb.DeadLetterFilter(topic="t")),
        pb.ReplayDeadLettersRequest(tenant_id="acme", reason="r", ids=list(range(1, 502))),
        pb.ReplayDeadLettersRequest(tenant_id="acme", reason="r", ids=[1, 2], edited_value=b"x"),
    ]
    for request in invalid:
        assert await code_of(api.ReplayDeadLetters(request)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(
        api.ReplayDeadLetters(pb.ReplayDeadLettersRequest(tenant_id="acme", reason="r", ids=[99]))
    ) == (grpc.StatusCode.NOT_FOUND)
    nothing = await api.ReplayDeadLetters(
        pb.ReplayDeadLettersRequest(tenant_id="acme", reason="r", filter=pb.DeadLetterFilter(topic="none"))
    )
    assert list(nothing.results) == []


async def test_many_replayed_in_one_call_once_the_cause_is_fixed_each_apply_once(pipeline, infra):
    pipeline.unusable.update({"a", "b", "c"})
    await publish(infra.kafka_bootstrap, pipeline.topic, *(fixed(pipeline.topic, o) for o in ("a", "b", "c")))
    await pipeline.wait_for("SELECT count(*) FROM dead_letters", 3)
    ids = [r["id"] for r in await pipeline.pool.fetch("SELECT id FROM dead_letters ORDER BY id")]
    pipeline.unusable.clear()  # the cause fixed
    operator = pipeline.api(ACME_OPERATOR)
    request = pb.ReplayDeadLettersRequest(tenant_id="acme", ids=ids, reason="configuration fixed")
    first = await operator.ReplayDeadLetters(request)
    assert [(r.id, r.outcome) for r in first.results] == [(i, pb.REPLAY_OUTCOME_REPLAYED) for i in ids]
    await pipeline.wait_for("SELECT count(*) FROM applied", 3)
    again = await operator.ReplayDeadLetters(request)
    assert {r.outcome for r in again.results} == {pb.REPLAY_OUTCOME_ALREADY_REPLAYED}
    await asyncio.sleep(1.5)  # time for a second delivery, were there one
    assert sorted(r["order_id"] for r in await pipeline.applied()) == ["a", "b", "c"]
    audit = await pipeline.pool.fetch("SELECT dead_letter_id, operator, edited_value FROM dead_letter_replays")
    assert sorted((r["dead_letter_id"], r["operator"], r["edited_value"]) for r in audit) == [
        (i, "jane@acme.example", None) for i in ids
    ]
