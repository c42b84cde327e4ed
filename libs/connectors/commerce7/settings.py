"""Commerce7 connection settings for one tenant, passed in by the service (no environment reads)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Commerce7Settings:
    """Credentials and limits for one Commerce7 tenant.

    Attributes:
        tenant_id: the winery's tenant slug, sent as the `tenant` header.
        app_id: the app's id (Basic auth user).
        app_secret: the app's secret key (Basic auth password); hidden from repr.
        base_url: API root including the version.
        rate_limit_per_minute: Commerce7 allows 100 requests per minute per tenant, shared by
            every caller on that tenant.
        timeout_s: read/write timeout in seconds (connect is 5 s).
    """

    tenant_id: str
    app_id: str
    app_secret: str
    base_url: str = "https://api.commerce7.com/v1"
    rate_limit_per_minute: int = 100
    timeout_s: float = 10

    def __post_init__(self) -> None:
        for name in ("tenant_id", "app_id", "app_secret", "base_url"):
            if not getattr(self, name):
                raise ValueError(f"Commerce7Settings.{name} is required")
        if self.rate_limit_per_minute < 1:
            raise ValueError("Commerce7Settings.rate_limit_per_minute must be at least 1")
        if self.timeout_s <= 0:
            raise ValueError("Commerce7Settings.timeout_s must be positive")

    def __repr__(self) -> str:
        return (
            f"Commerce7Settings(tenant_id={self.tenant_id!r}, app_id={self.app_id!r}, "
            f"app_secret='***', base_url={self.base_url!r}, "
            f"rate_limit_per_minute={self.rate_limit_per_minute!r}, timeout_s={self.timeout_s!r})"
        )
