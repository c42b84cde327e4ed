"""VinSuite web-service simulator: TestConnection, orders with notes, members, member types."""

from tests.simulators.vinsuite.app import STATE_KEY, VinSuiteConfig, VinSuiteState, VinSuiteWinery, create_app

__all__ = ["STATE_KEY", "VinSuiteConfig", "VinSuiteState", "VinSuiteWinery", "create_app"]
