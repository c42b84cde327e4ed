"""CellarPass customer types <-> invite lists (pure): what the customer-type endpoints answer."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..base.contract import InviteList
from ..base.errors import InvalidResponse
from ..base.models import describe_validation_error
from .schemas import CustomerType


def parse_customer_type(body: Any, operation: str) -> InviteList:
    """One `{id, name, sourceId?}` as an InviteList (`source_id` "" for types staff made).

    Raises:
        InvalidResponse: the body is not such an object.
    """
    try:
        kind = CustomerType.model_validate(body)
    except ValidationError as exc:
        raise InvalidResponse(
            f"cellarpass {operation}: unreadable customer type: {describe_validation_error(exc)}"
        ) from None
    return InviteList(list_id=kind.id, name=kind.name, source_id=(kind.sourceId or "").strip())


def parse_customer_types(body: Any) -> list[InviteList]:
    """`GET /v1/customer-types` (a JSON array) as invite lists, in CellarPass's order.

    Raises:
        InvalidResponse: not an array, or an entry that is not a customer type.
    """
    if not isinstance(body, list):
        raise InvalidResponse("cellarpass list_customer_types: body is not a JSON array", status_code=200)
    return [parse_customer_type(entry, "list_customer_types") for entry in body]
