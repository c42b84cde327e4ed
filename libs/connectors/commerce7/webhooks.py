"""Commerce7 order webhooks: parse and validate the body, verify the optional Basic credentials."""

from __future__ import annotations

import base64
import binascii
import hmac

from pydantic import ValidationError

from ..base.errors import InvalidWebhook
from ..base.json_text import load_json
from ..base.models import describe_validation_error
from .schemas import Commerce7Webhook

ORDER_OBJECT = "Order"


class UnsupportedWebhook(InvalidWebhook):
    """A well-formed webhook about an object ordersync does not use (Customer, Product ...).

    Receivers acknowledge and ignore it: answering 4xx would make Commerce7 retry it for days.
    """

    reason_code = "UNSUPPORTED_OBJECT"


_REQUIRED = ("object", "action", "payload", "tenantId")


def parse_webhook(body: bytes) -> Commerce7Webhook:
    """Parse an order webhook body `{object, action, payload, user, tenantId}`.

    Commerce7 webhooks carry no signature and no delivery id: authenticate them with
    `verify_basic_auth`, check that `tenantId` is the tenant those credentials belong to (it is
    only the sender's claim), and make handling idempotent on (payload.id, payload.updatedAt).

    Args:
        body: the raw request body.

    Returns:
        The validated webhook; `payload` is the full order (same shape as `GET /order/{id}`).

    Raises:
        InvalidWebhook: the body is not JSON, nests deeper than `json_text.MAX_DEPTH`, holds
            text no store can keep (a NUL character or a lone surrogate, anywhere), is not a
            JSON object, lacks one of object, action, payload or tenantId, or its payload is
            not an order (not an object, no id, or a field of the wrong type). The message
            names the problem and where, never the body.
        UnsupportedWebhook: (an InvalidWebhook) the body is well formed but about another object
            than "Order".
    """
    data = load_json(body, label="commerce7 webhook", error=InvalidWebhook)
    if not isinstance(data, dict):
        raise InvalidWebhook("commerce7 webhook: body is not a JSON object")
    for key in _REQUIRED:
        if data.get(key) in (None, ""):
            raise InvalidWebhook(f"commerce7 webhook: '{key}' is missing")
    if data["object"] != ORDER_OBJECT:
        raise UnsupportedWebhook(f"commerce7 webhook: object is {str(data['object'])[:40]!r}, only 'Order' is handled")
    payload = data["payload"]
    if not isinstance(payload, dict):
        raise InvalidWebhook("commerce7 webhook: payload is not an order (not a JSON object)")
    if not payload.get("id"):
        raise InvalidWebhook("commerce7 webhook: payload is not an order ('id' is missing)")
    try:
        return Commerce7Webhook.model_validate(data)
    except ValidationError as exc:
        raise InvalidWebhook(f"commerce7 webhook: payload is not an order ({describe_validation_error(exc)})") from exc


def verify_basic_auth(authorization_header: str | None, expected_user: str, expected_password: str) -> bool:
    """Check the Basic credentials attached to the webhook definition in Commerce7.

    Args:
        authorization_header: the request's `Authorization` header, or None.
        expected_user: configured user; empty means unconfigured and nothing is accepted.
        expected_password: configured password; likewise.

    Returns:
        True only for a well-formed `Basic` header carrying exactly these credentials; the
        comparison takes the same time wherever the first difference is (hmac.compare_digest).
    """
    if not authorization_header or not expected_user or not expected_password:
        return False
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return False
    try:
        presented = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{expected_user}:{expected_password}".encode()
    return hmac.compare_digest(presented, expected)
