"""ShipStation code tables: order statuses <-> the channel's statuses, carriers, units."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..base.errors import InvalidRequest

# ShipStation v1 `orderStatus` values.
AWAITING_PAYMENT = "awaiting_payment"
AWAITING_SHIPMENT = "awaiting_shipment"
PENDING_FULFILLMENT = "pending_fulfillment"
SHIPPED = "shipped"
ON_HOLD = "on_hold"
CANCELLED = "cancelled"
ORDER_STATUSES = frozenset({AWAITING_PAYMENT, AWAITING_SHIPMENT, PENDING_FULFILLMENT, SHIPPED, ON_HOLD, CANCELLED})
# Only these take an update through createorder(s); others answer a per-item error.
UPDATABLE_STATUSES = frozenset({AWAITING_PAYMENT, AWAITING_SHIPMENT, ON_HOLD})

# ShipStation status -> the channel's status (Cin7 Omni stage), as Cin7's ShipStation connection
# maps them by default. On Hold has no Cin7 counterpart: Cin7 does not support it.
DEFAULT_STATUS_MAPPING: Mapping[str, str] = MappingProxyType(
    {
        AWAITING_PAYMENT: "New",
        AWAITING_SHIPMENT: "Fully Picked",
        SHIPPED: "Dispatched",
        CANCELLED: "Cancelled",
    }
)
UNSUPPORTED_STATUSES: Mapping[str, str] = MappingProxyType(
    {ON_HOLD: "On Hold is not supported by the Cin7 Omni connection; orders are never put on hold"}
)


class UnmappedStatus(InvalidRequest):
    """A status has no counterpart in the account's status mapping: the mapping must name it."""

    reason_code = "UNMAPPED_STATUS"


def validate_status_mapping(custom: Mapping[str, str] | None) -> Mapping[str, str]:
    """Return the account's mapping (ShipStation status -> channel status): the defaults with
    the tenant's entries over them.

    Raises:
        ValueError: a key that is no ShipStation status, an unsupported status (on_hold), an
            empty channel status, or two ShipStation statuses mapped to one channel status
            (the way back would be ambiguous). The message names the offending entry.
    """
    mapping = dict(DEFAULT_STATUS_MAPPING)
    for status, channel_status in (custom or {}).items():
        if status in UNSUPPORTED_STATUSES:
            raise ValueError(f"status_mapping: {status!r}: {UNSUPPORTED_STATUSES[status]}")
        if status not in ORDER_STATUSES:
            raise ValueError(f"status_mapping: {status!r} is not a ShipStation order status {sorted(ORDER_STATUSES)}")
        if not isinstance(channel_status, str) or not channel_status.strip():
            raise ValueError(f"status_mapping: {status!r} must map to a non-empty status name")
        mapping[status] = channel_status.strip()
    seen: dict[str, str] = {}
    for status, channel_status in mapping.items():
        key = channel_status.casefold()
        if key in seen:
            raise ValueError(
                f"status_mapping: {seen[key]!r} and {status!r} both map to {channel_status!r}; each needs its own"
            )
        seen[key] = status
    return MappingProxyType(mapping)


def shipstation_status(mapping: Mapping[str, str], channel_status: str) -> str:
    """The ShipStation status for a channel status, by the account's mapping.

    Raises:
        UnmappedStatus: the channel status is in no entry (never skipped silently).
    """
    wanted = channel_status.strip().casefold()
    for status, mapped in mapping.items():
        if mapped.casefold() == wanted:
            return status
    if wanted in ("on hold", ON_HOLD):
        raise UnmappedStatus(f"shipstation: channel status {channel_status[:40]!r}: {UNSUPPORTED_STATUSES[ON_HOLD]}")
    # The sentence names the exact setting to add, since the fix is the operator's.
    raise UnmappedStatus(
        f"shipstation: channel status {channel_status[:40]!r} is not in the ShipStation account's status "
        f"mapping; add a setting status_<shipstation status> = {channel_status[:40]!r} to the account "
        f"(e.g. status_{AWAITING_SHIPMENT}), one of {sorted(ORDER_STATUSES - set(UNSUPPORTED_STATUSES))}"
    )


def channel_status(mapping: Mapping[str, str], status: str) -> str:
    """The channel status for a ShipStation status, by the account's mapping.

    Raises:
        UnmappedStatus: the ShipStation status is not mapped (e.g. on_hold).
    """
    if status in mapping:
        return mapping[status]
    why = UNSUPPORTED_STATUSES.get(status, "add it to the account's status_mapping")
    raise UnmappedStatus(f"shipstation: status {status[:40]!r} is not in the status mapping: {why}")


# ShipStation carrierCode -> canonical carrier. Stamps.com is how ShipStation buys USPS labels.
CARRIERS: Mapping[str, str] = MappingProxyType(
    {
        "stamps_com": "USPS",
        "usps": "USPS",
        "ups": "UPS",
        "ups_walleted": "UPS",
        "fedex": "FEDEX",
        "fedex_walleted": "FEDEX",
        "dhl_express": "DHL",
        "dhl_express_worldwide": "DHL",
        "ontrac": "ONTRAC",
    }
)


def canonical_carrier(carrier_code: str) -> str:
    """ShipStation's carrierCode in canonical form; an unknown code is upper-cased."""
    code = carrier_code.strip().lower()
    return CARRIERS.get(code, code.upper())


WEIGHT_UNITS_GRAMS = "grams"
CURRENCY = "USD"  # ShipStation v1 amounts carry no currency; accounts bill in their own (USD here)
