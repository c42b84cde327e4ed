"""The operator console: staff's web pages over the services' gRPC APIs (placeholder package)."""
