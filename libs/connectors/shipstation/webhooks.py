"""ShipStation v1 webhooks: the thin, unsigned `{resource_url, resource_type}` notice (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ..base.errors import InvalidWebhook
from ..base.json_text import load_json

SHIP_NOTIFY = "SHIP_NOTIFY"
ITEM_SHIP_NOTIFY = "ITEM_SHIP_NOTIFY"
SHIPMENT_EVENTS = frozenset({SHIP_NOTIFY, ITEM_SHIP_NOTIFY})
MAX_URL = 2000


@dataclass(frozen=True)
class ShipStationWebhook:
    """A parsed notice: what to re-read, and the selector it names (e.g. `batchId=123`)."""

    resource_url: str
    resource_type: str
    selector: str


def parse_webhook(body: bytes) -> ShipStationWebhook:
    """Parse `{resource_url, resource_type}`.

    Nothing in it is trusted: the body says only what to re-read, and
    ShipStationClient.fetch_resource refuses any URL that is not this account's ShipStation.
    `selector` names the resource for receipts: the URL's `orderNumber`, `batchId` or
    `orderId` parameter, as `name=value`.

    Raises:
        InvalidWebhook: not JSON, not an object, resource_url or resource_type missing or not
            text, or a resource_url that is not an absolute http(s) URL.
    """
    data = load_json(body, label="shipstation webhook", error=InvalidWebhook)
    if not isinstance(data, dict):
        raise InvalidWebhook("shipstation webhook: body is not a JSON object")
    url, kind = data.get("resource_url"), data.get("resource_type")
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise InvalidWebhook("shipstation webhook: 'resource_url' is missing")
    if not isinstance(kind, str) or not kind:
        raise InvalidWebhook("shipstation webhook: 'resource_type' is missing")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise InvalidWebhook("shipstation webhook: 'resource_url' is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidWebhook("shipstation webhook: 'resource_url' is not an absolute http(s) URL")
    selector = next(
        (f"{name}={parsed.params[name]}" for name in ("orderNumber", "batchId", "orderId") if parsed.params.get(name)),
        parsed.path or "/",
    )
    return ShipStationWebhook(url, kind, selector[:100])
