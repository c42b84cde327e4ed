"""Intake's OrderHistoryService over real gRPC on real Postgres: the order resolved by any of its
ids, each receipt a step (a locked change and a failed import rule failing ones with what to do),
the sync result, dead letters keyed by the order; NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED."""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio
from ordersync.ops.v1 import order_history_pb2 as pb

from libs.platform.testing import ACME_READER, GLOBEX_OPERATOR, authorized, refusals, refused, serving_history
from order_intake.app import MIGRATIONS
from order_intake.history import IntakeHistory

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest_asyncio.fixture
async def history(database):
    """(pool, stub): intake's schema, seeded by `_seed`, and its OrderHistoryService."""
    async with serving_history(database, "order_intake", MIGRATIONS, IntakeHistory()) as (pool, stub):
        await _seed(pool)
        yield pool, stub


async def _seed(pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO orders (order_id, tenant_id, channel, external_id, external_number, latest_revision, status,"
            " status_reason, order_proto, received_at, updated_at, rule_failures) VALUES"
            " ('ord_1', 'acme', 'commerce7', 'c7-uuid-1', '1042', 'r2', 'accepted', '', '', now() - interval '1 hour',"
            "  now() - interval '50 minutes', '[]'),"
            " ('ord_2', 'acme', 'commerce7', 'c7-uuid-2', '1043', 'r1', 'not_imported', 'too old', '', now(), now(),"
            '  \'[{"code": "TOO_OLD", "field": "order_date", "sentence": "the order is older than 30 days"}]\')'
        )
        for order_id, outcome, source, ago, revision in [
            ("ord_1", "accepted", "push", 60, "r1"),
            ("ord_1", "accepted", "pull", 55, "r2"),
            ("ord_1", "locked_after_sync", "push", 40, ""),
            ("ord_2", "not_imported", "push", 1, "r1"),
        ]:
            receipt = await conn.fetchval(
                "INSERT INTO webhook_receipts (tenant_id, channel, body, outcome, detail, order_id, trace_id, source,"
                " received_at) VALUES ('acme', 'commerce7', '', $1, $2, $3, $4, $5, now() - make_interval(mins => $6))"
                " RETURNING id",
                outcome,
                "the address changed after sync" if outcome == "locked_after_sync" else "",
                order_id,
                TRACE,
                source,
                ago,
            )
            if revision:
                await conn.execute(
                    "INSERT INTO order_revisions (tenant_id, channel, external_id, revision, receipt_id)"
                    " VALUES ('acme', 'commerce7', $1, $2, $3)",
                    f"c7-uuid-{order_id[-1]}",
                    revision,
                    receipt,
                )
        await conn.execute(
            "INSERT INTO handover_acks (order_id, tenant_id, account, ack_token, handed_over_at, provider,"
            " provider_reference, result, result_at) VALUES ('ord_1', 'acme', 'store', 't',"
            " now() - interval '45 minutes', 'vinoshipper', 'VS-9', 'accepted', now() - interval '45 minutes')"
        )
        await conn.execute(
            'INSERT INTO dead_letters (consumer_group, topic, partition, "offset", key, value, error)'
            " VALUES ('order-intake', 'dispatch.orders.v1', 0, 7, convert_to('ord_1', 'UTF8'), '', 'undecodable')"
        )


async def test_an_orders_receipts_results_and_dead_letters_are_its_steps_found_by_any_id(history):
    _, stub = history
    stub = authorized(stub, ACME_READER)
    for given in ("ord_1", "c7-uuid-1", "1042"):
        answer = await stub.GetOrderHistory(pb.GetOrderHistoryRequest(tenant_id="acme", order=given))
        assert (answer.order_id, answer.order_number) == ("ord_1", "1042")
    assert [(s.kind, s.status) for s in answer.steps] == [
        ("received", "accepted"),
        ("revision", "accepted"),
        ("sync_result", "handed_over"),
        ("locked_change", "locked_after_sync"),
        ("dead_letter", "dead_lettered"),
    ]
    assert answer.steps[0].trace_id == TRACE and "webhook revision r1" in answer.steps[0].message
    assert "poll" in answer.steps[1].message
    locked = answer.steps[3]
    assert locked.failed and "locked" in locked.action and "ordersync intake --tenant acme" in locked.action
    assert answer.steps[4].failed and "undecodable" in answer.steps[4].message

    not_imported = await stub.GetOrderHistory(pb.GetOrderHistoryRequest(tenant_id="acme", order="1043"))
    rule = [s for s in not_imported.steps if s.kind == "import_rule_failed"]
    assert len(rule) == 1 and (rule[0].reason_code, rule[0].failed) == ("TOO_OLD", True)
    assert "commerce7" in rule[0].action


async def test_unknown_orders_and_callers_and_other_tenants_are_refused(history):
    _, stub = history
    unknown = pb.GetOrderHistoryRequest(tenant_id="acme", order="9999")
    assert await refused(authorized(stub, ACME_READER).GetOrderHistory(unknown)) == grpc.StatusCode.NOT_FOUND
    request = pb.GetOrderHistoryRequest(tenant_id="acme", order="ord_1")
    assert await refusals(stub, "GetOrderHistory", request) == (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    # globex asking for its own tenant does not see acme's order
    isolated = pb.GetOrderHistoryRequest(tenant_id="globex", order="ord_1")
    assert await refused(authorized(stub, GLOBEX_OPERATOR).GetOrderHistory(isolated)) == grpc.StatusCode.NOT_FOUND
