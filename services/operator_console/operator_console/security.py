"""Signed cookies, CSRF tokens and embed tokens (itsdangerous: HMAC-signed, timestamped).

- The **session** cookie holds the member's name, a random session id and when it was issued;
  it is signed, HttpOnly and SameSite=Lax, and expires after SESSION_MAX_AGE_S. Every request
  looks the member up in the staff file again, so their tenant and roles are the file's.
- Every form carries a **CSRF token**: the session id signed with its own salt. A POST whose token
  is missing or is not its session's is refused (403) before anything else is done. The sign-in
  form has one too, tied to a short-lived pre-session cookie, so no one can sign a person into an
  account of theirs.
- An **embed token** lets a channel's admin frame one order's card and tab read-only: tenant and
  order, signed with the embed secret (shared with the channel app that mints them), valid for
  at most EMBED_MAX_AGE_S. It is the only credential of an embed page; it names no person.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SESSION_COOKIE = "ordersync_console"
PRE_SESSION_COOKIE = "ordersync_console_pre"
SESSION_MAX_AGE_S = 8 * 3600
PRE_SESSION_MAX_AGE_S = 3600
EMBED_MAX_AGE_S = 3600
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    """What the session cookie says: who signed in, and the id their CSRF tokens are bound to."""

    staff: str
    session_id: str


@dataclass(frozen=True)
class EmbedGrant:
    """What an embed token lets its bearer see: one order of one tenant."""

    tenant_id: str
    order_id: str


class Signer:
    """Makes and checks the console's cookies and tokens with the session and embed secrets."""

    def __init__(self, session_secret: str, embed_secret: str):
        self._sessions = URLSafeTimedSerializer(session_secret, salt="ordersync-console-session")
        self._csrf = URLSafeTimedSerializer(session_secret, salt="ordersync-console-csrf")
        self._embeds = _embed_serializer(embed_secret)

    # ---- sessions -----------------------------------------------------------------------------

    def new_session(self, staff: str) -> tuple[Session, str]:
        """A fresh session for `staff` and its cookie value."""
        session = Session(staff, secrets.token_urlsafe(18))
        return session, self._sessions.dumps({"staff": session.staff, "sid": session.session_id})

    def session(self, cookie: str | None) -> Session | None:
        """The session a cookie holds, or None when it is absent, forged or expired."""
        data = self._loads(self._sessions, cookie, SESSION_MAX_AGE_S)
        if not isinstance(data, dict) or not isinstance(data.get("staff"), str) or not isinstance(data.get("sid"), str):
            return None
        return Session(data["staff"], data["sid"])

    def new_pre_session(self) -> tuple[str, str]:
        """A pre-session id (binding the sign-in form's CSRF token) and its cookie value."""
        pre_id = secrets.token_urlsafe(18)
        return pre_id, self._sessions.dumps({"pre": pre_id})

    def pre_session(self, cookie: str | None) -> str | None:
        data = self._loads(self._sessions, cookie, PRE_SESSION_MAX_AGE_S)
        return data.get("pre") if isinstance(data, dict) and isinstance(data.get("pre"), str) else None

    # ---- CSRF ---------------------------------------------------------------------------------

    def csrf_token(self, session_id: str) -> str:
        return self._csrf.dumps(session_id)

    def csrf_valid(self, session_id: str, token: str | None) -> bool:
        """True when `token` was made for `session_id` within the session's lifetime."""
        bound = self._loads(self._csrf, token, SESSION_MAX_AGE_S)
        return isinstance(bound, str) and hmac.compare_digest(bound, session_id)

    # ---- embed tokens -------------------------------------------------------------------------

    def embed_grant(self, token: str | None, max_age_s: int = EMBED_MAX_AGE_S) -> EmbedGrant | None:
        """The grant a token carries, or None when it is absent, forged or older than `max_age_s`."""
        data = self._loads(self._embeds, token, max_age_s)
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("tenant"), str)
            or not isinstance(data.get("order"), str)
        ):
            return None
        return EmbedGrant(data["tenant"], data["order"])

    @staticmethod
    def _loads(serializer: URLSafeTimedSerializer, value: str | None, max_age_s: int) -> object:
        if not value:
            return None
        try:
            return serializer.loads(value, max_age=max_age_s)
        except (BadSignature, SignatureExpired):  # SignatureExpired is a BadSignature; named for the reader
            return None


def embed_token(embed_secret: str, grant: EmbedGrant) -> str:
    """The token a channel app puts in an embed URL (python -m operator_console embed-url): what a
    channel's app backend computes with the shared embed secret for each page view."""
    return _embed_serializer(embed_secret).dumps({"tenant": grant.tenant_id, "order": grant.order_id})


def _embed_serializer(embed_secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(embed_secret, salt="ordersync-console-embed")
