"""Cin7 Omni API simulator: sales orders listed on `where`, updated by array with per-row results."""

from tests.simulators.cin7.app import STATE_KEY, Cin7Account, Cin7Config, Cin7State, create_app

__all__ = ["STATE_KEY", "Cin7Account", "Cin7Config", "Cin7State", "create_app"]
