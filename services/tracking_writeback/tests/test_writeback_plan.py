"""Writeback's pure plan: which channel updates bring the order to the provider's state."""

from libs.connectors.base.contract import WritebackStep
from tracking_writeback.domain.writeback import advance, live_tracking, plan, supersedes, wanted

RETRACT, SHIP, DELIVER, VOID = WritebackStep.RETRACT, WritebackStep.SHIP, WritebackStep.DELIVER, WritebackStep.VOID


def steps(written: str, target: str, **shipment) -> list[WritebackStep]:
    return plan(written, shipment.pop("written_tracking", ()), target, **shipment).steps


def test_shipped_writes_one_fulfilment():
    assert steps("", "shipped", tracking=["1Z1"]) == [SHIP]


def test_delivery_after_shipment_only_marks_delivered():
    assert steps("shipped", "delivered", tracking=["1Z1"], written_tracking=["1Z1"]) == [DELIVER]


def test_delivery_reported_before_shipment_was_written_still_writes_the_shipment_first():
    assert steps("", "delivered", tracking=["1Z1"]) == [SHIP, DELIVER]


def test_nothing_to_do_when_already_written():
    assert steps("delivered", "delivered", tracking=["1Z1"], written_tracking=["1Z1"]) == []


def test_void_is_written_once():
    assert steps("", "cancelled") == [VOID]
    assert steps("cancelled", "cancelled") == []


def test_label_created_is_not_news_for_the_channel():
    assert not wanted("fulfilled")
    assert wanted("shipped") and wanted("delivered") and wanted("cancelled")


def test_older_reports_do_not_supersede_newer_ones():
    assert supersedes("delivered", "shipped")
    assert not supersedes("shipped", "delivered")


def test_the_numbers_written_are_kept_for_a_later_retraction():
    shipped = plan("", [], "shipped", ["1Z1", "1Z2"])
    assert (shipped.reached, shipped.written_tracking, shipped.tracking) == ("shipped", ["1Z1", "1Z2"], ["1Z1", "1Z2"])


def test_a_written_number_whose_label_was_voided_is_taken_back_and_nothing_shown_after():
    retraction = plan("shipped", ["1Z1"], "", [], ["1Z1"])
    assert retraction.steps == [RETRACT]
    assert (retraction.retracted, retraction.reached, retraction.written_tracking) == (["1Z1"], "", [])


def test_a_new_label_after_a_voided_one_is_written_after_the_retraction():
    relabel = plan("shipped", ["1Z1"], "shipped", ["1Z1", "1Z9"], ["1Z1"])
    assert relabel.steps == [RETRACT, SHIP]
    assert (relabel.tracking, relabel.written_tracking, relabel.reached) == (["1Z9"], ["1Z9"], "shipped")


def test_a_voided_number_is_never_written_even_when_reported_shipped():
    stale = plan("", [], "shipped", ["1Z1"], ["1Z1"])
    assert (stale.steps, stale.reached, stale.written_tracking) == ([], "", [])
    assert live_tracking(["1Z1", " 1Z2 ", "1Z2", ""], ["1Z1"]) == ["1Z2"]


def test_a_voided_label_never_written_takes_nothing_back():
    assert steps("", "", voided=["1Z1"]) == []
    assert steps("shipped", "shipped", tracking=["1Z2"], written_tracking=["1Z2"], voided=["1Z1"]) == []


def test_a_cancellation_after_a_written_label_was_voided_takes_it_back_first():
    assert steps("shipped", "cancelled", written_tracking=["1Z1"], voided=["1Z1"]) == [RETRACT, VOID]
    assert steps("cancelled", "cancelled", written_tracking=["1Z1"], voided=["1Z1"]) == [RETRACT]


def test_voided_labels_are_news_even_when_the_state_is_no_further_on():
    assert advance("shipped", [], "shipped", ["1Z1"]) == "shipped"  # a new label replaced it
    assert advance("shipped", [], "fulfilled", ["1Z1"]) == ""  # every label voided
    assert advance("shipped", ["1Z1"], "fulfilled", ["1Z1"]) is None  # known already
    assert advance("cancelled", [], "", ["1Z1"]) == "cancelled"
    assert advance("", ["1Z1"], "shipped", ["1Z1"]) == "shipped"
    assert advance("delivered", [], "shipped", []) is None
