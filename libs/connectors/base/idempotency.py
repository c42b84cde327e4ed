"""Idempotency keys derived from the facts that identify one intended effect."""

from __future__ import annotations

import hashlib
import re

_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def idempotency_key(prefix: str, *parts: str | int) -> str:
    """Return a stable key for one intended effect, e.g. one order sent to one provider.

    The same parts always give the same key, so a retried or redelivered request carries the
    key of the first attempt and a vendor that honours `Idempotency-Key` applies it once.
    Choose parts that name the effect, not the attempt: ("vinoshipper", tenant_id, order_id,
    "create"), never a timestamp or attempt number.

    Each part is length-prefixed before hashing, so ("ab", "c") and ("a", "bc") differ.
    The parts are hashed (SHA-256) so ids and e-mails used as parts do not appear in logs or
    vendor dashboards.

    Args:
        prefix: short lowercase label kept readable in front, e.g. "c7-fulfil".
        parts: at least one non-empty string or integer.

    Returns:
        "<prefix>-<64 hex digits>".

    Raises:
        ValueError: bad prefix, no parts, or an empty part.
    """
    if not _PREFIX.match(prefix):
        raise ValueError("prefix must be 1-32 chars of lowercase letters, digits and '-'")
    if not parts:
        raise ValueError("at least one part is required")
    digest = hashlib.sha256()
    for part in parts:
        text = str(part)
        if not text:
            raise ValueError("idempotency key parts must not be empty")
        encoded = text.encode("utf-8")
        digest.update(f"{len(encoded)}:".encode("ascii"))
        digest.update(encoded)
    return f"{prefix}-{digest.hexdigest()}"
