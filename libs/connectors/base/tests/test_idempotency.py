"""Tests of idempotency key derivation."""

from __future__ import annotations

import hashlib

import pytest

from libs.connectors.base.idempotency import idempotency_key


def test_the_same_parts_give_the_same_key() -> None:
    assert idempotency_key("vs-create", "t1", "o1") == idempotency_key("vs-create", "t1", "o1")


def test_the_key_is_the_prefix_and_a_sha256_of_length_prefixed_parts() -> None:
    expected = hashlib.sha256(b"2:t13:o-1").hexdigest()
    assert idempotency_key("c7-fulfil", "t1", "o-1") == f"c7-fulfil-{expected}"


def test_moving_a_character_between_parts_changes_the_key() -> None:
    assert idempotency_key("x", "ab", "c") != idempotency_key("x", "a", "bc")


def test_integers_and_their_text_are_the_same_part() -> None:
    assert idempotency_key("x", 1001) == idempotency_key("x", "1001")


def test_parts_do_not_appear_in_the_key() -> None:
    assert "jane@example.com" not in idempotency_key("x", "jane@example.com")


@pytest.mark.parametrize(
    ("prefix", "parts"),
    [("", ("a",)), ("Upper", ("a",)), ("ok", ()), ("ok", ("a", ""))],
)
def test_bad_prefix_or_parts_are_refused(prefix: str, parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        idempotency_key(prefix, *parts)
