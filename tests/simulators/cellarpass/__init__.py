"""CellarPass simulator (our stand-in contract): reservations, sync results, customer types."""

from tests.simulators.cellarpass.app import STATE_KEY, CellarPassConfig, create_app

__all__ = ["STATE_KEY", "CellarPassConfig", "create_app"]
