"""Commerce7 API simulator: orders, fulfillments and Order webhooks for tests and the demo."""

from tests.simulators.commerce7.app import STATE_KEY, Commerce7Config, Commerce7State, Commerce7Tenant, create_app

__all__ = ["STATE_KEY", "Commerce7Config", "Commerce7State", "Commerce7Tenant", "create_app"]
