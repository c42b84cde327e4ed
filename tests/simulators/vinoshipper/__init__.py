"""Vinoshipper API simulator: compliance-checked orders, fulfilment lifecycle and thin webhooks."""

from tests.simulators.vinoshipper.app import (
    STATE_KEY,
    VinoshipperConfig,
    VinoshipperProducer,
    VinoshipperState,
    create_app,
)

__all__ = ["STATE_KEY", "VinoshipperConfig", "VinoshipperProducer", "VinoshipperState", "create_app"]
