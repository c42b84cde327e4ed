"""Hypothesis strategies for fuzzing webhooks: hostile text, JSON trees, raw bodies, mutated samples.

Shared by the connectors' parser fuzz tests and the services' endpoint fuzz tests. `FUZZ` runs
derandomized with no example database, so every run (and CI) tries the same examples.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# A few seconds a test: enough to cover every strategy below, derandomized so CI is repeatable.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

_DELETE = object()

# Text a sender may put anywhere: every code point including NUL and lone surrogates, long text,
# and the values parsers meet at their edges (dates at the calendar's ends, numbers as text).
hostile_text = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=12),
    # Long and incompressible: past what a database index entry holds (about 2.7 kB).
    st.binary(min_size=1600, max_size=1600).map(bytes.hex),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "1001\x00",
            "\ud800",
            "\udfff\ud800",
            "\U0001f377",
            "Order",
            "ORDER",
            "Create",
            "Update",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2024-02-30",
            "2024-05-01T17:03:15.120Z",
            "9" * 40,
            "x" * 300,
        ]
    ),
)

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)

json_trees = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=20,
)


def encode(value: Any) -> bytes:
    """JSON as a sender writes it; lone surrogates become \\udXXX escapes, NaN stays NaN."""
    return json.dumps(value).encode()


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _apply(sample: Any, changes: list[tuple[tuple, Any]]) -> Any:
    result = copy.deepcopy(sample)
    for path, replacement in changes:
        parent = result
        try:
            for step in path[:-1]:
                parent = parent[step]
            if replacement is _DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = replacement
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this part
    return result


def mutations(sample: Any, *, within: tuple = ()) -> st.SearchStrategy[Any]:
    """Copies of a valid `sample` with one to three of its fields replaced or removed.

    `within` keeps the changes under one part (e.g. ("payload",)), so the rest stays valid and
    the parser gets past it.
    """
    paths = [p for p in _paths(sample) if p[: len(within)] == within and len(p) > len(within)]
    # Mostly single values, which keep the shape and reach the parser's edges (ranges, dates).
    replacement = st.one_of(json_leaves, json_leaves, json_leaves, json_trees, st.just(_DELETE))
    change = st.tuples(st.sampled_from(paths), replacement)
    return st.lists(change, min_size=1, max_size=3).map(lambda changes: _apply(sample, changes))


numbers = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _like(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, bool) or value is None:
        return json_leaves
    if isinstance(value, int | float):
        return numbers
    if isinstance(value, str):
        return hostile_text
    return json_trees


def typed_mutations(sample: Any, *, within: tuple = ()) -> st.SearchStrategy[Any]:
    """Copies of a valid `sample` with one to three values replaced by hostile ones of their kind.

    Numbers become numbers (huge, negative, NaN), text becomes hostile text: the shape stays
    valid, so the change reaches the code that normalises that very field.
    """
    leaves = [p for p in _paths(sample) if p[: len(within)] == within and not isinstance(_at(sample, p), dict | list)]
    change = st.sampled_from(leaves).flatmap(lambda path: st.tuples(st.just(path), _like(_at(sample, path))))
    return st.lists(change, min_size=1, max_size=3).map(lambda changes: _apply(sample, changes))


def _at(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def deep_nesting() -> st.SearchStrategy[bytes]:
    """Arrays and objects nested from just past a sane depth to far past the decoder's limit."""
    return st.integers(min_value=30, max_value=5000).flatmap(
        lambda depth: st.sampled_from([b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth])
    )


def bodies(sample: Any, *, within: tuple = ()) -> st.SearchStrategy[bytes]:
    """Request bodies: raw bytes, JSON trees, deep nesting, and mutations of a valid `sample`.

    Most are mutations of the sample; with `within`, most change only that part.
    """
    return st.one_of(
        st.binary(max_size=300),
        json_trees.map(encode),
        deep_nesting(),
        mutations(sample).map(encode),
        mutations(sample, within=within).map(encode),
        typed_mutations(sample, within=within).map(encode),
        typed_mutations(sample, within=within).map(encode),
    )
