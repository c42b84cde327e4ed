"""`ordersync`: the operator command, one entry point over the services' gRPC APIs."""
