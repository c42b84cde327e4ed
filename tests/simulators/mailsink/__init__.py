"""A real local SMTP server that keeps what it receives: the tests' and the demo's mail sink."""

from tests.simulators.mailsink.sink import MailSink

__all__ = ["MailSink"]
