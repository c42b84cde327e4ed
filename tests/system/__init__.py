"""The whole system on one machine: simulators and the five services as processes (tests, demo, bench)."""
