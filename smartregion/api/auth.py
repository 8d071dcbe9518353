"""The one request authenticator of every HTTP interface (NGSI-LD, admin API, and later ones).

`Authorization: Bearer <credential>` names the caller: an API key of a service account
(`Governance.authenticate_key`, read from the database on every request, so a revoked key is
refused on the very next one) or, when OIDC is configured, a JWT from the configured issuer
(`governance/oidc.py`) naming a registered organisation and a role. No header: the caller is
anonymous (None); each interface decides what anonymous callers may do.

Refusals (docs/security.md), all `application/problem+json`, and each written to the audit log
with a reason code and at most the key id — never the credential, never personal data:

- a credential in the query string (a parameter named as in CREDENTIAL_PARAMETERS, or any
  value shaped like one of our keys): **400**, even with a valid header — URLs end up in logs,
  proxies and browser history (OWASP ASVS 5.0 V14.2.1). The query string is blanked in the
  request scope first, so the server's access log does not record it either;
- a malformed header, an unknown, revoked or expired key, an invalid token: **401** with
  `WWW-Authenticate: Bearer`;
- a valid token naming an organisation that is not registered here: **403**.
"""

from __future__ import annotations

import logging

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from smartregion.errors import InvalidRequest, Unauthenticated
from smartregion.governance import Forbidden, Governance, Principal
from smartregion.governance.keys import KEY_PREFIX, parse_key
from smartregion.governance.oidc import InvalidToken, OidcVerifier, looks_like_jwt

__all__ = [
    "CREDENTIAL_PARAMETERS",
    "Authenticate",
    "Authenticator",
    "audit_refusal",
    "principal_of",
]

log = logging.getLogger("smartregion.api.auth")

#: query parameters that carry credentials in other APIs
CREDENTIAL_PARAMETERS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "access_token",
        "id_token",
        "authorization",
        "bearer",
        "jwt",
    }
)
#: longer Authorization headers are refused unread (a JWT of a few claims is under 2 kB)
MAX_CREDENTIAL_LENGTH = 8192
#: the request-scope key of a request's authentication outcome (in the scope itself, not in its
#: `state`, which a server may seed from shared lifespan state)
_SCOPE_KEY = "smartregion.principal"


def principal_of(scope: Scope) -> Principal | None:
    """The authenticated principal of a request (None: anonymous or not authenticated)."""
    principal = scope.get(_SCOPE_KEY)
    return principal if isinstance(principal, Principal) else None


class Authenticator:
    """Turns a request's credentials into a `Principal` (see the module docstring)."""

    def __init__(self, governance: Governance, oidc: OidcVerifier | None = None) -> None:
        self.governance = governance
        self.oidc = oidc

    async def authenticate(self, conn: HTTPConnection, *, interface: str) -> Principal | None:
        """The request's principal, None when it carries no credentials; raises on bad ones.

        The outcome is kept in the request scope: a second call for the same request (the admin
        API checks in two dependencies) returns it without a second look-up or audit row.
        """
        if _SCOPE_KEY in conn.scope:
            return principal_of(conn.scope)
        await self._refuse_credentials_in_query(conn, interface)
        principal = await self._from_header(conn.headers.get("authorization"), interface)
        conn.scope[_SCOPE_KEY] = principal
        return principal

    async def _refuse_credentials_in_query(self, conn: HTTPConnection, interface: str) -> None:
        if not conn.scope.get("query_string"):
            return  # most writes have no query string: nothing to parse
        for name, value in conn.query_params.multi_items():
            if name.lower() in CREDENTIAL_PARAMETERS or value.startswith(KEY_PREFIX + "_"):
                # blank it before anything logs the URL (uvicorn's access log reads the scope)
                conn.scope["query_string"] = b""
                await self._audit("credential-in-query", interface)
                raise InvalidRequest(
                    "credentials are accepted only in the Authorization header, never in the URL"
                )

    async def _from_header(self, header: str | None, interface: str) -> Principal | None:
        if header is None:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(header) > MAX_CREDENTIAL_LENGTH:
            await self._audit("malformed-header", interface)
            raise Unauthenticated("the Authorization header must be `Bearer <api key or token>`")
        if looks_like_jwt(token):
            return await self._from_token(token, interface)
        key_id = parse_key(token)
        try:
            return await self.governance.authenticate_key(token)
        except Unauthenticated:
            await self._audit("invalid-key" if key_id else "malformed-key", interface, key_id)
            raise

    async def _from_token(self, token: str, interface: str) -> Principal:
        if self.oidc is None:
            await self._audit("oidc-not-configured", interface)
            raise Unauthenticated("this server accepts API keys only (OIDC is not configured)")
        try:
            identity = await self.oidc.verify(token)
        except InvalidToken as exc:
            await self._audit(f"token-{exc.reason}", interface)
            raise
        if await self.governance.store.get_organisation(identity.org_id) is None:
            await self._audit("token-unknown-organisation", interface)
            raise Forbidden(f"organisation {identity.org_id!r} is not registered here")
        return Principal(identity.org_id, identity.role, subject=identity.subject)

    async def _audit(self, reason: str, interface: str, key_id: str | None = None) -> None:
        try:
            await self.governance.record_refused_authentication(
                reason, interface=interface, key_id=key_id
            )
        except Exception:  # the refusal stands even when the audit log cannot be written
            log.exception("cannot record a refused authentication (%s)", reason)


class Authenticate:
    """ASGI middleware: authenticate every HTTP request to the wrapped interface first.

    The principal is then found with `principal_of(scope)`; a refusal propagates as the
    domain error, which the application's one error mapping renders.
    """

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator, interface: str) -> None:
        self.app = app
        self.authenticator = authenticator
        self.interface = interface

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.authenticator.authenticate(HTTPConnection(scope), interface=self.interface)
        await self.app(scope, receive, send)


async def audit_refusal(conn: HTTPConnection, exc: Exception, *, interface: str) -> None:
    """Write a refused authorisation (a `Forbidden` answered 403) to the audit log.

    Refused authentications are audited where they happen (`Authenticator`); a write the caller
    may not make is audited here, by the interface's one error mapping. A batch entity refused
    inside a 207 multi-status answer is not an error of the request and is not audited.
    """
    if not isinstance(exc, Forbidden):
        return
    governance = getattr(conn.app.state, "governance", None)
    if governance is None:
        return
    route = getattr(conn.scope.get("route"), "path", None) or "?"
    try:
        await governance.record_refused_authorisation(
            principal_of(conn.scope),
            interface=interface,
            method=conn.scope.get("method", ""),
            route=route,
        )
    except Exception:  # the refusal stands even when the audit log cannot be written
        log.exception("cannot record a refused authorisation")
