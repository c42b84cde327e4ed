"""Platform: what every ordersync service shares (config, telemetry, Postgres, Kafka, outbox, gRPC)."""
