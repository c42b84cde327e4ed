"""CommerceInterface settings of one tenant's Groupon supplier account, passed in by the service."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import DEFAULT_BASE_URL, DEFAULT_CURRENCY


@dataclass(frozen=True, slots=True)
class GrouponSettings:
    """Credentials and choices of one CommerceInterface supplier account.

    Attributes:
        supplier_id: the CommerceInterface account (supplier) id Groupon e-mailed.
        token: the access token generated in CommerceInterface; hidden from repr.
        base_url: the API root with its version, e.g. "https://scm.commerceinterface.com/api/v4/".
        mark_exported: mark an order's lines exported once the warehouse accepted it (they then
            leave get_orders); False leaves them listed (they keep coming back, deduplicated).
        currency: ISO 4217 code of the account's amounts (get_orders names none).
        timeout_s: read/write timeout in seconds.
    """

    supplier_id: str
    token: str
    base_url: str = DEFAULT_BASE_URL
    mark_exported: bool = False
    currency: str = DEFAULT_CURRENCY
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("supplier_id", "token", "base_url"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError("currency must be an ISO 4217 code in capitals, e.g. USD")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")

    def __repr__(self) -> str:
        return (
            f"GrouponSettings(supplier_id={self.supplier_id!r}, token='***', base_url={self.base_url!r}, "
            f"mark_exported={self.mark_exported!r}, currency={self.currency!r}, timeout_s={self.timeout_s!r})"
        )
