"""Orders a channel's import rules keep out, on real Postgres and over real gRPC and SMTP:
stored as not_imported with every rule, replaced by a passing revision, never pulling back an
accepted order; the failed-import mail queued with the revision, once per (order, code), and
sent with retries to the mail sink."""

from __future__ import annotations

import pytest
import pytest_asyncio
from ordersync.common.v1 import order_pb2
from ordersync.intake.v1 import intake_service_pb2 as pb
from ordersync.intake.v1 import intake_service_pb2_grpc as pb_grpc

from libs.connectors.base.contract import ParsedOrder
from libs.connectors.base.issues import Issue
from libs.connectors.registry import default_registry
from libs.platform.db import create_pool, migrate
from libs.platform.grpc_server import bind
from libs.platform.mail import SmtpMailer, SmtpSettings
from libs.platform.testing import ACME_READER, access_for_tests, authorized, serving
from order_intake.api.grpc import OrderIntakeServicer
from order_intake.app import MIGRATIONS
from order_intake.domain.intake import InputLimits
from order_intake.mail.sender import ImportMailSender, MailSettings
from order_intake.revisions import RevisionBuilder
from order_intake.storage.orders import RevisionWriter
from tests.simulators.mailsink import MailSink

pytestmark = [pytest.mark.asyncio, pytest.mark.integration, pytest.mark.timeout(60)]

OPS = "ops@acme.example"
NOT_PICKED = Issue(
    "stage", "the order's stage is not 'Fully Picked': move it there once it is picked", "NOT_FULLY_PICKED"
)
NO_COUNTRY = Issue(
    "deliveryCountry", "the delivery address has no country: fill in the delivery country", "NO_DELIVERY_COUNTRY"
)
TOO_OLD = Issue("createdDate", "neither date is recent: set an ETD", "TOO_OLD")


@pytest_asyncio.fixture
async def intake(database):
    await migrate(database, "order_intake", MIGRATIONS)
    pool = await create_pool(database, "order_intake", 4)
    writer = RevisionWriter(pool, max_batch=50)
    await writer.start()
    yield writer, pool
    await writer.stop()
    await pool.close()


def parsed(
    external_id: str, revision: str, *failures: Issue, issues: tuple[Issue, ...] = (), notes: str = ""
) -> ParsedOrder:
    order = order_pb2.Order(
        internal_notes=notes,
        tenant_id="acme",
        external_id=external_id,
        external_number=f"SO-{external_id}",
        revision=revision,
        customer=order_pb2.Customer(first_name="Mere", email="mere@bistro.example"),
    )
    return ParsedOrder(order, list(issues), rule_failures=list(failures))


async def record(writer: RevisionWriter, item: ParsedOrder, mail_to: str = OPS):
    builder = RevisionBuilder("intake.orders.v1", "order-intake", InputLimits())
    revision = builder.from_parsed("acme", "cin7", "omni", item, b"{}", source="pull", mail_to=mail_to)
    return await writer.record(revision)


async def order_row(pool, external_id: str):
    return await pool.fetchrow(
        "SELECT status, status_reason, rule_failures::text AS failures, latest_revision FROM orders"
        " WHERE external_id = $1",
        external_id,
    )


async def test_a_revision_failing_rules_is_not_imported_with_every_rule_and_announces_nothing(intake):
    writer, pool = intake
    recorded = await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED, NO_COUNTRY))
    assert recorded.outcome == "not_imported"
    row = await order_row(pool, "1")
    assert row["status"] == "not_imported"
    assert '"code": "NOT_FULLY_PICKED"' in row["failures"] and '"code": "NO_DELIVERY_COUNTRY"' in row["failures"]
    assert row["status_reason"].startswith("NOT_FULLY_PICKED: the order's stage is not")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    # Bad data still makes an order invalid, even when it also fails a rule.
    bad = await record(
        writer, parsed("2", "2026-12-01T10:00:00.000Z", NOT_PICKED, issues=(Issue("reference", "missing"),))
    )
    assert bad.outcome == "invalid" and (await order_row(pool, "2"))["status"] == "invalid"


async def test_a_newer_passing_revision_replaces_it_and_flows_on(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED))
    fixed = await record(writer, parsed("1", "2026-12-01T11:00:00.000Z"))
    assert fixed.outcome == "accepted"
    row = await order_row(pool, "1")
    assert (row["status"], row["status_reason"], row["failures"]) == ("accepted", "", "[]")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_newer_failing_revision_never_pulls_back_an_accepted_order(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z"))
    moved_back = await record(writer, parsed("1", "2026-12-01T11:00:00.000Z", NOT_PICKED))
    assert moved_back.outcome == "kept_accepted"
    row = await order_row(pool, "1")
    assert (row["status"], row["latest_revision"]) == ("accepted", "2026-12-01T10:00:00.000Z")
    assert await pool.fetchval("SELECT count(*) FROM import_mails") == 0
    assert await pool.fetchval("SELECT outcome FROM webhook_receipts WHERE id = $1", moved_back.receipt_id) == (
        "kept_accepted"
    )
    # A later passing change flows on as any update of an accepted order does.
    changed = parsed("1", "2026-12-01T12:00:00.000Z", notes="leave at the door")
    assert (await record(writer, changed)).outcome == "accepted"
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2


async def test_one_mail_per_order_and_code_however_often_it_comes_back(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED, NO_COUNTRY))
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED, NO_COUNTRY))  # the next poll: duplicate
    await record(writer, parsed("1", "2026-12-01T11:00:00.000Z", NOT_PICKED))  # changed, one rule still failing
    await record(writer, parsed("1", "2026-12-01T12:00:00.000Z", NOT_PICKED, TOO_OLD))  # a new rule fails
    mails = await pool.fetch(
        "SELECT mail_id, recipient, failures::text AS failures FROM import_mails ORDER BY created_at"
    )
    assert [m["mail_id"].split("/")[1] for m in mails] == ["NOT_FULLY_PICKED", "TOO_OLD"]
    assert '"NO_DELIVERY_COUNTRY"' in mails[0]["failures"] and '"NOT_FULLY_PICKED"' not in mails[1]["failures"]
    assert {m["recipient"] for m in mails} == {OPS}


async def test_no_address_no_mail_and_the_order_still_shows_not_imported(intake):
    writer, pool = intake
    assert (await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED), mail_to="")).outcome == (
        "not_imported"
    )
    assert await pool.fetchval("SELECT count(*) FROM import_mails") == 0


async def test_the_listing_shows_not_imported_orders_with_their_rules_filtered_by_code(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED))
    await record(writer, parsed("2", "2026-12-01T10:00:00.000Z", NO_COUNTRY, TOO_OLD))
    await record(writer, parsed("3", "2026-12-01T10:00:00.000Z"))
    binding = bind(pb, pb_grpc, "OrderIntakeService", OrderIntakeServicer(pool, access_for_tests()))
    async with serving(binding) as channel:
        stub = authorized(pb_grpc.OrderIntakeServiceStub(channel), ACME_READER)
        held = await stub.ListOrders(pb.ListOrdersRequest(tenant_id="acme", status=pb.INTAKE_STATUS_NOT_IMPORTED))
        assert sorted(r.order.external_id for r in held.records) == ["1", "2"]
        assert {r.status for r in held.records} == {pb.INTAKE_STATUS_NOT_IMPORTED}
        old = await stub.ListOrders(pb.ListOrdersRequest(tenant_id="acme", rule_code="TOO_OLD"))
        [record_2] = old.records
        assert [(f.code, f.field) for f in record_2.rule_failures] == [
            ("NO_DELIVERY_COUNTRY", "deliveryCountry"),
            ("TOO_OLD", "createdDate"),
        ]
        assert record_2.rule_failures[1].sentence == TOO_OLD.message
        everything = await stub.ListOrders(pb.ListOrdersRequest(tenant_id="acme"))
        assert len(everything.records) == 3


def sender(pool, sink: MailSink, **settings) -> ImportMailSender:
    smtp = SmtpSettings("127.0.0.1", sink.smtp_port, "ordersync@hub.example", starttls=False, timeout_s=5)
    values = {"backoff_base_s": 0.0, "backoff_max_s": 0.0, "max_attempts": 3} | settings
    return ImportMailSender(lambda: pool, SmtpMailer(smtp), default_registry(), MailSettings(**values))


async def test_the_mail_names_the_order_and_each_rule_with_what_to_fix_and_nothing_personal(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED, NO_COUNTRY))
    async with MailSink() as sink:
        mails = sender(pool, sink)
        assert await mails.run_once() == 1
        assert await mails.run_once() == 0  # sent: never again
    [mail] = sink.messages
    assert mail["rcpt_tos"] == [OPS] and mail["subject"] == "Order SO-1 was not imported from Cin7 Omni"
    assert f"- NOT_FULLY_PICKED: {NOT_PICKED.message}" in mail["body"]
    assert f"- NO_DELIVERY_COUNTRY: {NO_COUNTRY.message}" in mail["body"]
    assert "Mere" not in mail["body"] and "bistro" not in mail["body"]
    row = await pool.fetchrow("SELECT status, attempts, sent_at FROM import_mails")
    assert (row["status"], row["attempts"]) == ("sent", 1) and row["sent_at"] is not None


async def test_a_refused_mail_is_tried_again_and_sent_once(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED))
    async with MailSink() as sink:
        sink.fail_next(2, 451)
        mails = sender(pool, sink)
        for _ in range(3):
            await mails.run_once()
        assert await mails.run_once() == 0
    assert len(sink.messages) == 1 and sink.state.refused == 2
    row = await pool.fetchrow("SELECT status, attempts, last_error FROM import_mails")
    assert (row["status"], row["attempts"]) == ("sent", 3)
    log = await pool.fetch("SELECT kind, message FROM import_mail_activity ORDER BY id")
    assert [entry["kind"] for entry in log] == ["retry_wait", "retry_wait", "sent"]


async def test_a_mail_refused_for_good_or_too_often_fails_and_stays_for_the_operator(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED))
    await record(writer, parsed("2", "2026-12-01T10:00:00.000Z", NOT_PICKED))
    async with MailSink() as sink:
        sink.fail_next(1, 550)  # the first mail: refused for good
        sink.fail_next(2, 451)  # the second: refused until it runs out of attempts
        mails = sender(pool, sink, max_attempts=2)
        for _ in range(3):
            await mails.run_once()
    assert sink.messages == []
    rows = await pool.fetch("SELECT status, attempts, last_error FROM import_mails ORDER BY attempts")
    assert [(r["status"], r["attempts"]) for r in rows] == [("failed", 1), ("failed", 2)]
    assert all(r["last_error"].startswith("SMTP server answered") for r in rows)


async def test_a_mail_that_cannot_be_written_fails_alone_and_the_queue_goes_on(intake):
    writer, pool = intake
    await record(writer, parsed("1", "2026-12-01T10:00:00.000Z", NOT_PICKED))
    await record(writer, parsed("2", "2026-12-01T10:00:00.000Z", NOT_PICKED))
    # A row the template cannot fill (a failure without its sentence), as a faulty release might leave.
    await pool.execute("""UPDATE import_mails SET failures = '[{"code": "X"}]' WHERE mail_id = (
        SELECT mail_id FROM import_mails ORDER BY mail_id LIMIT 1)""")
    async with MailSink() as sink:
        assert await sender(pool, sink).run_once() == 2
    rows = await pool.fetch("SELECT status, last_error FROM import_mails ORDER BY status")
    assert [r["status"] for r in rows] == ["failed", "sent"]
    assert rows[0]["last_error"] == "the mail could not be written: UndefinedError"
    assert len(sink.messages) == 1
