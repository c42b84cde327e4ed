"""Sessions, CSRF tokens and embed tokens: each accepted only as made, only while fresh."""

from __future__ import annotations

import time

from itsdangerous import URLSafeTimedSerializer

from operator_console.security import EmbedGrant, Signer, embed_token

SESSION_KEY, EMBED_KEY = "s" * 32, "e" * 32


def test_a_session_cookie_holds_its_member_and_cannot_be_forged():
    signer = Signer(SESSION_KEY, EMBED_KEY)
    session, cookie = signer.new_session("jane@winery.example")
    assert signer.session(cookie) == session
    forged = URLSafeTimedSerializer("x" * 32, salt="ordersync-console-session").dumps(
        {"staff": "boss@winery.example", "sid": "abc"}
    )
    assert signer.session(forged) is None
    assert signer.session(cookie[:-2] + "xx") is None
    assert signer.session(None) is None


def test_a_pre_session_cookie_is_not_a_session():
    signer = Signer(SESSION_KEY, EMBED_KEY)
    pre_id, cookie = signer.new_pre_session()
    assert signer.pre_session(cookie) == pre_id
    assert signer.session(cookie) is None


def test_a_csrf_token_is_valid_for_its_own_session_only():
    signer = Signer(SESSION_KEY, EMBED_KEY)
    mine, _ = signer.new_session("jane@winery.example")
    theirs, _ = signer.new_session("sam@winery.example")
    token = signer.csrf_token(mine.session_id)
    assert signer.csrf_valid(mine.session_id, token)
    assert not signer.csrf_valid(theirs.session_id, token)
    assert not signer.csrf_valid(mine.session_id, None)
    assert not signer.csrf_valid(mine.session_id, "")
    # a session cookie is not a CSRF token: the salts differ
    _, cookie = signer.new_session("jane@winery.example")
    assert not signer.csrf_valid(mine.session_id, cookie)


def test_an_embed_token_grants_one_order_until_it_expires():
    signer = Signer(SESSION_KEY, EMBED_KEY)
    token = embed_token(EMBED_KEY, EmbedGrant("harbour", "ord_1"))
    assert signer.embed_grant(token) == EmbedGrant("harbour", "ord_1")
    assert signer.embed_grant(embed_token("z" * 32, EmbedGrant("harbour", "ord_1"))) is None
    time.sleep(1.1)
    assert signer.embed_grant(token, max_age_s=0) is None
