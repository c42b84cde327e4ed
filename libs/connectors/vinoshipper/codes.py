"""Vinoshipper code tables: UPS rate codes <-> canonical services, and other vendor constants."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class UpsRate:
    """One UPS service Vinoshipper ships with.

    Attributes:
        code: Vinoshipper's `rateCode` (UPS service code), e.g. "03".
        service: ordersync's canonical service id, e.g. "UPS_GROUND".
        name: human name, e.g. "UPS Ground".
    """

    code: str
    service: str
    name: str


CARRIER_UPS = "UPS"

UPS_RATES: tuple[UpsRate, ...] = (
    UpsRate("01", "UPS_NEXT_DAY_AIR", "UPS Next Day Air"),
    UpsRate("02", "UPS_2ND_DAY_AIR", "UPS 2nd Day Air"),
    UpsRate("03", "UPS_GROUND", "UPS Ground"),
    UpsRate("12", "UPS_3_DAY_SELECT", "UPS 3 Day Select"),
)
RATES_BY_CODE = MappingProxyType({rate.code: rate for rate in UPS_RATES})
RATES_BY_SERVICE = MappingProxyType({rate.service: rate for rate in UPS_RATES})

PRODUCT_ID_TYPE_SKU: Final = "SKU"  # Final: typed as the Literal the request model requires
# `status` once a label exists; shipped/delivered/cancelled are read from timestamps.
STATUS_FULFILLED = "FULFILLED"

WEBHOOK_SUBJECT_ORDER = "ORDER"

# Calling codes for `shipToAddress.phone.country`, by ISO country; Vinoshipper ships in the US.
PHONE_COUNTRY_CODES = MappingProxyType({"US": 1})


# Order webhook events that say nothing about the shipment: the order exists or was approved.
EVENTS_WITHOUT_SHIPMENT_NEWS = frozenset({"CREATED", "APPROVED"})
