"""CellarPass connection settings for one tenant's account, passed in by the service."""

from __future__ import annotations

from dataclasses import dataclass

from ..base import convert
from .codes import MAX_PAGE_SIZE


@dataclass(frozen=True, slots=True)
class CellarPassSettings:
    """Where and how to reach one CellarPass account.

    Attributes:
        base_url: the API root without the version, e.g. "https://api.cellarpass.example"
            (CellarPass publishes no API: the tenant is told the address with the key).
        api_key: the account's API key (`Authorization: Bearer`); hidden from repr.
        page_size: reservations a `GET /v1/reservations` page asks for, 1 to 50.
        timeout_s: read/write timeout in seconds.
        start_at: ISO-8601 instant the first poll reads from ("" = the account's oldest
            reservation): set to the cut-over from CellarPass's own sync, so reservations it
            sent to VinSuite before are not read as new.
    """

    base_url: str
    api_key: str
    page_size: int = MAX_PAGE_SIZE
    timeout_s: float = 15.0
    start_at: str = ""

    def __post_init__(self) -> None:
        for name in ("base_url", "api_key"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if self.start_at:
            try:
                convert.parse_datetime(self.start_at)
            except ValueError:
                raise ValueError("start_at must be an ISO-8601 date-time, e.g. 2026-12-01T00:00:00Z") from None

    def __repr__(self) -> str:
        return (
            f"CellarPassSettings(base_url={self.base_url!r}, api_key='***', "
            f"page_size={self.page_size!r}, timeout_s={self.timeout_s!r}, start_at={self.start_at!r})"
        )
