"""Mintsoft connection settings for one account, passed in (no environment reads)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

DEFAULT_BASE_URL = "https://api.mintsoft.co.uk/api/"


@dataclass(frozen=True, slots=True)
class MintsoftSettings:
    """Credentials and limits for one Mintsoft user.

    Attributes:
        username: the Mintsoft user the API key is issued to (`POST /api/Auth`).
        password: that user's password; hidden from repr, never logged.
        base_url: the API root, ending in `/api/`; request paths are relative to it.
        client_id: the client a 3PL admin user acts for (sent as `ClientId`); None for a
            client user, whose key already names its client.
        requests_per_minute: our own pace (Mintsoft publishes no limit).
        timeout_s: read/write timeout in seconds (connect is 5 s).
        max_concurrency: requests in flight at once.
    """

    username: str
    password: str
    _: KW_ONLY
    base_url: str = DEFAULT_BASE_URL
    client_id: int | None = None
    requests_per_minute: int = 120
    timeout_s: float = 30
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        for name in ("username", "password", "base_url"):
            if not getattr(self, name):
                raise ValueError(f"MintsoftSettings.{name} is required")
        if not self.base_url.endswith("/"):
            # httpx joins relative paths under the base only when it ends in "/".
            object.__setattr__(self, "base_url", self.base_url + "/")
        if self.client_id is not None and self.client_id < 1:
            raise ValueError("MintsoftSettings.client_id must be a positive whole number")
        if self.requests_per_minute < 1 or self.timeout_s <= 0 or self.max_concurrency < 1:
            raise ValueError("MintsoftSettings: requests_per_minute, timeout_s and max_concurrency must be positive")

    def __repr__(self) -> str:
        return (
            f"MintsoftSettings(username={self.username!r}, password='***', base_url={self.base_url!r}, "
            f"client_id={self.client_id!r}, requests_per_minute={self.requests_per_minute!r}, "
            f"timeout_s={self.timeout_s!r}, max_concurrency={self.max_concurrency!r})"
        )
