"""The operator console: web pages for merchants' staff over the services' gRPC APIs."""
