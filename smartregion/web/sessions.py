"""Signed-cookie sessions of people signed in to the portal.

The cookie holds `<payload>.<mac>`: the payload is base64url JSON `{"p": person, "o": organisation,
"t": issued (unix seconds), "n": nonce}`, the mac an HMAC-SHA256 under a key derived from the
`secret_key` setting for this purpose only. Nothing secret is in the payload and nothing is kept
on the server: the person's role is read from the database on every request, so a removed
membership counts at once. The cookie is HttpOnly, SameSite=Lax (a link from elsewhere arrives
signed in; a cross-site form post does not) and Secure over HTTPS; a session ends after
`MAX_AGE` or when its person signs out (the cookie is cleared).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

__all__ = ["COOKIE", "MAX_AGE", "Session", "SessionCodec"]

COOKIE = "smartregion_session"
#: eight hours: one working day
MAX_AGE = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in, for which organisation, since when; `nonce` identifies the session."""

    person_id: str
    org_id: str
    issued: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signs and checks session cookies."""

    def __init__(self, secret: Callable[[], bytes], *, max_age: int = MAX_AGE) -> None:
        self._secret = secret
        self._key: bytes | None = None
        self.max_age = max_age

    @property
    def key(self) -> bytes:
        """The HMAC key, derived from the server secret for sessions only."""
        if self._key is None:
            self._key = hmac.new(self._secret(), b"smartregion session v1", hashlib.sha256).digest()
        return self._key

    def new(self, person_id: str, org_id: str) -> Session:
        """A fresh session."""
        return Session(person_id, org_id, int(time.time()), secrets.token_urlsafe(12))

    def encode(self, session: Session) -> str:
        """The cookie value."""
        payload = _b64(
            orjson.dumps(
                {
                    "p": session.person_id,
                    "o": session.org_id,
                    "t": session.issued,
                    "n": session.nonce,
                }
            )
        )
        mac = _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())
        return f"{payload}.{mac}"

    def decode(self, value: str | None) -> Session | None:
        """The session of a cookie value, or None when absent, forged, malformed or expired."""
        if not value or len(value) > 1024:
            return None
        payload, dot, mac = value.partition(".")
        if not dot:
            return None
        expected = _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            session = Session(str(data["p"]), str(data["o"]), int(data["t"]), str(data["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= time.time() - session.issued <= self.max_age:
            return None
        return session

    def binding(self, cookie_header: str | None) -> str:
        """What CSRF tokens are bound to: the session's nonce ("" when signed out), so that a
        token issued before sign-in, or to another session, does not pass (OWASP: "signed
        double-submit cookie" bound to the session)."""
        if not cookie_header or COOKIE not in cookie_header:
            return ""
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                session = self.decode(value)
                return session.nonce if session is not None else ""
        return ""

    def cookie(self, session: Session | None, *, secure: bool) -> str:
        """The `Set-Cookie` value storing a session (None: clearing it)."""
        if session is None:
            value = f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        else:
            value = f"{COOKIE}={self.encode(session)}; Path=/; Max-Age={self.max_age}; HttpOnly; SameSite=Lax"
        return value + ("; Secure" if secure else "")
