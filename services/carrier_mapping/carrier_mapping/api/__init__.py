"""gRPC servicers of carrier mapping."""
