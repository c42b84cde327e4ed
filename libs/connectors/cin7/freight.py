"""Freight onto a sales order (pure): the PUT row putting a chosen rate quote on the order.

Cin7's ShipStation connector in rate-calculator mode writes the quoted freight (with the
tenant's markup) onto the order; the SalesOrder fields for it are `freightTotal` (what the
customer pays for shipping) and `freightDescription` (the service, as the customer reads it).
Cin7 takes no idempotency key, so the order is read first: an order already carrying this
freight needs no write, and an order in another currency is refused rather than mispriced.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..base.contract import Freight
from ..base.errors import Conflict, InvalidRequest
from .schemas import SalesOrder

CENT = Decimal("0.01")
# Far above any shipping charge; a larger one is a mistake, not freight.
MAX_FREIGHT = Decimal(1_000_000)
MAX_DESCRIPTION_CHARS = 200


def build_freight_update(current: SalesOrder, freight: Freight) -> dict[str, Any] | None:
    """The partial SalesOrder writing `freight` onto `current`, or None when it is there already.

    `freightTotal` goes as a JSON number: the amount has at most two decimals, and a float of
    such an amount is written by the JSON encoder as exactly those digits (the shortest text
    that reads back as the same float), so no cent is lost on the way.

    Raises:
        InvalidRequest: the amount is negative, too large or has sub-cent parts (round it first),
            or the description is empty.
        Conflict: the order is in another currency than the freight.
    """
    amount, description = freight.amount, " ".join(freight.description.split())[:MAX_DESCRIPTION_CHARS]
    if not amount.is_finite() or not 0 <= amount < MAX_FREIGHT or amount != amount.quantize(CENT):
        raise InvalidRequest("cin7 write_freight: the freight must be 0 or more, in whole cents")
    if not description:
        raise InvalidRequest("cin7 write_freight: the freight needs a description (the service's name)")
    currency = (current.currencyCode or "").strip().upper()
    if currency and currency != freight.currency_code.upper():
        raise Conflict(
            f"cin7 write_freight: order {current.id} is in {currency[:3]}, the freight in {freight.currency_code[:3]}"
        )
    if _same_amount(current.freightTotal, amount) and (current.freightDescription or "") == description:
        return None
    return {"id": current.id, "freightTotal": float(amount), "freightDescription": description}


def _same_amount(written: float | None, amount: Decimal) -> bool:
    return written is not None and Decimal(str(written)) == amount
