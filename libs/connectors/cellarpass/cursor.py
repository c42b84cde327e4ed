"""The pull cursor: where the next `GET /v1/reservations` page starts. Pure.

Reservations are listed by `updatedAt` ascending (ties by reservationId) from `updatedSince`
(inclusive). The cursor holds the watermark (`since`: the latest updatedAt read), the page to
ask next from it, and the ids already returned at exactly the watermark, so they are not
returned again. After a page:

- its latest updatedAt is later than the watermark: it becomes the watermark, from page 1;
- the whole page sits at the watermark (more reservations share one instant than a page
  holds): the next page from the same watermark, so the read always moves on;
- the page was the last one: the same rule, and `more` is False.

A change to a reservation gives it a later updatedAt, so it comes back (also after it was
synced: intake records such a change as locked). A page may be fetched twice (the cursor is
committed with its orders); it then returns the same reservations, deduplicated in intake on
(reservationId, updatedAt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..base import convert
from ..base.errors import InvalidRequest


@dataclass(frozen=True)
class Cursor:
    """Where to resume: `since` ("" before the first page), the page from it, the ids seen at it."""

    since: str = ""
    page: int = 1
    seen: tuple[str, ...] = ()

    def encode(self) -> str:
        data: dict[str, Any] = {"since": self.since, "page": self.page}
        if self.seen:
            data["seen"] = list(self.seen)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)


def decode(text: str) -> Cursor:
    """Read a cursor `Cursor.encode` wrote ("" is the start).

    Raises:
        InvalidRequest: not such a cursor (never retryable: an operator resets it).
    """
    if not text:
        return Cursor()
    try:
        data = json.loads(text)
        cursor = Cursor(str(data["since"]), int(data["page"]), tuple(str(i) for i in data.get("seen", ())))
        if cursor.since:
            instant(cursor.since)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise InvalidRequest("cellarpass cursor is not one this connector wrote") from exc
    if cursor.page < 1:
        raise InvalidRequest("cellarpass cursor page is below 1")
    return cursor


def is_new(cursor: Cursor, reservation_id: str, updated_at: str) -> bool:
    """False for a reservation this cursor returned already (at its watermark)."""
    return reservation_id not in cursor.seen or instant(updated_at) != instant(cursor.since)


def advance(cursor: Cursor, page: list[tuple[str, str]], *, full: bool) -> Cursor:
    """The cursor after a page of (reservationId, updatedAt) rows, as CellarPass listed them.

    Args:
        cursor: the cursor the page was fetched with.
        page: every readable row of the page, including those dropped as already seen.
        full: the page held as many rows as asked for, so more may follow.
    """
    if not page:
        return cursor
    latest = max((updated for _, updated in page), key=instant)
    at_latest = {rid for rid, updated in page if instant(updated) == instant(latest)}
    if cursor.since and instant(latest) == instant(cursor.since):
        seen = tuple(sorted({*cursor.seen, *at_latest}))
        # The whole page sits at the watermark: from page 1 again it would be this page again.
        return Cursor(cursor.since, cursor.page + 1 if full else cursor.page, seen)
    return Cursor(latest, 1, tuple(sorted(at_latest)))


def instant(value: str) -> datetime:
    """An updatedAt as an aware UTC datetime; raises ValueError for text that is not ISO-8601."""
    return convert.parse_datetime(value)
