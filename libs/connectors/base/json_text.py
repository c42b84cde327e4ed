"""Vendor JSON ordersync can carry: bounded nesting, and text without NUL or lone surrogates.

JSON can spell two things no service can keep: U+0000 (`\\u0000`; PostgreSQL text refuses it)
and a lone UTF-16 surrogate (`\\ud800`; not encodable as UTF-8, so neither protobuf strings nor
PostgreSQL take it). Both would fail deep in storage on every redelivery, so they are found when
the body is parsed, and the error names where. Nesting is bounded for the same reason: a body a
thousand levels deep makes the standard decoder raise RecursionError, and nothing a vendor sends
legitimately nests past a handful of levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import ConnectorError

MAX_DEPTH = 32  # Commerce7's order is about 5 levels deep; Vinoshipper's webhook, 1
_UNCARRIABLE = re.compile("[\x00\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]{1,40}$")


def load_json(body: bytes, *, label: str, error: type[ConnectorError]) -> Any:
    """Decode `body` as JSON ordersync can carry.

    Args:
        body: the raw bytes (UTF-8; json also detects UTF-16 and UTF-32).
        label: names the source in messages, e.g. "commerce7 webhook".
        error: the ConnectorError class to raise (InvalidWebhook for a webhook body).

    Returns:
        The decoded value.

    Raises:
        error: not JSON, nested deeper than MAX_DEPTH, or text holding NUL or a lone surrogate;
            the message names the problem and where, never the text itself.
    """
    try:
        data = json.loads(body)
    except RecursionError:
        raise error(f"{label}: body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise error(f"{label}: body is not JSON") from exc
    check_carriable(data, label=label, error=error)
    return data


def check_carriable(data: Any, *, label: str, error: type[ConnectorError]) -> None:
    """Raise `error` when decoded JSON nests deeper than MAX_DEPTH or holds text no store can keep."""
    problem = find_problem(data)
    if problem is not None:
        raise error(f"{label}: {problem}")


def find_problem(data: Any) -> str | None:
    """Return what makes decoded JSON uncarriable (with its path), or None when it is fine."""
    # Iterative, so hostile depth cannot exhaust the interpreter's stack here either.
    pending: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while pending:
        value, path = pending.pop()
        if len(path) > MAX_DEPTH:
            return f"body is nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, str):
            problem = _text_problem(value)
            if problem is not None:
                return f"{_render(path)} {problem}"
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _text_problem(key)
                if problem is not None:
                    return f"a key in {_render(path)} {problem}"
                pending.append((item, (*path, _key_part(key))))
        elif isinstance(value, list):
            pending.extend((item, (*path, f"[{index}]")) for index, item in enumerate(value))
    return None


def _text_problem(text: str) -> str | None:
    match = _UNCARRIABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "holds a NUL character (\\u0000), which cannot be stored"
    return "holds a lone UTF-16 surrogate, which is not valid Unicode"


def _key_part(key: str) -> str:
    # Keys come from the sender: only plain ones are echoed, so a message cannot carry their text.
    return f".{key}" if _PLAIN_KEY.match(key) else ".[key]"


def _render(path: tuple[str, ...]) -> str:
    text = "".join(path).lstrip(".")
    return text or "the body"
