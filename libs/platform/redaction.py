"""Log redaction: removes personal data and secrets from every log entry before it is written.

Two passes over an entry (structlog's event dict, stdlib records included):
- by field name: the value of a field whose name says it holds personal data (names,
  addresses, e-mail, phone) or a secret (tokens, passwords, keys, signatures) is replaced,
  whatever it holds, at any depth of nested dicts and lists;
- by shape: e-mail addresses, phone numbers, bearer tokens and secret query parameters are
  replaced inside any other string, the message included.

The shapes are deliberately narrow (a phone needs separators in the NANP form or a leading
`+` with 8-15 digits) so that order ids, dates, tracking numbers and amounts stay readable.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

# Compared after lower-casing and dropping `_`, `-` and spaces: "First-Name", "first_name"
# and "firstName" are one name.
SENSITIVE_FIELDS = frozenset(
    {
        # personal data
        "name", "firstname", "lastname", "fullname", "customername", "recipientname", "company",
        "email", "emailaddress", "phone", "phonenumber", "mobile", "telephone",
        "address", "address1", "address2", "address3", "street", "streetaddress", "addressline1",
        "addressline2", "shiptoaddress", "billingaddress", "shippingaddress", "postcode", "postalcode",
        "zip", "zipcode", "birthdate", "dateofbirth", "dob",
        # secrets
        "password", "passwd", "secret", "clientsecret", "token", "accesstoken", "refreshtoken",
        "apikey", "apisecret", "authorization", "auth", "credentials", "signature", "webhooksecret",
        "cookie", "setcookie", "privatekey",
    }
)  # fmt: skip

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\w)"  # 555-123-4567, (555) 123 4567
    r"|(?<![\w+])\+\d{8,15}(?!\w)"  # +15551234567
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_SECRET_QUERY = re.compile(r"(?i)\b(token|apikey|api_key|key|password|secret|access_token)=[^&\s\"']+")


def _normal(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def is_sensitive_field(name: str) -> bool:
    """True when a field of this name holds personal data or a secret."""
    return _normal(name) in SENSITIVE_FIELDS


def redact_text(text: str) -> str:
    """`text` with e-mail addresses, phone numbers, bearer tokens and secret query values replaced."""
    text = _EMAIL.sub(REDACTED, text)
    text = _PHONE.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def redact_value(value: Any) -> Any:
    """A copy of `value` with sensitive fields and shapes replaced, at any depth."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and is_sensitive_field(k) else redact_value(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


# Fields the logging setup itself adds: never personal data, and a service or logger name
# must not be taken for a "name".
_KEPT = frozenset({"time", "level", "service", "logger", "trace_id", "span_id", "order_id", "tenant"})


def redact_processor(logger: Any, method_name: str, event_dict: dict) -> dict:
    """structlog processor: redact every field of the entry (see the module docstring)."""
    for key in list(event_dict):
        if key in _KEPT or key.startswith("_"):
            continue  # "_record" and "_from_structlog" are ProcessorFormatter's own, removed later
        value = event_dict[key]
        if is_sensitive_field(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | dict | list | tuple):
            event_dict[key] = redact_value(value)
        elif not isinstance(value, int | float | bool | type(None)):
            event_dict[key] = redact_text(str(value))
    return event_dict
