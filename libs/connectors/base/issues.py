"""Issue: one validation finding about a vendor object, returned by parsers instead of raised."""

from __future__ import annotations

from dataclasses import dataclass

# The rule code of a channel record the channel itself shows as sent to the provider already
# (CellarPass's syncStatus Processed): never sent again. For an order the hub synced, intake's
# locked-after-sync record already says so, and leaves this rule out of its message.
ALREADY_SYNCED = "ALREADY_SYNCED"


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem found while parsing a vendor object; partial failure is data, not an exception.

    Attributes:
        field: the vendor field path the problem is about, e.g. "shipTo.zipCode" or
            "items[2].sku" (vendor spelling, so an operator can find it in the vendor's UI).
        message: operator-safe explanation; never contains the field's value, because values
            may be addresses, e-mails, phones or birth dates.
        code: a stable reason code operators and tools can filter on, e.g. "NOT_FULLY_PICKED";
            empty where the message alone says it.
    """

    field: str
    message: str
    code: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"
