"""Pure translation logic of carrier mapping: no I/O, no protos."""
