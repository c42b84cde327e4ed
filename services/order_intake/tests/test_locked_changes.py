"""How a change of a synced order is told to operators: what changed, when, as what, what to do. Pure."""

from datetime import UTC, datetime

from ordersync.common.v1 import money_pb2, order_pb2

from order_intake.domain.intake import SyncLock, locked_message, order_changes


def reservation(total: int = 12000, status: str = "Paid", quantity: int = 2) -> order_pb2.Order:
    order = order_pb2.Order(external_id="R-1", revision="2026-11-30T10:00:00Z", channel_status=status)
    order.totals.total.CopyFrom(money_pb2.Money(currency_code="USD", minor_units=total))
    order.lines.add(sku="TASTING-FLIGHT", quantity=quantity)
    order.customer.email = "guest@example.com"
    return order


def test_a_refund_and_a_cancellation_are_named_with_their_values():
    changed = reservation(total=9000, status="Cancelled")
    changed.revision = "2026-11-30T12:00:00Z"
    assert order_changes(reservation(), changed) == ["total 120.00 → 90.00", "status Paid → Cancelled"]


def test_changed_lines_are_listed_and_a_customers_details_are_never_quoted():
    changed = reservation(quantity=3)
    changed.customer.email = "someone.else@example.com"
    assert order_changes(reservation(), changed) == [
        "lines 2× TASTING-FLIGHT → 3× TASTING-FLIGHT",
        "customer details changed",
    ]


def test_a_new_revision_that_changes_nothing_has_no_changes():
    same = reservation()
    same.revision = "2026-11-30T13:00:00Z"
    assert order_changes(reservation(), same) == []


def test_the_message_names_the_change_the_sync_its_reference_and_what_to_do_by_their_labels():
    lock = SyncLock("CellarPass", {"vinsuite": "VinSuite"}.__getitem__)
    message = locked_message(
        lock,
        ["total 120.00 → 90.00", "status Paid → Cancelled"],
        synced_at=datetime(2026, 11, 30, 10, 5, tzinfo=UTC),
        provider="vinsuite",
        provider_reference="84512",
    )
    assert message == (
        "Changed in CellarPass after sync: total 120.00 → 90.00; status Paid → Cancelled. "
        "Synced to VinSuite on 2026-11-30 10:05 UTC as 84512. "
        "VinSuite orders cannot be edited after sync: make the change in VinSuite by hand; "
        "CellarPass keeps the order as synced, and ordersync sends nothing more for it."
    )
