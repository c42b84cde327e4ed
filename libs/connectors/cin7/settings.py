"""Cin7 Omni connection settings for one tenant's account, passed in by the service."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import DEFAULT_OPTION_NAMES

MAX_PAGE_SIZE = 250  # Cin7's `rows` upper bound


@dataclass(frozen=True, slots=True)
class Cin7Settings:
    """Credentials, workflow stage names and limits of one Cin7 Omni account.

    Attributes:
        username: the API connection's username (Basic auth user).
        api_key: the API connection key (Basic auth password); hidden from repr.
        base_url: API root without the version, e.g. "https://api.cin7.com/api".
        fully_picked_stage: the tenant's stage meaning "ready to ship" (a custom stage in Cin7,
            "Fully Picked" by default); only orders in it are imported.
        dispatched_stage: the stage written when the order ships.
        page_size: orders per `GET /v1/SalesOrders` page, at most 250.
        lookback_days: how far back the first poll of an account reads, and how old (created
            date or ETD) an order may be and still be imported.
        rate_limit_per_minute: requests a minute this account may send.
        timeout_s: read/write timeout in seconds.
        option_names: what the account calls a line's option1..option3 (e.g. "Colour",
            "Size"), the names the options carry on the canonical order's lines.
    """

    username: str
    api_key: str
    base_url: str = "https://api.cin7.com/api"
    fully_picked_stage: str = "Fully Picked"
    dispatched_stage: str = "Dispatched"
    page_size: int = 100
    lookback_days: int = 60
    rate_limit_per_minute: int = 60
    timeout_s: float = 15
    option_names: tuple[str, ...] = DEFAULT_OPTION_NAMES

    def __post_init__(self) -> None:
        for name in ("username", "api_key", "base_url", "fully_picked_stage", "dispatched_stage"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
        if self.lookback_days < 1 or self.rate_limit_per_minute < 1:
            raise ValueError("lookback_days and rate_limit_per_minute must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")

    def __repr__(self) -> str:
        return (
            f"Cin7Settings(username={self.username!r}, api_key='***', base_url={self.base_url!r}, "
            f"fully_picked_stage={self.fully_picked_stage!r}, dispatched_stage={self.dispatched_stage!r}, "
            f"page_size={self.page_size!r}, lookback_days={self.lookback_days!r}, "
            f"rate_limit_per_minute={self.rate_limit_per_minute!r}, timeout_s={self.timeout_s!r}, "
            f"option_names={self.option_names!r})"
        )
