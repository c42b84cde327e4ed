"""The Groupon suite's valid objects: the sample page, settings, a client on a recorder, pages."""

from __future__ import annotations

from typing import Any

from libs.connectors.base.ratelimit import KeyedRateLimiter
from libs.connectors.base.testing import FakeClock, json_response, load_vendor_json
from libs.connectors.groupon.client import BURST, GrouponClient
from libs.connectors.groupon.settings import GrouponSettings

BASE_URL = "https://ci.test/api/v4/"


def settings(**changes: Any) -> GrouponSettings:
    values: dict[str, Any] = {"supplier_id": "48213", "token": "tok-secret", "base_url": BASE_URL}
    return GrouponSettings(**(values | changes))


def client(transport: Any, clock: FakeClock | None = None, **changes: Any) -> GrouponClient:
    """A client on `transport` whose backoff and pacing only advance `clock` (no real waits)."""
    clock = clock or FakeClock()
    limiter = KeyedRateLimiter(120, burst=BURST, clock=clock, sleep=clock.sleep)
    return GrouponClient(settings(**changes), transport=transport, rate_limiter=limiter, sleep=clock.sleep)


def sample_page() -> dict[str, Any]:
    return load_vendor_json("groupon", "get_orders_page.json")


def sample_entry(**changes: Any) -> dict[str, Any]:
    """The sample order entry; keyword arguments replace top-level fields."""
    entry = sample_page()["data"][0]
    entry.update(changes)
    return entry


def line(line_id: int, **changes: Any) -> dict[str, Any]:
    values = {
        "ci_lineitemid": line_id,
        "fulfillment_lineitem_id": f"f-{line_id}",
        "sku": f"GRP-{line_id}",
        "bom_sku": "",
        "name": f"Item {line_id}",
        "quantity": 1,
        "unit_price": "5.00",
        "status": "open",
        "ship_by_date": "08/13/2021",
        "gift_message": "",
        "po_number": "",
        "groupon_cost": "3.00",
    }
    return values | changes


def entry_with(order_id: str, *line_ids: int) -> dict[str, Any]:
    return sample_entry(orderid=order_id, line_items=[line(i) for i in line_ids])


def page_answer(number: int, pages: int, items: int, *entries: dict[str, Any]) -> Any:
    meta = {"no_of_pages": pages, "current_page": number, "max_items_per_page": 250, "no_of_items": items}
    return json_response(200, {"success": True, "meta": meta, "data": list(entries)})
