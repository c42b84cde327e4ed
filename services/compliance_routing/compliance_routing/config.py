"""Compliance routing settings from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from libs.platform.auth import CALLERS_VARIABLE, CallerDirectory, load_callers
from libs.platform.config import PlatformSettings, env_str


@dataclass(frozen=True)
class RoutingSettings:
    """Platform settings and who may call the gRPC API."""

    platform: PlatformSettings
    callers: CallerDirectory

    @classmethod
    def from_env(cls) -> RoutingSettings:
        platform = PlatformSettings.from_env("compliance-routing", "compliance_routing", 50052)
        return cls(platform=platform, callers=load_callers(env_str(CALLERS_VARIABLE), platform.service_name))
