"""Tracking writeback: writes provider shipment states back to the channel that sold the order."""
