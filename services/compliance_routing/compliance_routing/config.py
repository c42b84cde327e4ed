"""Compliance routing settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.config import PlatformSettings


@dataclass(frozen=True)
class RoutingSettings:
    """Platform settings; routing needs nothing else yet."""

    platform: PlatformSettings

    @classmethod
    def from_env(cls) -> RoutingSettings:
        return cls(platform=PlatformSettings.from_env("compliance-routing", "compliance_routing", 50052))
