"""Mintsoft API simulator: expiring API keys, orders, Connect Action callbacks, products."""

from tests.simulators.mintsoft.app import STATE_KEY, MintsoftConfig, MintsoftState, MintsoftUser, create_app

__all__ = ["STATE_KEY", "MintsoftConfig", "MintsoftState", "MintsoftUser", "create_app"]
