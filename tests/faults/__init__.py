"""Fault suite: bursts of orders through the whole system while services, Kafka, PostgreSQL or the provider fail.

`python -m tests.faults [--short]` (`make test-faults`; `make test` runs --short): see __main__.py
for the runner, scenarios.py for the stories, harness.py for the invariant each one checks.
"""
