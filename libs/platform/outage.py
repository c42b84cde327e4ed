"""Outage logging: one line when something starts failing, a reminder while it lasts, one when it recovers.

Loops that retry (consumers, the outbox relay, polling workers, health probes) fail many times a
second while Kafka or Postgres is down; a line per retry buries everything else in the log (a 40 s
Kafka outage once wrote 15,000 lines). `OutageLog` keeps the state instead, and
`RepeatedRecordFilter` does the same for libraries that log every retry themselves (aiokafka).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# How often a failure that lasts is logged again: often enough to see it is still going on.
REMIND_S = 30.0


class OutageLog:
    """The failure state of one retried operation, logged on each change and every `remind_s`.

    Call `failed(exc)` on each failed attempt and `recovered()` on each successful one. The first
    failure is logged with its traceback, then "still failing" with the count at most every
    `remind_s`, and the first success after failures is logged with how long it lasted.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        fields: dict | None = None,
        remind_s: float = REMIND_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._log = logger
        self._what = what
        self._fields = fields or {}
        self._remind_s = remind_s
        self._clock = clock
        self._since: float | None = None
        self._last_logged = 0.0
        self._failures = 0

    @property
    def failing(self) -> bool:
        """True from the first failure until the next success."""
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        """Record a failed attempt; logs only when the outage starts or a reminder is due."""
        now = self._clock()
        self._failures += 1
        if self._since is None:
            self._since = self._last_logged = now
            self._log.error(
                f"{self._what} failing; retrying",
                exc_info=exc,
                extra={"fields": {**self._fields, "error": repr(exc)}},
            )
        elif now - self._last_logged >= self._remind_s:
            self._last_logged = now
            self._log.error(
                f"{self._what} still failing",
                extra={"fields": {**self._fields, **self._duration(self._since, now), "error": repr(exc)}},
            )

    def recovered(self) -> None:
        """Record a successful attempt; logs once if it ends an outage."""
        if self._since is None:
            return
        self._log.warning(
            f"{self._what} recovered",
            extra={"fields": {**self._fields, **self._duration(self._since, self._clock())}},
        )
        self._since, self._failures = None, 0

    def _duration(self, since: float, now: float) -> dict:
        return {"failures": self._failures, "failing_for_s": round(now - since, 1)}


class RepeatedRecordFilter(logging.Filter):
    """Lets through a library's log line of one kind once per `remind_s`, counting the ones held back.

    A kind is the logger and the message template, so "Unable connect to node %s" repeated by
    every retry is one kind whatever the node. The line let through after a quiet spell says how
    many were held back. Applies to loggers under `prefix` only; others pass untouched.
    """

    def __init__(self, prefix: str, *, remind_s: float = REMIND_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._prefix = prefix
        self._remind_s = remind_s
        self._clock = clock
        self._kinds: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != self._prefix and not record.name.startswith(self._prefix + "."):
            return True
        kind = (record.name, str(record.msg))
        now = self._clock()
        last, held = self._kinds.get(kind, (None, 0))
        if last is not None and now - last < self._remind_s:
            self._kinds[kind] = (last, held + 1)
            return False
        self._kinds[kind] = (now, 0)
        if held and last is not None:  # held only counts lines after one let through at `last`
            record.msg = f"{record.msg} [{held} more like this in the last {now - last:.0f} s]"
        return True
