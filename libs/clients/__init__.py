"""Client libraries for ordersync's own gRPC services, for use inside and outside ordersync."""
