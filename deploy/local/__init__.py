"""Helpers that run Kafka and PostgreSQL on this machine without Docker."""
