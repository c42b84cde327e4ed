"""Carrier mapping's SQL and the in-memory snapshot loaded from it."""
