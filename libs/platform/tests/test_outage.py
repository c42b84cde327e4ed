"""Outage logging: a line per state change and reminder, not per retry."""

import logging

import pytest

from libs.platform.outage import OutageLog, RepeatedRecordFilter


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_an_outage_logs_its_start_reminders_and_its_end_not_every_retry(caplog, clock):
    outage = OutageLog(logging.getLogger("test.outage"), "consumer pass", remind_s=30.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(100):  # 100 retries over 50 s
            outage.failed(ConnectionRefusedError("broker down"))
            clock.now += 0.5
        outage.recovered()
        outage.recovered()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["consumer pass failing; retrying", "consumer pass still failing", "consumer pass recovered"]
    assert caplog.records[0].exc_info is not None
    assert caplog.records[2].fields["failures"] == 100


def test_a_new_outage_after_recovery_is_logged_again(caplog, clock):
    outage = OutageLog(logging.getLogger("test.outage"), "worker pass", clock=clock)
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.failed(OSError("down"))
        outage.recovered()
        outage.failed(OSError("down again"))
    assert [r.getMessage() for r in caplog.records] == [
        "worker pass failing; retrying",
        "worker pass recovered",
        "worker pass failing; retrying",
    ]
    assert outage.failing


def record(name: str, msg: str, *args) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_a_library_line_repeated_by_every_retry_passes_once_per_reminder_with_a_count(clock):
    kept = RepeatedRecordFilter("aiokafka", remind_s=30.0, clock=clock)
    passed = []
    for i in range(400):  # ten a second for 40 s
        r = record("aiokafka", "Unable connect to node with id %s: %s", i % 3, "refused")
        if kept.filter(r):
            passed.append(r.getMessage())
        clock.now += 0.1
    assert len(passed) == 2
    assert passed[1].endswith("[299 more like this in the last 30 s]")


def test_other_kinds_and_other_loggers_pass_untouched(clock):
    kept = RepeatedRecordFilter("aiokafka", clock=clock)
    assert kept.filter(record("aiokafka.conn", "Unable connect"))
    assert kept.filter(record("aiokafka.consumer.fetcher", "Failed fetch messages from %s", 1))
    assert not kept.filter(record("aiokafka.conn", "Unable connect"))
    for _ in range(3):
        assert kept.filter(record("libs.platform.kafka", "consumer pass failing; retrying"))
        assert kept.filter(record("aiokafkax", "not aiokafka's"))
