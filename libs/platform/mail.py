"""Sending mail: SMTP settings from the environment, messages from Jinja2 templates, one sender.

What a service mails is its own business (what to say, to whom, when, how often); how a mail is
written and sent is this module's, so every service sends the same way:

- `SmtpSettings.from_env()` reads `ORDERSYNC_SMTP_*` (None when no host is set: the service
  then sends nothing); the password is a secret reference (`env:NAME` or `file:PATH`), never a
  literal, like the tenants file's secrets.
- `MailTemplates` renders a plain-text template whose first line is `Subject: ...`; undefined
  variables are errors (a mail never goes out with a hole in it).
- `SmtpMailer.send` delivers one message over SMTP with aiosmtplib (STARTTLS when asked) and
  raises `MailError`, whose `retryable` says whether trying again later can succeed (a 4xx
  answer, a refused or lost connection) or not (a 5xx answer: a bad recipient, say).

Sending is at least once: an answer lost after the server took the message leaves the caller
to send it again. Each message carries the Message-ID its caller gives, the same on every
attempt, so a mail client shows a resent copy as the same mail.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import jinja2

from libs.platform.config import ConfigError, env_int, env_on_off, env_optional

# An address as a person types it: no display name, no spaces, one @ between two parts, a dot
# in the domain. Not RFC 5322's whole grammar: what an operator should put in a setting.
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+\.[^@\s<>\"(),;:.]+$")


def check_address(value: object) -> str | None:
    """Say why `value` is not a plain e-mail address (e.g. "ops@example.com"), or None."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        return "must be an e-mail address such as ops@example.com"
    return None


class MailError(Exception):
    """A message was not sent; `retryable` says whether a later attempt can succeed."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: the SMTP server, the sender address, credentials, STARTTLS."""

    host: str
    port: int
    sender: str
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, resolve: Callable[[str, str], str]) -> SmtpSettings | None:
        """Read ORDERSYNC_SMTP_HOST, _PORT (587), _FROM, _USERNAME, _PASSWORD (a secret
        reference, resolved by `resolve(reference, where)`: libs.platform.tenants'
        resolve_secret_value), _STARTTLS (on); None when ORDERSYNC_SMTP_HOST is unset."""
        host = env_optional("ORDERSYNC_SMTP_HOST")
        if host is None:
            return None
        sender = env_optional("ORDERSYNC_SMTP_FROM") or ""
        if check_address(sender) is not None:
            raise ConfigError("environment variable ORDERSYNC_SMTP_FROM must be an e-mail address")
        password = ""
        reference = env_optional("ORDERSYNC_SMTP_PASSWORD")
        if reference is not None:
            password = resolve(reference, "environment variable ORDERSYNC_SMTP_PASSWORD")
        return cls(
            host=host,
            port=env_int("ORDERSYNC_SMTP_PORT", 587),
            sender=sender,
            username=env_optional("ORDERSYNC_SMTP_USERNAME") or "",
            password=password,
            starttls=env_on_off("ORDERSYNC_SMTP_STARTTLS", True),
        )


@dataclass(frozen=True)
class Mail:
    """One plain-text message to one recipient; `message_id` is stable across attempts."""

    to: str
    subject: str
    body: str
    message_id: str


class MailTemplates:
    """Plain-text templates from one folder; each starts with a `Subject:` line, then a blank line."""

    def __init__(self, folder: Path):
        # Plain text, not HTML: nothing to escape, and autoescape would mangle "&" in names.
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
        )

    def render(self, name: str, **values: object) -> tuple[str, str]:
        """(subject, body) of template `name` filled with `values`."""
        text = self._env.get_template(name).render(**values)
        head, _, body = text.partition("\n\n")
        if not head.startswith("Subject: ") or "\n" in head:
            raise ValueError(f"mail template {name!r} must start with one 'Subject: ...' line and a blank line")
        return head.removeprefix("Subject: ").strip(), body


class SmtpMailer:
    """Sends messages through one SMTP server, a connection per message (mails are rare)."""

    def __init__(self, settings: SmtpSettings):
        self._settings = settings

    def build(self, mail: Mail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = mail.message_id
        message.set_content(mail.body)
        return message

    async def send(self, mail: Mail) -> None:
        """Deliver `mail`; raise MailError (retryable or not) when the server did not take it."""
        s = self._settings
        try:
            await aiosmtplib.send(
                self.build(mail),
                hostname=s.host,
                port=s.port,
                username=s.username or None,
                password=s.password or None,
                start_tls=s.starttls,
                timeout=s.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients] or [550]
            raise MailError(f"SMTP server refused the recipient ({codes[0]})", retryable=max(codes) < 500) from None
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx: the server will refuse it again (unknown recipient, rejected sender).
            raise MailError(f"SMTP server answered {exc.code}", retryable=exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP server not reached: {type(exc).__name__}", retryable=True) from None
