"""CSRF protection for form posts: a signed double-submit token and a same-origin check.

OWASP CSRF Prevention Cheat Sheet, "signed double-submit cookie"; ASVS 5.0 V3.5. A token is
`<nonce>.<mac>`, the mac an HMAC-SHA256 over the nonce and a *binding* (the portal's session id,
once sessions exist) under a key derived from the `secret_key` setting. The token travels twice:
in a cookie and in the form field `csrf_token` (or the `X-CSRF-Token` header); a cross-site page
can make the browser send the cookie but can neither read it nor forge a signed one.

Which requests are checked (`needs_check`): POST, PUT, PATCH and DELETE whose body a browser can
send cross-site without a CORS preflight — `application/x-www-form-urlencoded`,
`multipart/form-data`, `text/plain`, or no Content-Type at all when the request carries cookies —
unless they carry `Authorization: Bearer` (a header no cross-site page can add). JSON bodies need
a preflight, which this server never grants, so they are not checked. A checked request must
come from this server's origin (Origin, else Referer); when it carries cookies — the ambient
credential a forged request would abuse — it must also carry a valid token. Without cookies
there is nothing to abuse, and API clients that send a wrong Content-Type keep getting the
precise 415 of the handler.

The portal calls `csrf_token(request)` to put the token in its forms; the security middleware
sets the cookie on that response. A session layer binds tokens to the session by setting
`scope[BINDING_KEY]` to the session id before the middleware runs its check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from starlette.requests import Request, cookie_parser

__all__ = [
    "BINDING_KEY",
    "COOKIE",
    "FIELD",
    "HEADER",
    "CsrfState",
    "CsrfTokens",
    "SecretKey",
    "csrf_token",
    "needs_check",
]

log = logging.getLogger("smartregion.api")

COOKIE = "smartregion_csrf"
FIELD = "csrf_token"
HEADER = b"x-csrf-token"
#: scope key a session layer sets to the session id, to bind tokens to it
BINDING_KEY = "smartregion.csrf_binding"
#: scope key of the request's `CsrfState` (set by the security middleware)
STATE_KEY = "smartregion.csrf"

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: the request bodies an HTML form or a no-cors fetch can send cross-site (Fetch, "CORS-safelisted")
FORM_TYPES = frozenset(
    {b"application/x-www-form-urlencoded", b"multipart/form-data", b"text/plain"}
)
MIN_SECRET_LENGTH = 32


class SecretKey:
    """The server's signing secret: the `secret_key` setting, else a file created on first use.

    The file (`secret_key_file`) holds 32 random bytes in hex and is created with mode 0600,
    atomically (written aside, then hard-linked into place, which fails if another worker
    process was first), so every worker of one machine reads the same secret. Several machines
    must share a configured `secret_key`.
    """

    def __init__(self, configured: str, path: str) -> None:
        if configured and len(configured) < MIN_SECRET_LENGTH:
            raise ValueError(f"secret_key must be at least {MIN_SECRET_LENGTH} characters long")
        self._value = configured.encode() if configured else None
        self.path = Path(path)

    def get(self) -> bytes:
        """The secret (read or created on first call; cached)."""
        if self._value is None:
            self._value = self._load_or_create()
        return self._value

    def _load_or_create(self) -> bytes:
        try:
            return self._read()
        except FileNotFoundError:
            pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        aside = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(aside, self.path)
                log.info("created a new secret key in %s", self.path)
            except FileExistsError:
                pass  # another worker process created it first: use theirs
        finally:
            os.unlink(aside)
        return self._read()

    def _read(self) -> bytes:
        value = self.path.read_text().strip()
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"{self.path}: a secret key must be at least {MIN_SECRET_LENGTH} characters"
            )
        return value.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CsrfTokens:
    """Issues and checks signed CSRF tokens."""

    def __init__(self, secret: SecretKey) -> None:
        self.secret = secret
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        """The HMAC key, derived from the secret for this one purpose."""
        if self._key is None:
            self._key = hmac.new(self.secret.get(), b"smartregion csrf v1", hashlib.sha256).digest()
        return self._key

    def _mac(self, nonce: bytes, binding: str) -> bytes:
        message = nonce + b"\x00" + binding.encode()
        return hmac.new(self.key, message, hashlib.sha256).digest()

    def issue(self, binding: str = "") -> str:
        """A new token, bound to `binding` (the session id; empty without sessions)."""
        nonce = secrets.token_bytes(16)
        return f"{_b64(nonce)}.{_b64(self._mac(nonce, binding))}"

    def valid(self, token: str, binding: str = "") -> bool:
        """Whether the token was issued by this server for this binding."""
        nonce_text, dot, mac_text = token.partition(".")
        if not dot or len(token) > 128:
            return False
        try:
            nonce, mac = _unb64(nonce_text), _unb64(mac_text)
        except ValueError:
            return False
        return len(nonce) == 16 and hmac.compare_digest(mac, self._mac(nonce, binding))


class CsrfState:
    """Per request: the token service, and a token `csrf_token` issued for the response cookie."""

    __slots__ = ("issued", "tokens")

    def __init__(self, tokens: CsrfTokens) -> None:
        self.tokens = tokens
        self.issued: str | None = None


def needs_check(method: str, headers: Mapping[bytes, bytes]) -> bool:
    """Whether a request is one a cross-site page could forge (see the module docstring)."""
    if method not in UNSAFE_METHODS:
        return False
    authorization = headers.get(b"authorization")
    if authorization is not None and authorization[:7].lower() == b"bearer ":
        return False
    content_type = headers.get(b"content-type")
    if content_type is None:
        return b"cookie" in headers
    return content_type.split(b";", 1)[0].strip().lower() in FORM_TYPES


def cookie_token(headers: Mapping[bytes, bytes]) -> str | None:
    """The token in the request's CSRF cookie, if any."""
    raw = headers.get(b"cookie")
    if raw is None:
        return None
    return cookie_parser(raw.decode("latin-1")).get(COOKIE)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lower-case, default ports left out (RFC 6454)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def request_origin(
    scope: Any, headers: Mapping[bytes, bytes], public_origin: str | None
) -> str | None:
    """The origin this request was addressed to: `public_base_url`'s, else scheme and Host."""
    if public_origin is not None:
        return public_origin
    host = headers.get(b"host")
    if host is None:
        return None
    return origin_of(f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}")


def same_origin(scope: Any, headers: Mapping[bytes, bytes], public_origin: str | None) -> bool:
    """Origin, else Referer, must name this server; a request with neither is left to the token.

    Some privacy tools strip both headers; the token check still applies to such requests.
    """
    sent = headers.get(b"origin")
    if sent is None:
        sent = headers.get(b"referer")
        if sent is None:
            return True
    claimed = origin_of(sent.decode("latin-1"))  # "null" (sandboxed or opaque origins) -> None
    return claimed is not None and claimed == request_origin(scope, headers, public_origin)


def csrf_token(request: Request) -> str:
    """The CSRF token to put in a form (field `csrf_token`) or an `X-CSRF-Token` header.

    Reuses the token of the request's cookie when it is valid, else issues a new one; the
    security middleware then sets the cookie on the response.
    """
    state: CsrfState = request.scope[STATE_KEY]
    if state.issued is not None:
        return state.issued
    binding: str = request.scope.get(BINDING_KEY, "")
    current = request.cookies.get(COOKIE)
    if current is not None and state.tokens.valid(current, binding):
        return current
    state.issued = state.tokens.issue(binding)
    return state.issued


def form_token(content_type: bytes, body: bytes) -> str | None:
    """The `csrf_token` field of a url-encoded or multipart form body, if any."""
    media = content_type.split(b";", 1)[0].strip().lower()
    if media == b"application/x-www-form-urlencoded":
        for item in body.split(b"&"):
            name, _, value = item.partition(b"=")
            if unquote_plus(name.decode("latin-1")) == FIELD:
                return unquote_plus(value.decode("latin-1"))
        return None
    if media == b"multipart/form-data":
        head = b"MIME-Version: 1.0\r\nContent-Type: " + content_type + b"\r\n\r\n"
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        if not isinstance(message, EmailMessage) or not message.is_multipart():
            return None
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == FIELD:
                payload = part.get_payload(decode=True)
                return payload.decode("latin-1").strip() if isinstance(payload, bytes) else None
    return None


def cookie_header(token: str, *, secure: bool) -> bytes:
    """The `Set-Cookie` value that stores a token (HttpOnly: pages get the token in the HTML)."""
    value = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    if secure:
        value += "; Secure"
    return value.encode()
