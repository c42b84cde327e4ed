"""CommerceInterface (Groupon Goods) simulator: paged line items, mark_exported, tracking per line."""

from tests.simulators.groupon.app import STATE_KEY, GrouponConfig, GrouponState, GrouponSupplier, create_app

__all__ = ["STATE_KEY", "GrouponConfig", "GrouponState", "GrouponSupplier", "create_app"]
