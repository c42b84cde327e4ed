"""What dispatch says of an order's provider, in the provider connector's own words.

Status titles ("Sent to <label>") and names in messages come from the connector registered
under the order's `provider` (`info.status_titles`, `info.label`); an order with no provider,
or one whose connector is no longer registered, gets plain words.
"""

from __future__ import annotations

from collections.abc import Mapping

from fulfillment_dispatch.domain.actions import OrderState
from fulfillment_dispatch.domain.dispatch import Status
from libs.connectors.base.contract import Capability, ConnectorInfo
from libs.connectors.registry import Registry

NO_PROVIDER = "the provider"


def provider_info(registry: Registry, provider: str) -> ConnectorInfo | None:
    """The provider connector's metadata, or None when the order names none that is registered."""
    return registry.get(provider).info if provider and provider in registry else None


def label(registry: Registry, provider: str) -> str:
    info = provider_info(registry, provider)
    return info.label if info else NO_PROVIDER


def titles(registry: Registry, provider: str) -> Mapping[str, str]:
    info = provider_info(registry, provider)
    return info.status_titles if info else {}


def status_title(registry: Registry, row) -> str:
    """The title of a dispatch row's status, e.g. "Sent to Vinoshipper"."""
    return Status(row["status"]).title(titles(registry, row["provider"]))


def order_state(registry: Registry, row) -> OrderState:
    """What the operator-action rules and the status guidance look at, for a dispatch row."""
    info = provider_info(registry, row["provider"])
    return OrderState(
        Status(row["status"]),
        row["shipment_status"],
        row["provider_order_number"],
        provider_label=info.label if info else NO_PROVIDER,
        titles=info.status_titles if info else {},
        can_cancel=info is not None and info.can(Capability.CANCEL),
        maps_products=info is not None and info.maps_products,
        reason_code=row["reason_code"],
        reason=row["reason"],
    )
