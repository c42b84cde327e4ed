"""The pull cursor: where the next `GET /v1/SalesOrders` page starts. Pure.

Cin7 filters on ModifiedDate and many orders can share one instant (a bulk stage change), so
a bare watermark either skips the orders left at that instant past a page boundary (`>`) or
re-reads the same page forever (`>=`). The cursor therefore holds the watermark and the ids
already returned at exactly that instant:

- reading: `ModifiedDate>='W'`, oldest first, the ids already seen at W dropped;
- when a whole page sits at W (nothing newer on it), the orders at W are walked by id
  (`ModifiedDate='W' AND Id>last`), so the page always moves on;
- once that walk ends, every order at W has been read: `ModifiedDate>'W'` from then on.

A page may be fetched twice (the cursor is committed with its orders); it then returns the
same orders, which intake dedupes on (order id, revision).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ..base import convert
from ..base.errors import InvalidRequest


@dataclass(frozen=True)
class Cursor:
    """Where to resume.

    Attributes:
        watermark: the ModifiedDate (as Cin7 wrote it) read up to; "" before the first page.
        seen: ids returned already whose ModifiedDate is exactly `watermark`.
        after_id: walking the orders at exactly `watermark` by id, past this one; None otherwise.
        past: every order at `watermark` has been read: ask only for later ones.
    """

    watermark: str = ""
    seen: tuple[int, ...] = ()
    after_id: int | None = None
    past: bool = False

    def where(self) -> str:
        """The `where` filter of the next request (empty before the first page)."""
        if not self.watermark:
            return ""
        if self.after_id is not None:
            return f"ModifiedDate='{self.watermark}' AND Id>{self.after_id}"
        return f"ModifiedDate{'>' if self.past else '>='}'{self.watermark}'"

    def order(self) -> str:
        """The `order` of the next request."""
        return "Id ASC" if self.after_id is not None else "ModifiedDate ASC"

    def encode(self) -> str:
        data: dict[str, Any] = {"w": self.watermark}
        if self.seen:
            data["seen"] = list(self.seen)
        if self.after_id is not None:
            data["after_id"] = self.after_id
        if self.past:
            data["past"] = True
        return json.dumps(data, separators=(",", ":"), sort_keys=True)


def decode(text: str) -> Cursor:
    """Read a cursor `Cursor.encode` wrote ("" is the start).

    Raises:
        InvalidRequest: the text is not such a cursor (never retryable: an operator resets it).
    """
    if not text:
        return Cursor()
    try:
        data = json.loads(text)
        cursor = Cursor(
            watermark=str(data["w"]),
            seen=tuple(int(i) for i in data.get("seen", ())),
            after_id=int(data["after_id"]) if data.get("after_id") is not None else None,
            past=bool(data.get("past", False)),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidRequest("cin7 cursor is not one this connector wrote") from exc
    try:
        if cursor.watermark:
            _instant(cursor.watermark)
    except (ValueError, OverflowError):
        raise InvalidRequest("cin7 cursor watermark is not a date") from None
    if "'" in cursor.watermark:  # it goes into the `where` text
        raise InvalidRequest("cin7 cursor watermark is not a date")
    return cursor


def is_new(cursor: Cursor, order_id: int, modified: str) -> bool:
    """False for an order this cursor has returned already (at its watermark)."""
    if order_id not in cursor.seen:
        return True
    try:
        return _instant(modified) != _instant(cursor.watermark)
    except ValueError:
        return True


def advance(cursor: Cursor, page: list[tuple[int, str]], *, full: bool) -> Cursor:
    """The cursor after a page of (id, ModifiedDate) rows as Cin7 returned them.

    Args:
        cursor: the cursor the page was fetched with.
        page: every row of the page, including the ones dropped as already seen.
        full: the page held as many rows as asked for, so more may follow.
    """
    if cursor.after_id is not None:
        if not full:  # the walk through the instant is over
            return Cursor(cursor.watermark, past=True)
        return replace(cursor, after_id=max(order_id for order_id, _ in page))
    if not page:
        return cursor
    latest = max((modified for _, modified in page), key=_instant)
    at_latest = {order_id for order_id, modified in page if _instant(modified) == _instant(latest)}
    if cursor.watermark and _instant(latest) == _instant(cursor.watermark):
        seen = tuple(sorted({*cursor.seen, *at_latest}))
        if full:
            # The whole page sits at the watermark: asking `>=` again would return it again.
            # Cin7 orders ties arbitrarily, so the walk by id starts at the lowest id.
            return Cursor(cursor.watermark, seen=seen, after_id=0)
        return replace(cursor, seen=seen)
    return Cursor(latest, seen=tuple(sorted(at_latest)))


def _instant(value: str) -> datetime:
    return convert.parse_datetime(value)
