"""Vinoshipper connection settings for one producer account, passed in (no environment reads)."""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass

# Vinoshipper order numbers are unique across all of Vinoshipper; the prefix makes ours
# unique per tenant, so it must be short and unambiguous.
_PREFIX = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,22}[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class VinoshipperSettings:
    """Credentials and limits for one Vinoshipper producer account.

    Attributes:
        api_key: API key id (Basic auth user).
        api_secret: API secret (Basic auth password); hidden from repr.
        base_url: site root; API paths start with /api/v3.
        order_number_prefix: this tenant's prefix for provider order numbers, 1-24 letters,
            digits, "_" or "-" (not at either end), unique per tenant, e.g. "C7-napa".
        timeout_s: read/write timeout in seconds (connect is 5 s).
        max_concurrency: requests in flight at once; Vinoshipper publishes no rate limit, so
            we stay modest.
    """

    api_key: str
    api_secret: str
    _: KW_ONLY
    base_url: str = "https://vinoshipper.com"
    order_number_prefix: str
    timeout_s: float = 10
    max_concurrency: int = 16

    def __post_init__(self) -> None:
        for name in ("api_key", "api_secret", "base_url"):
            if not getattr(self, name):
                raise ValueError(f"VinoshipperSettings.{name} is required")
        if not _PREFIX.match(self.order_number_prefix or ""):
            raise ValueError("VinoshipperSettings.order_number_prefix must be 1-24 letters, digits, '_' or '-'")
        if self.timeout_s <= 0:
            raise ValueError("VinoshipperSettings.timeout_s must be positive")
        if self.max_concurrency < 1:
            raise ValueError("VinoshipperSettings.max_concurrency must be at least 1")

    def __repr__(self) -> str:
        return (
            f"VinoshipperSettings(api_key={self.api_key!r}, api_secret='***', "
            f"base_url={self.base_url!r}, order_number_prefix={self.order_number_prefix!r}, "
            f"timeout_s={self.timeout_s!r}, max_concurrency={self.max_concurrency!r})"
        )
