"""Writeback's pure plan: which channel updates bring the order to the provider's state."""

from libs.connectors.base.contract import WritebackStep
from tracking_writeback.domain.writeback import plan, supersedes, wanted


def test_shipped_writes_one_fulfilment():
    assert plan("", "shipped") == [WritebackStep.SHIP]


def test_delivery_after_shipment_only_marks_delivered():
    assert plan("shipped", "delivered") == [WritebackStep.DELIVER]


def test_delivery_reported_before_shipment_was_written_still_writes_the_shipment_first():
    assert plan("", "delivered") == [WritebackStep.SHIP, WritebackStep.DELIVER]


def test_nothing_to_do_when_already_written():
    assert plan("delivered", "delivered") == []


def test_void_is_written_once():
    assert plan("", "cancelled") == [WritebackStep.VOID]
    assert plan("cancelled", "cancelled") == []


def test_label_created_is_not_news_for_the_channel():
    assert not wanted("fulfilled")
    assert wanted("shipped") and wanted("delivered") and wanted("cancelled")


def test_older_reports_do_not_supersede_newer_ones():
    assert supersedes("delivered", "shipped")
    assert not supersedes("shipped", "delivered")
