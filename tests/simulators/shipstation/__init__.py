"""ShipStation API v1 simulator: bulk orders, labels, thin SHIP_NOTIFY webhooks, rates, a Custom Store puller."""

from tests.simulators.shipstation.app import (
    STATE_KEY,
    ShipStationAccount,
    ShipStationConfig,
    ShipStationState,
    create_app,
)

__all__ = ["STATE_KEY", "ShipStationAccount", "ShipStationConfig", "ShipStationState", "create_app"]
