"""Vinoshipper webhooks: parse the thin, unsigned notification (the order is always re-fetched)."""

from __future__ import annotations

from pydantic import ValidationError

from ..base.errors import InvalidWebhook
from ..base.json_text import load_json
from ..base.models import describe_validation_error
from .schemas import VinoshipperWebhook

_REQUIRED = ("identifier", "subject", "event")


def parse_webhook(body: bytes) -> VinoshipperWebhook:
    """Parse a webhook body `{identifier, subject, event, href, hrefV3}`.

    The notification is unsigned and carries no producer id: receive it on a per-producer
    URL with a secret path token, trust none of its content, and fetch the order again with
    `VinoshipperClient.fetch_href(hook.hrefV3)` (which only calls Vinoshipper itself) or
    `get_order(hook.identifier)`. Only `is_order_event` notifications matter to ordersync.

    Args:
        body: the raw request body.

    Returns:
        The validated webhook.

    Raises:
        InvalidWebhook: not JSON, nested deeper than `json_text.MAX_DEPTH`, text no store can
            keep (a NUL character or a lone surrogate, anywhere), not a JSON object,
            identifier/subject/event missing, or a field of the wrong type.
    """
    data = load_json(body, label="vinoshipper webhook", error=InvalidWebhook)
    if not isinstance(data, dict):
        raise InvalidWebhook("vinoshipper webhook: body is not a JSON object")
    for key in _REQUIRED:
        if data.get(key) in (None, ""):
            raise InvalidWebhook(f"vinoshipper webhook: '{key}' is missing")
    try:
        return VinoshipperWebhook.model_validate(data)
    except ValidationError as exc:
        raise InvalidWebhook(f"vinoshipper webhook: {describe_validation_error(exc)}") from exc
