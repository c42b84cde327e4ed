"""ShipStation connection settings for one account (API key pair), passed in (no environment reads)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

# ShipStation v1 allows 40 requests a minute per API key pair (X-Rate-Limit-Limit says so too).
DEFAULT_REQUESTS_PER_MINUTE = 40


@dataclass(frozen=True, slots=True)
class ShipStationSettings:
    """Credentials and limits for one ShipStation API key pair.

    Attributes:
        api_key: API Key (Basic auth user).
        api_secret: API Secret (Basic auth password); hidden from repr.
        base_url: API root, `https://ssapi.shipstation.com`.
        requests_per_minute: the key pair's budget; 40 unless ShipStation raised it.
        timeout_s: read/write timeout in seconds (connect is 5 s).
        max_concurrency: requests in flight at once.
    """

    api_key: str
    api_secret: str
    _: KW_ONLY
    base_url: str = "https://ssapi.shipstation.com"
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    timeout_s: float = 30
    max_concurrency: int = 2

    def __post_init__(self) -> None:
        for name in ("api_key", "api_secret", "base_url"):
            if not getattr(self, name):
                raise ValueError(f"ShipStationSettings.{name} is required")
        if self.requests_per_minute < 1:
            raise ValueError("ShipStationSettings.requests_per_minute must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("ShipStationSettings.timeout_s must be positive")
        if self.max_concurrency < 1:
            raise ValueError("ShipStationSettings.max_concurrency must be at least 1")

    def __repr__(self) -> str:
        return (
            f"ShipStationSettings(api_key={self.api_key!r}, api_secret='***', base_url={self.base_url!r}, "
            f"requests_per_minute={self.requests_per_minute!r}, timeout_s={self.timeout_s!r}, "
            f"max_concurrency={self.max_concurrency!r})"
        )
