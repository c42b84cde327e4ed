"""Carrier mapping: translates carrier service codes between systems, per tenant."""
